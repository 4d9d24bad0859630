"""Helpers for the integration tests: the real CLI as a subprocess, an in-process engine, process checks.

Every server these tests talk to listens on 127.0.0.1 (the session ``nats_server`` fixture, or
the embedded server a CLI run starts under its own ENGINE_HOME).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def diag(self) -> str:
        """For assertion messages: the final state and stderr."""
        state = "?"
        with suppress(AssertionError, ValueError, KeyError):
            state = self.json["state"]["current"]
        hint = " (the CLI returned before the end: see BUG-I9)" if state == "RUNNING" else ""
        return f"exit {self.code}, state {state}{hint}\nstderr:\n{self.stderr}"

    @property
    def json(self) -> dict[str, Any]:
        lines = [line for line in self.stdout.splitlines() if line.strip()]
        assert lines, f"no JSON on stdout; stderr:\n{self.stderr}"
        return json.loads(lines[-1])  # type: ignore[no-any-return]


def engine_env(home: Path, nats_url: str | None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENGINE_", "SECRET_", "ENV_"))}
    env["ENGINE_HOME"] = str(home)
    if nats_url:
        env["ENGINE_NATS_URL"] = nats_url
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def run_cli(
    *args: str,
    home: Path,
    nats_url: str | None,
    env: Mapping[str, str] | None = None,
    timeout: float = 30,
    cwd: Path = ROOT,
) -> CliResult:
    """``python -m engine <args>`` to its end; a hang is a test failure, not a suite timeout."""
    proc = subprocess.run(
        [sys.executable, "-m", "engine", *args],
        cwd=cwd,
        env=engine_env(home, nats_url, env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def taskruns(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """taskRunList by taskId (``taskId[value]`` inside loops)."""
    out = {}
    for tr in doc["taskRunList"]:
        key = tr["taskId"] if tr["value"] is None else f"{tr['taskId']}[{tr['value']}]"
        assert key not in out, f"two taskruns for {key}"
        out[key] = tr
    return out


def states(doc: dict[str, Any]) -> dict[str, str]:
    return {k: tr["state"]["current"] for k, tr in taskruns(doc).items()}


# ---- processes ------------------------------------------------------------------------------


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (an orphan may wait for a non-reaping PID 1)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.02)
    return not alive(pid)


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def pids_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains ``text`` (to check nothing of ours is left)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and text in cmdline(int(entry.name)) and alive(int(entry.name)):
            out.append(int(entry.name))
    return out


async def wait_file(path: Path, within: float = 10.0) -> str:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if path.exists() and (text := path.read_text().strip()):
            return text
        await asyncio.sleep(0.02)
    raise AssertionError(f"{path} was not written within {within}s")


# ---- in-process engine ----------------------------------------------------------------------


class Engine:
    """A Runtime with its executor and worker running as asyncio tasks."""

    def __init__(self, rt: Any) -> None:
        self.rt = rt

    async def deploy(self, source: str) -> Any:
        return await self.rt.flows.deploy(source)

    async def start(self, source: str, inputs: dict[str, Any] | None = None, **kw: Any) -> str:
        from engine.inputs import resolve_inputs

        flow = await self.deploy(source)
        return await self.rt.create_execution(flow, resolve_inputs(flow, inputs or {}), **kw)  # type: ignore[no-any-return]

    async def wait(self, execution_id: str, timeout: float = 15) -> Any:
        return await self.rt.wait_terminal(execution_id, timeout=timeout)

    async def run(self, source: str, inputs: dict[str, Any] | None = None, timeout: float = 15) -> Any:
        """Deploy, start and wait for the end (subscribed before the start, so nothing is missed)."""
        from engine.ids import new_execution_id
        from engine.inputs import resolve_inputs

        flow = await self.deploy(source)
        resolved = resolve_inputs(flow, inputs or {})
        eid = new_execution_id()
        return await self.rt.wait_terminal(
            eid, on_start=lambda: self.rt.create_execution(flow, resolved, execution_id=eid), timeout=timeout
        )

    async def load(self, execution_id: str) -> Any:
        return await self.rt.load_execution(execution_id)


@asynccontextmanager
async def engine_roles(nats_url: str, home: Path) -> AsyncIterator[Engine]:
    from engine.runtime import Runtime

    async with Runtime(nats_url=nats_url, home=home) as rt:
        roles = [asyncio.create_task(rt.executor().run()), asyncio.create_task(rt.worker().run())]
        try:
            yield Engine(rt)
        finally:
            from engine.aio import stop_tasks

            await stop_tasks(roles)


def by_task(state: Any) -> dict[str, Any]:
    """An Execution's taskruns by task id (``id[value]`` inside loops)."""
    out = {}
    for tr in state.taskruns.values():
        key = tr.task_id if tr.value is None else f"{tr.task_id}[{tr.value}]"
        out[key] = tr
    return out
