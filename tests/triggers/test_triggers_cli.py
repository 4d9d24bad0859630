"""``engine backfill`` and ``engine triggers``: the Typer app under CliRunner, on the session server."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
import typer
from triggers_helpers import ns
from typer.testing import CliRunner

from engine.cli.triggers import register

FLOW = """
id: nightly
namespace: {ns}
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{{{ trigger.date }}}}"
triggers:
  - id: nightly
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "{cron}"
"""


@pytest.fixture
def cli(nats_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    monkeypatch.setenv("ENGINE_NATS_URL", nats_url)
    monkeypatch.setenv("ENGINE_HOME", str(tmp_path / "home"))
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """engine"""

    register(app)
    return app


def execution_ids(stdout: str) -> list[str]:
    """The ids the command printed (the engine's own logs may share stdout under CliRunner)."""
    return [line for line in stdout.splitlines() if re.fullmatch(r"[0-9A-Za-z]{22}", line)]


def deploy(nats_url: str, source: str) -> None:
    async def go() -> None:
        from engine.runtime import Runtime

        async with Runtime(nats_url=nats_url) as rt:
            await rt.flows.deploy(source)

    asyncio.run(go())


async def _labels(nats_url: str, ids: list[str]) -> list[dict[str, str]]:
    from engine.runtime import Runtime

    async with Runtime(nats_url=nats_url) as rt:
        out = []
        for eid in ids:
            state = await rt.load_execution(eid)
            assert state is not None, eid
            out.append(dict(state.labels))
        return out


def test_backfill_twice_gives_the_same_executions(cli: typer.Typer, nats_url: str) -> None:
    namespace = ns()
    deploy(nats_url, FLOW.format(ns=namespace, cron="0 2 * * *"))
    args = [
        "backfill",
        namespace,
        "nightly",
        "--start",
        "2031-01-01T00:00:00Z",
        "--end",
        "2031-01-05T23:59:59Z",
    ]
    runner = CliRunner()
    first = runner.invoke(cli, [*args, "--label", "why=fix", "--input", "ignored=1", "--roles"])
    assert first.exit_code == 0, first.output
    ids = execution_ids(first.stdout)
    assert len(ids) == 5 and len(set(ids)) == 5
    assert ": DONE, 5/5 slot(s) handled (5 created), 0 running" in first.stderr
    labels = asyncio.run(_labels(nats_url, ids))
    assert [lab.get("why") for lab in labels] == ["fix"] * 5
    second = runner.invoke(cli, [*args, "--trigger", "nightly", "--roles"])
    assert second.exit_code == 0, second.output
    assert execution_ids(second.stdout) == ids

    listed = runner.invoke(cli, ["triggers", "list", "--namespace", namespace])
    assert listed.exit_code == 0, listed.output
    [line] = [x for x in listed.stdout.splitlines() if x.startswith(namespace)]
    assert line.startswith(f"{namespace}\tnightly\tnightly\tSchedule\tenabled\tcron='0 2 * * *' next=")
    off = runner.invoke(cli, ["triggers", "disable", namespace, "nightly", "nightly"])
    assert off.exit_code == 0, off.output
    listed = runner.invoke(cli, ["triggers", "list", "--namespace", namespace])
    assert "\tdisabled (by command)\t" in listed.stdout
    assert runner.invoke(cli, ["triggers", "enable", namespace, "nightly", "nightly"]).exit_code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "2031-01-05T00:00:00Z", "--end", "2031-01-01T00:00:00Z"], "is before --start"),
        (["--start", "yesterday", "--end", "2031-01-01T00:00:00Z"], "is not an ISO date-time"),
        (
            ["--start", "2031-01-01T00:00:00Z", "--end", "2031-01-02T00:00:00Z", "--trigger", "x"],
            "no trigger 'x'",
        ),
        (
            ["--start", "2031-01-01T00:00:00Z", "--end", "2031-01-02T00:00:00Z", "--input", "novalue"],
            "key=value",
        ),
    ],
)
def test_bad_backfill_input_is_one_line_and_exit_2(
    cli: typer.Typer, nats_url: str, args: list[str], message: str
) -> None:
    namespace = ns()
    deploy(nats_url, FLOW.format(ns=namespace, cron="0 2 * * *"))
    result = CliRunner().invoke(cli, ["backfill", namespace, "nightly", *args])
    assert result.exit_code == 2, result.output
    lines = [x for x in result.stderr.splitlines() if "nats." not in x]
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert execution_ids(result.stdout) == []


def test_bad_cron_and_unknown_flow(cli: typer.Typer, nats_url: str) -> None:
    namespace = ns()
    deploy(nats_url, FLOW.format(ns=namespace, cron="0 25 * * *"))
    window = ["--start", "2031-01-01T00:00:00Z", "--end", "2031-01-02T00:00:00Z"]
    result = CliRunner().invoke(cli, ["backfill", namespace, "nightly", *window])
    assert result.exit_code == 2
    assert [x for x in result.stderr.splitlines() if "nats." not in x] == [
        f"trigger 'nightly' of flow {namespace}.nightly: cron '0 25 * * *' does not parse: "
        "[0 25 * * *] is not acceptable, out of range"
    ]
    result = CliRunner().invoke(cli, ["backfill", namespace, "nope", *window])
    assert result.exit_code == 2
    assert [x for x in result.stderr.splitlines() if "nats." not in x] == [
        f"flow {namespace}.nope is not deployed"
    ]


def test_backfill_control_commands(cli: typer.Typer, nats_url: str) -> None:
    import json

    namespace = ns()
    deploy(nats_url, FLOW.format(ns=namespace, cron="0 2 * * *"))
    runner = CliRunner()
    window = ["--start", "2031-01-01T00:00:00Z", "--end", "2031-01-31T00:00:00Z"]

    def one_line(result: object) -> str:
        lines = [x for x in result.stderr.splitlines() if "nats." not in x]  # type: ignore[attr-defined]
        assert len(lines) == 1, lines
        return lines[0]

    recorded = runner.invoke(cli, ["backfill", namespace, "nightly", *window, "--no-wait", "-l", "k=v"])
    assert recorded.exit_code == 0, recorded.output
    assert ": RUNNING, 0/30 slot(s) handled" in one_line(recorded)
    status = runner.invoke(cli, ["backfill", "status", namespace, "nightly", "--output", "json"])
    assert status.exit_code == 0, status.output
    [record] = [json.loads(x) for x in status.stdout.splitlines() if x.startswith("{")]
    assert record["status"] == "RUNNING" and record["total"] == 30 and record["labels"] == {"k": "v"}
    for action, state in (
        ("pause", "PAUSED"),
        ("pause", "PAUSED"),
        ("resume", "RUNNING"),
        ("cancel", "CANCELLED"),
    ):
        result = runner.invoke(cli, ["backfill", action, namespace, "nightly", "--trigger", "nightly"])
        assert result.exit_code == 0, result.output
        assert f": {state}, " in one_line(result)
    refused = runner.invoke(cli, ["backfill", "resume", namespace, "nightly"])
    assert refused.exit_code == 2
    assert one_line(refused).endswith("is CANCELLED: it cannot be resumed")
    unknown = runner.invoke(cli, ["backfill", "pause", namespace, "nope"])
    assert unknown.exit_code == 2 and one_line(unknown) == f"flow {namespace}.nope is not deployed"
    listed = runner.invoke(cli, ["backfill", "status", namespace])
    assert listed.exit_code == 0 and "CANCELLED" in listed.stdout
