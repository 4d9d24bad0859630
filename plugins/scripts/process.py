"""Run a local process, stream its output line by line, and never leave anything behind.

The child starts in a new session (so a new process group whose id is its pid). Every line
of stdout/stderr is handed to a callback as soon as it arrives. When the caller is cancelled
(the worker enforces a task ``timeout`` by cancelling) the whole group gets SIGTERM, then
SIGKILL after ``kill_grace_s``, and the child is reaped before the cancellation propagates.
When the child exits normally, whatever it left running in its group (``cmd &``) is killed
too, so the output pipes reach EOF and nothing outlives the task.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import anyio
from anyio.abc import ByteReceiveStream, Process

__all__ = ["MAX_LINE", "LineCallback", "LongLineCallback", "run_process"]

LineCallback = Callable[[str], None]
# A line longer than MAX_LINE: its first MAX_LINE bytes (decoded) and its whole size in bytes.
LongLineCallback = Callable[[str, int], None]

# The longest output line read whole (a ``::{"outputs": ...}::`` line carries a task's outputs).
# Beyond it only the head is kept: a process printing without newlines cannot fill the memory.
MAX_LINE = 16 << 20


def _decode(raw: bytes | bytearray) -> str:
    return raw.decode("utf-8", errors="replace").rstrip("\r")


async def _pump(
    stream: ByteReceiveStream | None, callback: LineCallback, on_long: LongLineCallback, max_line: int
) -> None:
    if stream is None:
        return
    buffer = bytearray()
    size = 0  # bytes of the current line once it is over max_line (then only its head is in buffer)

    def line_ended() -> None:
        nonlocal size
        if size:
            on_long(_decode(buffer), size)
        elif len(buffer) > max_line:
            on_long(_decode(buffer[:max_line]), len(buffer))
        else:
            callback(_decode(buffer))
        buffer.clear()
        size = 0

    async for chunk in stream:
        start = 0
        # Only the new chunk is searched for a newline: a long line costs its length, not its square.
        while (end := chunk.find(b"\n", start)) >= 0:
            if size:
                size += end - start
            else:
                buffer += chunk[start:end]
            line_ended()
            start = end + 1
        rest = len(chunk) - start
        if size:
            size += rest
        else:
            buffer += chunk[start:]
            if len(buffer) > max_line:
                size = len(buffer)
                del buffer[max_line:]
    if buffer or size:
        line_ended()


def _head_only(callback: LineCallback) -> LongLineCallback:
    def deliver(head: str, size: int) -> None:
        callback(head)

    return deliver


def _signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to process group ``pgid``; False when the group no longer exists."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - a member changed uid; nothing more we can do
        return False
    return True


def _group_alive(pgid: int) -> bool:
    """Whether a live (non-zombie) process remains in group ``pgid``.

    Uses /proc on Linux, where orphaned zombies may linger until init reaps them; elsewhere
    falls back to ``killpg(pgid, 0)``, which also counts zombies.
    """
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return _signal_group(pgid, 0)
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


async def _wait_group_gone(pgid: int, timeout_s: float = 1.0) -> None:
    """Give killed group members a moment to actually die (signal delivery is asynchronous)."""
    with anyio.move_on_after(timeout_s):
        while _group_alive(pgid):
            await anyio.sleep(0.01)


async def _terminate(process: Process, grace_s: float) -> None:
    """SIGTERM the group, SIGKILL it after ``grace_s``, and reap the child. Call shielded."""
    _signal_group(process.pid, signal.SIGTERM)
    with anyio.move_on_after(grace_s):
        await process.wait()
    # Whatever still runs in the group (the child ignoring SIGTERM, or its children) dies now.
    killed = _signal_group(process.pid, signal.SIGKILL)
    await process.wait()
    if killed:
        await _wait_group_gone(process.pid)


async def run_process(
    argv: Sequence[str],
    *,
    cwd: str | Path,
    env: Mapping[str, str] | None,
    on_stdout: LineCallback,
    on_stderr: LineCallback,
    kill_grace_s: float = 2.0,
    drain_s: float = 5.0,
    on_start: Callable[[int], None] | None = None,
    on_long_line: LongLineCallback | None = None,
    max_line: int = MAX_LINE,
) -> int:
    """Run ``argv`` in ``cwd`` with exactly ``env`` (None: inherit) and return its exit status.

    Each output line (without its newline) goes to ``on_stdout``/``on_stderr`` as it arrives,
    from the event loop thread; a line over ``max_line`` bytes goes to ``on_long_line`` instead
    (by default its head goes to the line's callback). ``on_start`` receives the pid right
    after the spawn. The status
    is Python's: negative ``-N`` when the child was killed by signal N. Stdin is /dev/null.
    On cancellation (or a callback raising) the process group is terminated as described in
    the module docstring before the exception propagates.
    """
    process = await anyio.open_process(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=env,
        start_new_session=True,
    )
    try:
        if on_start is not None:
            on_start(process.pid)
        async with anyio.create_task_group() as tg:
            for stream, callback in ((process.stdout, on_stdout), (process.stderr, on_stderr)):
                on_long = on_long_line or _head_only(callback)
                tg.start_soon(_pump, stream, callback, on_long, max_line)
            code = await process.wait()
            # Background leftovers would keep the pipes open (and keep running): end them.
            if _signal_group(process.pid, signal.SIGKILL):
                await _wait_group_gone(process.pid)
            # A grandchild that escaped the group (setsid) may still hold a pipe: stop reading
            # after ``drain_s`` rather than hang.
            tg.cancel_scope.deadline = anyio.current_time() + drain_s
        return code
    except BaseException as exc:
        with anyio.CancelScope(shield=True):
            await _terminate(process, kill_grace_s)
        if isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
            raise exc.exceptions[0] from None  # a callback's own error, not a task-group wrapper
        raise
    finally:
        with anyio.CancelScope(shield=True):
            await process.aclose()
