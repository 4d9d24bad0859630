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

__all__ = ["LineCallback", "run_process"]

LineCallback = Callable[[str], None]

_MAX_LINE = 1 << 20  # a line longer than 1 MiB is delivered in pieces


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").rstrip("\r")


async def _pump(stream: ByteReceiveStream | None, callback: LineCallback) -> None:
    if stream is None:
        return
    buffer = b""
    async for chunk in stream:
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            callback(_decode(line))
        while len(buffer) > _MAX_LINE:
            callback(_decode(buffer[:_MAX_LINE]))
            buffer = buffer[_MAX_LINE:]
    if buffer:
        callback(_decode(buffer))


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
) -> int:
    """Run ``argv`` in ``cwd`` with exactly ``env`` (None: inherit) and return its exit status.

    Each output line (without its newline) goes to ``on_stdout``/``on_stderr`` as it arrives,
    from the event loop thread. ``on_start`` receives the pid right after the spawn. The status
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
            tg.start_soon(_pump, process.stdout, on_stdout)
            tg.start_soon(_pump, process.stderr, on_stderr)
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
