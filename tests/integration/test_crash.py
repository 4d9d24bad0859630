"""kill -9 of `engine run` (and of its embedded nats-server) in the middle of an execution.

The data directory must stay usable (a fresh `engine run` succeeds) and the killed execution's
history must fold into a consistent prefix: every step whole, nothing half-applied.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from integration_helpers import ROOT, alive, cmdline, engine_env, pids_mentioning, run_cli, wait_gone

pytestmark = pytest.mark.anyio

TERMINAL = {"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "SKIPPED"}

CRASH_FLOW = """
id: crash
namespace: it.crash
tasks:
  - id: first
    type: io.kestra.plugin.core.log.Log
    message: first-task-done
  - id: second
    type: io.kestra.plugin.core.debug.Return
    format: "second"
  - id: nap
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - echo $$ > {pidfile}
      - exec sleep 20
  - id: last
    type: io.kestra.plugin.core.log.Log
    message: not reached before the crash
"""

QUICK_FLOW = """
id: quick
namespace: it.crash
tasks:
  - id: only
    type: io.kestra.plugin.core.debug.Return
    format: "{{ 6 * 7 }}"
"""


def children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(entry.name))
    return out


def server_pid(home: Path) -> int:
    """The embedded nats-server's PID, from its ports file under ENGINE_HOME/nats/run."""
    ports = sorted((home / "nats" / "run").glob("nats-server_*.ports"))
    assert len(ports) == 1, ports
    pid = int(ports[0].stem.rsplit("_", 1)[1])
    assert "nats-server" in cmdline(pid) and str(home) in cmdline(pid), cmdline(pid)
    return pid


def check_invariants(state: Any, where: str) -> None:
    """What must hold after every whole step."""
    dates = [h.date for h in state.histories]
    assert dates == sorted(dates), where
    assert state.histories[0].state == "CREATED", where
    for tr in state.taskruns.values():
        what = f"{where}: taskrun {tr.task_id} {tr.state}"
        assert [h.date for h in tr.histories] == sorted(h.date for h in tr.histories), what
        numbers = [a.number for a in tr.attempts]
        assert numbers == list(range(1, len(numbers) + 1)), what
        for a in tr.attempts[:-1]:
            assert a.state != "RUNNING", f"{what}: attempt {a.number} never ended but a later one exists"
        if tr.runnable and tr.state in ("SUCCESS", "WARNING"):
            assert tr.attempts, f"{what} without an attempt"
            last = tr.attempts[-1]
            assert last.state in ("SUCCESS", "WARNING"), f"{what}: last attempt {last.state}"
            assert len(last.histories) >= 2, f"{what}: last attempt has no end"
        if tr.parent_id is not None:
            assert tr.parent_id in state.taskruns, what


async def test_kill_9_mid_execution(tmp_path: Path) -> None:
    from engine.core import events as ev
    from engine.core.execution import evolve
    from engine.runtime import Runtime
    from eventstore import subjects as S

    home = tmp_path / "home"
    pidfile = tmp_path / "nap.pid"
    flow = tmp_path / "crash.yaml"
    flow.write_text(CRASH_FLOW.format(pidfile=pidfile))
    quick = tmp_path / "quick.yaml"
    quick.write_text(QUICK_FLOW)
    errlog = tmp_path / "engine.stderr"

    with errlog.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "engine", "run", str(flow)],
            cwd=ROOT,
            env=engine_env(home, None),
            stdout=subprocess.DEVNULL,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
    started: list[int] = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"engine exited early:\n{errlog.read_text()}"
            if "first-task-done" in errlog.read_text() and pidfile.exists() and pidfile.read_text().strip():
                break
            time.sleep(0.02)
        else:
            raise AssertionError(f"the first task never logged:\n{errlog.read_text()}")
        nats = server_pid(home)
        assert nats in children(proc.pid)
        nap = int(pidfile.read_text())
        assert "sleep" in cmdline(nap)
        started = [proc.pid, nats, nap]
        # The crash: everything we started, SIGKILL, by PID.
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        os.kill(nats, signal.SIGKILL)
        os.kill(nap, signal.SIGKILL)
        for pid in (nats, nap):
            assert wait_gone(pid), pid
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in started[1:]:
            if alive(pid) and (str(home) in cmdline(pid) or cmdline(pid).startswith("sleep 20")):
                os.kill(pid, signal.SIGKILL)

    # The same data directory works for a fresh run (the stale ports file, the store, the consumers).
    res = run_cli(
        "run", str(quick), "--output", "json", "--timeout", "20", home=home, nats_url=None, timeout=40
    )
    assert res.code == 0, res.diag
    assert res.json["outputs"] == {} and res.json["taskRunList"][0]["outputs"] == {"value": "42"}

    # Read the killed execution back (its id was never printed: BUG-I6; list the EVENTS subjects).
    async with Runtime(home=home) as rt:
        ids = []
        for stream in await rt.store.js.streams_info():
            if stream.config.name.startswith(S.EVENTS):  # EVENTS, or its shards EVENTS_<k>
                info = await rt.store.js.stream_info(stream.config.name, subjects_filter="ev.>")
                ids += [subject.split(".", 2)[2] for subject in (info.state.subjects or {})]
        assert len(ids) == 2, ids
        states = {eid: await rt.load_execution(eid) for eid in ids}
        (crashed_id,) = [eid for eid, st in states.items() if st is not None and st.flow_id == "crash"]
        (quick_id,) = [eid for eid in ids if eid != crashed_id]
        assert quick_id == res.json["id"]
        steps = await rt.store.read(crashed_id)

    # Every step is whole: it decodes, it folds, and the invariants hold after each one.
    assert steps, "no history"
    seqs = [seq for seq, _ in steps]
    assert seqs == sorted(set(seqs))
    first_events = steps[0][1]
    assert isinstance(first_events[0], ev.ExecutionCreated)
    assert first_events[0].execution_id == crashed_id
    state = None
    for seq, events in steps:
        assert events, f"empty step at seq {seq}"
        for event in events:
            state = evolve(state, event)
        assert state is not None
        check_invariants(state, f"after seq {seq}")

    # What ran before the crash is there, what did not is not; the execution is not ended.
    assert state is not None
    assert state.state == "RUNNING"
    by_id = {tr.task_id: tr for tr in state.taskruns.values()}
    assert by_id["first"].state == "SUCCESS"
    assert by_id["second"].state == "SUCCESS"
    assert by_id["second"].outputs == {"value": "second"}
    assert by_id["nap"].state not in TERMINAL
    assert "last" not in by_id
    assert pids_mentioning(str(home)) == []


SLOW_FLOW = """
id: slow
namespace: it.crash
tasks:
  - id: first
    type: io.kestra.plugin.core.log.Log
    message: first-task-done
  - id: nap
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - echo $$ > {pidfile}
      - exec sleep 20
"""


def test_sigterm_stops_the_embedded_server(tmp_path: Path) -> None:
    """BUG-I2: SIGTERM used to orphan the nats-server child; now it stops it, and the task process."""
    home = tmp_path / "home"
    pidfile = tmp_path / "nap.pid"
    flow = tmp_path / "slow.yaml"
    flow.write_text(SLOW_FLOW.format(pidfile=pidfile))
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "run", str(flow)],
        cwd=ROOT,
        env=engine_env(home, None),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    nats = nap = None
    try:
        deadline = time.monotonic() + 30
        while not (pidfile.exists() and pidfile.read_text().strip()):
            assert proc.poll() is None and time.monotonic() < deadline, "the sleep task never started"
            time.sleep(0.02)
        nats, nap = server_pid(home), int(pidfile.read_text())
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode != 0
        assert b"Traceback" not in err, err.decode()
        assert wait_gone(nats), "nats-server left running after SIGTERM"
        assert wait_gone(nap), "the task's process left running after SIGTERM"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in (nats, nap):
            ours = pid is not None and (str(home) in cmdline(pid) or cmdline(pid).startswith("sleep"))
            if pid is not None and ours and alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_cli_timeout_is_one_line(tmp_path: Path) -> None:
    """BUG-I4: --timeout used to end in a TimeoutError traceback."""
    home = tmp_path / "home"
    pidfile = tmp_path / "nap.pid"
    flow = tmp_path / "slow.yaml"
    flow.write_text(SLOW_FLOW.format(pidfile=pidfile))
    res = run_cli("run", str(flow), "--timeout", "1.5", home=home, nats_url=None, timeout=40)
    nap = int(pidfile.read_text())
    try:
        assert res.code == 1, res.diag
        assert "Traceback" not in res.stderr
        assert re.search(r"execution [0-9A-Za-z]{22} has not ended after 1.5s", res.stderr), res.stderr
        assert wait_gone(nap), "the task's process outlived the CLI"
        assert pids_mentioning(str(home)) == []
    finally:
        if alive(nap) and cmdline(nap).startswith("sleep"):
            os.kill(nap, signal.SIGKILL)
