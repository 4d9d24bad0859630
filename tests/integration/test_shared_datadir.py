"""Two terminals on one data directory: the second talks to the process that owns it.

`engine run pause.yaml` owns the embedded server of its ENGINE_HOME (no ENGINE_NATS_URL); a second
`engine` process on the same ENGINE_HOME lists, reads the logs of and resumes the paused execution
through that server, and the first process ends SUCCESS.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from integration_helpers import ROOT, engine_env, run_cli

from eventstore.server import OWNER_FILE, owner_endpoint

PAUSE = """
id: pause-two-terminals
namespace: t.shared
tasks:
  - id: before
    type: io.kestra.plugin.core.log.Log
    message: before the pause
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: after the pause
"""


class Lines:
    """The stderr of a running process, read by a thread, waited on by pattern."""

    def __init__(self, stream: object) -> None:
        self.text = ""
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            with self._lock:
                self.text += line

    def close(self, stream: object) -> None:
        """After the process ended: the reader reaches the end of the pipe, then it is closed."""
        self._thread.join(timeout=10)
        stream.close()  # type: ignore[attr-defined]

    def wait_for(self, pattern: str, within: float = 30) -> re.Match[str]:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            with self._lock:
                found = re.search(pattern, self.text)
            if found:
                return found
            time.sleep(0.05)
        raise AssertionError(f"{pattern!r} never printed; stderr so far:\n{self.text}")


def test_a_second_terminal_lists_reads_and_resumes_what_engine_run_waits_for(tmp_path: Path) -> None:
    home = tmp_path / "home"
    flow = tmp_path / "pause.yaml"
    flow.write_text(PAUSE)
    first = subprocess.Popen(
        [sys.executable, "-m", "engine", "run", str(flow), "--output", "json"],
        cwd=ROOT,
        env=engine_env(home, None),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    err = Lines(first.stderr)
    try:
        found = err.wait_for(r"execution (\w+) PAUSED.*\n\s+(.*engine resume \w+)\n")
        eid, resume_cmd = found.group(1), found.group(2)
        assert resume_cmd.endswith(f"engine resume {eid}")
        assert f"ENGINE_HOME={home}" in resume_cmd  # the other terminal needs the same data directory
        owner = owner_endpoint(home / "nats")
        assert owner is not None and owner["owner_pid"] == first.pid and owner["roles"] is True

        listed = run_cli("executions", "list", home=home, nats_url=None)
        assert listed.code == 0, listed.stderr
        assert re.search(rf"^{eid}\s.*PAUSED\s+t\.shared\.pause-two-terminals$", listed.stdout, re.M)

        logs = run_cli("logs", eid, home=home, nats_url=None)
        assert logs.code == 0 and "before the pause" in logs.stderr, logs.stderr

        resumed = run_cli("resume", eid, "--output", "json", home=home, nats_url=None)
        assert resumed.code == 0, resumed.stderr
        assert resumed.json["state"]["current"] == "SUCCESS"

        assert first.wait(timeout=30) == 0, err.text
        out = first.stdout.read() if first.stdout else ""
        assert json.loads(out.splitlines()[-1])["state"]["current"] == "SUCCESS"
        err.wait_for("after the pause")
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
        err.close(first.stderr)
        if first.stdout:
            first.stdout.close()
    assert not (home / "nats" / OWNER_FILE).exists()  # removed on exit


def test_a_file_left_by_a_dead_owner_is_ignored(tmp_path: Path) -> None:
    store = tmp_path / "nats"
    store.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    doc = {"url": "nats://t@127.0.0.1:1", "owner_pid": dead.pid, "server_pid": os.getpid(), "roles": True}
    (store / OWNER_FILE).write_text(json.dumps(doc))
    assert owner_endpoint(store) is None
    # A live owner whose "server" PID is not this directory's nats-server (a reused PID): ignored too.
    doc["owner_pid"] = os.getppid()
    (store / OWNER_FILE).write_text(json.dumps(doc))
    assert owner_endpoint(store) is None


def test_engine_kill_from_a_second_terminal_exits_0(tmp_path: Path) -> None:
    home = tmp_path / "home"
    flow = tmp_path / "pause.yaml"
    flow.write_text(PAUSE)
    first = subprocess.Popen(
        [sys.executable, "-m", "engine", "run", str(flow)],
        cwd=ROOT,
        env=engine_env(home, None),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    err = Lines(first.stderr)
    try:
        eid = err.wait_for(r"execution (\w+) PAUSED").group(1)
        killed = run_cli("kill", eid, "--output", "json", home=home, nats_url=None)
        assert killed.code == 0, killed.diag  # the kill worked
        assert killed.json["state"]["current"] == "KILLED"
        assert first.wait(timeout=30) == 1  # the run itself did not succeed
        again = run_cli("kill", eid, home=home, nats_url=None)
        assert again.code == 1 and "already ended KILLED: nothing to kill" in again.stderr, again.stderr
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
        err.close(first.stderr)


def test_a_command_whose_owner_dies_says_so_and_the_next_one_takes_the_directory_over(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    flow = tmp_path / "pause.yaml"
    flow.write_text(PAUSE)
    env = engine_env(home, None)
    first = subprocess.Popen(
        [sys.executable, "-m", "engine", "run", str(flow)],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    err = Lines(first.stderr)
    follower = None
    try:
        eid = err.wait_for(r"execution (\w+) PAUSED").group(1)
        follower = subprocess.Popen(
            [sys.executable, "-m", "engine", "logs", "-f", eid],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        followed = Lines(follower.stderr)
        followed.wait_for("before the pause")
        first.kill()  # a crash: no clean-up at all (its nats-server is left running)
        first.wait()
        assert follower.wait(timeout=20) == 1, followed.text
        followed.wait_for(rf"the engine process \(pid {first.pid}\) that owned the data directory ended")
        followed.close(follower.stderr)
        # The next command owns the directory (the orphan server is stopped) and finds the execution.
        listed = run_cli("executions", "list", home=home, nats_url=None)
        assert listed.code == 0 and re.search(rf"^{eid}\s.*PAUSED", listed.stdout, re.M), listed.stderr
    finally:
        for proc in (first, follower):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        err.close(first.stderr)
