"""The ``engine`` command's assembly (no server needed): every group is there, in its order, and a
malformed ENGINE_* variable stops a command with one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import app

COMMANDS = ["run", "kill", "resume", "restart", "replay", "logs", "test", "flow", "schema", "plugins"]
COMMANDS += ["backfill", "triggers", "cluster", "server", "executions", "blueprints"]


def test_every_command_is_listed_in_order() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    listed = [line.split()[1] for line in result.output.splitlines() if line.startswith("│ ")]
    assert [name for name in listed if not name.startswith("-")] == COMMANDS


@pytest.mark.parametrize("action", ["kill", "resume", "restart", "replay"])
def test_the_actions_take_the_shared_options_after_their_own(action: str) -> None:
    result = CliRunner().invoke(app, [action, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = result.output
    shared = [text.index(option) for option in ("--roles", "--wait", "--output", "--server", "--token")]
    assert shared == sorted(shared)
    own = {"resume": "--input", "replay": "--from"}.get(action)
    if own:
        assert text.index(own) < shared[0]


def test_a_bad_setting_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGINE_LEASE_TTL", "soon")
    result = CliRunner().invoke(app, ["executions", "list"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "ENGINE_LEASE_TTL='soon': expected seconds from 1 to 60 (default 3); fix it or unset it"
    ]


def test_python_dash_m_engine_runs_the_cli() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "engine", "plugins", "list"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "io.kestra.plugin.core.log.Log" in proc.stdout


def test_a_crash_never_prints_local_variables(tmp_path: Path) -> None:
    """An unexpected exception's traceback leaves locals out (they can hold secrets)."""
    script = tmp_path / "crash.py"
    script.write_text(
        "import os\n"
        "from engine.cli import app\n"
        "@app.command('crash-for-test')\n"
        "def crash() -> None:\n"
        "    token = os.environ['CRASH_TEST_TOKEN']\n"
        "    raise RuntimeError('boom')\n"
        "app()\n"
    )
    command = [sys.executable, str(script), "crash-for-test"]
    # As on a terminal (rich renders its full traceback there), with a value only the locals would show.
    env = {**os.environ, "CRASH_TEST_TOKEN": "sekret-value-123", "FORCE_COLOR": "1", "TTY_COMPATIBLE": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False, env=env)
    assert done.returncode != 0
    assert "boom" in done.stderr
    assert "sekret-value-123" not in done.stderr + done.stdout
