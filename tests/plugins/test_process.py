"""plugins.scripts.process.run_process: streaming, exit codes, env, cancellation kills the group."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import anyio
import pytest

from plugins.scripts.process import run_process

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone); waits up to 2 s for it to die."""
    deadline = time.monotonic() + 2
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return _running(pid)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); treat it as gone
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


class Lines:
    def __init__(self) -> None:
        self.out: list[str] = []
        self.err: list[str] = []
        self.events: list[tuple[str, str, float]] = []

    def on_out(self, line: str) -> None:
        self.out.append(line)
        self.events.append(("out", line, time.monotonic()))

    def on_err(self, line: str) -> None:
        self.err.append(line)
        self.events.append(("err", line, time.monotonic()))


async def _run(argv: list[str], tmp_path: Path, lines: Lines, env: dict[str, str] | None = None) -> int:
    return await run_process(argv, cwd=tmp_path, env=env, on_stdout=lines.on_out, on_stderr=lines.on_err)


async def test_output_and_exit_code(tmp_path: Path) -> None:
    lines = Lines()
    code = await _run(
        ["/bin/sh", "-c", "echo one; echo two; echo oops >&2; printf tail; exit 3"], tmp_path, lines
    )
    assert code == 3
    assert lines.out == ["one", "two", "tail"]
    assert lines.err == ["oops"]


async def test_cwd_env_and_utf8(tmp_path: Path) -> None:
    lines = Lines()
    code = await _run(
        ["/bin/sh", "-c", 'pwd; echo "$FOO"; printf "caf\\303\\251\\r\\n\\377\\n"'],
        tmp_path,
        lines,
        env={"FOO": "bar", "PATH": os.environ["PATH"]},
    )
    assert code == 0
    assert lines.out == [str(tmp_path), "bar", "café", "\ufffd"]


async def test_lines_are_streamed_live(tmp_path: Path) -> None:
    lines = Lines()
    start = time.monotonic()
    script = "import time\nprint('a', flush=True)\ntime.sleep(0.6)\nprint('b', flush=True)"
    await _run([sys.executable, "-u", "-c", script], tmp_path, lines)
    assert [e[1] for e in lines.events] == ["a", "b"]
    # 'a' arrived well before the process finished
    assert lines.events[0][2] - start < lines.events[1][2] - start - 0.4


async def test_signal_exit_status(tmp_path: Path) -> None:
    lines = Lines()
    assert await _run(["/bin/sh", "-c", "kill -9 $$"], tmp_path, lines) == -9


async def test_cancellation_kills_process_group(tmp_path: Path) -> None:
    lines = Lines()
    pids: list[int] = []
    pidfile = tmp_path / "child.pid"
    start = time.monotonic()
    with anyio.move_on_after(0.5) as scope:
        await run_process(
            ["/bin/sh", "-c", f"sleep 30 & echo $! > {pidfile}; sleep 30"],
            cwd=tmp_path,
            env=None,
            on_stdout=lines.on_out,
            on_stderr=lines.on_err,
            on_start=pids.append,
        )
    assert scope.cancelled_caught
    assert time.monotonic() - start < 5
    child = int(pidfile.read_text())
    assert not _alive(pids[0])
    assert not _alive(child)


async def test_sigterm_ignored_gets_sigkill(tmp_path: Path) -> None:
    lines = Lines()
    pids: list[int] = []
    script = "import signal,time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(30)"
    start = time.monotonic()
    with anyio.move_on_after(0.5):
        await run_process(
            [sys.executable, "-c", script],
            cwd=tmp_path,
            env=None,
            on_stdout=lines.on_out,
            on_stderr=lines.on_err,
            on_start=pids.append,
            kill_grace_s=0.3,
        )
    assert time.monotonic() - start < 5
    assert not _alive(pids[0])


async def test_background_leftovers_killed_after_exit(tmp_path: Path) -> None:
    lines = Lines()
    pidfile = tmp_path / "bg.pid"
    start = time.monotonic()
    code = await _run(["/bin/sh", "-c", f"sleep 30 & echo $! > {pidfile}; echo done"], tmp_path, lines)
    assert code == 0 and lines.out == ["done"]
    assert time.monotonic() - start < 5
    assert not _alive(int(pidfile.read_text()))


async def test_callback_error_kills_and_propagates(tmp_path: Path) -> None:
    pids: list[int] = []

    def boom(line: str) -> None:
        raise RuntimeError(line)

    with pytest.raises(RuntimeError, match=r"^x$"):
        await run_process(
            ["/bin/sh", "-c", "echo x; sleep 30"],
            cwd=tmp_path,
            env=None,
            on_stdout=boom,
            on_stderr=boom,
            on_start=pids.append,
        )
    assert not _alive(pids[0])


async def test_missing_executable(tmp_path: Path) -> None:
    lines = Lines()
    with pytest.raises(FileNotFoundError):
        await _run(["/nonexistent/binary"], tmp_path, lines)


async def test_a_line_over_max_line_goes_whole_in_size_to_on_long_line(tmp_path: Path) -> None:
    lines: list[str] = []
    long: list[tuple[str, int]] = []
    code = "import sys; sys.stdout.write('short\\n' + 'y' * 100000 + '\\n' + 'tail\\n' + 'z' * 30)"
    status = await run_process(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=None,
        on_stdout=lines.append,
        on_stderr=lines.append,
        on_long_line=lambda head, size: long.append((head, size)),
        max_line=10,
    )
    assert status == 0
    assert lines == ["short", "tail"]
    assert long == [("y" * 10, 100000), ("z" * 10, 30)]
