"""``python -m engine`` builds only the command it runs, collects less while it starts, then freezes
what start-up built and collects its young objects less often once the command's roles are up;
in-process callers (tests) are untouched."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from engine import cli
from engine.cli import common
from engine.cli import run as run_cmd
from eventstore.server import process_alive


@pytest.fixture
def restored() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    yield before
    gc.set_threshold(*before)
    gc.unfreeze()
    common._default_gc = None


def test_start_up_collects_less_then_the_serving_threshold_holds(restored: tuple[int, int, int]) -> None:
    common.gc_for_startup()
    assert gc.get_threshold()[0] == common._STARTUP_GC_THRESHOLD
    assert gc.get_threshold()[1:] == restored[1:]
    common.gc_started()
    assert gc.get_threshold() == (common.SERVING_GC_THRESHOLD, *restored[1:])
    assert gc.get_freeze_count() > 0
    gc.unfreeze()
    common.gc_started()  # once only: a second session of the same process changes nothing
    assert gc.get_freeze_count() == 0


def test_without_the_command_line_s_start_nothing_changes(restored: tuple[int, int, int]) -> None:
    common.gc_started()
    assert gc.get_threshold() == restored
    assert gc.get_freeze_count() == 0


def test_each_command_runs_from_an_app_with_only_its_registration() -> None:
    """Same commands as the whole command line, the same help and the same errors."""
    whole = typer.main.get_command(cli.app)
    assert isinstance(whole, typer.core.TyperGroup)
    names = [name for _, names in cli._REGISTRATIONS for name in names]
    assert sorted(names) == sorted(whole.commands)
    for name in names:
        one = cli._app_for([name, "--help"])
        assert one is not cli.app
        part = typer.main.get_command(one)
        assert isinstance(part, typer.core.TyperGroup)
        assert name in part.commands and len(part.commands) < len(whole.commands)
        for args in ([name, "--help"], [name, "--no-such-option"]):
            alone = CliRunner().invoke(one, args, env={"COLUMNS": "200"})
            together = CliRunner().invoke(cli.app, args, env={"COLUMNS": "200"})
            assert (alone.exit_code, alone.output) == (together.exit_code, together.output)
    for args in ([], ["--help"], ["no-such-command"]):
        assert cli._app_for(args) is cli.app


HELLO = """id: hello
namespace: t.startup
tasks:
  - id: t
    type: io.kestra.plugin.core.debug.Return
    format: x
"""


def test_an_invalid_flow_starts_no_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGINE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ENGINE_NATS_URL", raising=False)
    flow = tmp_path / "bad.yaml"
    flow.write_text(HELLO.replace("debug.Return", "debug.NoSuchTask"))
    result = CliRunner().invoke(cli.app, ["run", str(flow)])
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "home" / "nats").exists()


def test_a_server_spawned_early_is_stopped_when_the_run_is_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM before the session's own handler raises KeyboardInterrupt: the server goes with it."""
    monkeypatch.setenv("ENGINE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ENGINE_NATS_URL", raising=False)
    flow = tmp_path / "hello.yaml"
    flow.write_text(HELLO)

    def interrupted(coro: Any) -> None:
        coro.close()
        raise KeyboardInterrupt

    monkeypatch.setattr(run_cmd, "run_async", interrupted)
    result = CliRunner().invoke(cli.app, ["run", str(flow)])
    assert result.exit_code == 130, result.output
    pid_file = tmp_path / "home" / "nats" / "server.pid"
    server_pid = int(pid_file.read_text().split()[0])  # it was spawned
    assert not process_alive(server_pid)
    assert not (tmp_path / "home" / "nats" / "owner.json").exists()
