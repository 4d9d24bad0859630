"""The shape of every conversion: the ``from`` file copied out of internal storage chunk by chunk, turned
into a new local file row by row in a thread (a task timeout or a kill stops it between two rows), the
result stored beside the taskrun. Memory holds one row at a time, whatever the file's size.
"""

from __future__ import annotations

import codecs
import threading
from collections.abc import Callable
from pathlib import Path

from engine.core.errors import TaskFailed
from plugins.api import RunContext, TaskResult
from plugins.files import put_task_file, scratch_dir, temp_name
from plugins.jdbc.common import interruptible


class Stop:
    """Set from the event loop when the task is cancelled; the converting loop checks it per row."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def check(self) -> None:
        if self.event.is_set():
            raise TaskFailed("conversion interrupted", retryable=False)


Convert = Callable[[Path, Path, Stop], int]


def check_charset(name: str) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise TaskFailed(
            f"charset: unknown charset {name!r} — use e.g. UTF-8, ISO-8859-1", retryable=False
        ) from None


def one_char(value: str, what: str) -> str:
    if len(value) != 1:
        raise TaskFailed(f"{what}: expected one character, got {value!r}", retryable=False)
    return value


async def convert(ctx: RunContext, source: str, extension: str, work: Convert, what: str) -> TaskResult:
    """Outputs ``uri`` (the new file) and ``size`` (the records converted)."""
    source = source.strip()
    if not source.startswith("kestra://"):
        raise TaskFailed(
            f"from: expected a kestra:// URI of internal storage, got {source!r}", retryable=False
        )
    with scratch_dir(ctx) as tmp:
        src = tmp / ("source" + Path(source).suffix)
        await ctx.storage.download(source, src)
        dst = tmp / temp_name(extension)
        stop = Stop()
        count = await interruptible(lambda: work(src, dst, stop), stop.event.set, what)
        uri = await put_task_file(ctx, dst)
    return TaskResult(outputs={"uri": uri, "size": count})
