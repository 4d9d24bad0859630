"""An attempt's log lines, held to be stored with its end while the attempt is short.

A line published on its own is one more durable append per taskrun, as costly as the taskrun's own
step: measured, one line per task took a fifth of the throughput. Most tasks end within a fraction
of a second, so their lines ride in the attempt's end report (``AttemptEnded.logs``) and are stored
by the same append as the end: whoever sees the end sees its lines, and no line waits in memory
after the end is stored.

An attempt that runs longer than ``HOLD_S``, or logs more than ``HOLD_LINES`` lines or
``HOLD_BYTES``, has its held lines published then, and every later line as it comes: a live tail
shows a long task's progress at most ``HOLD_S`` late. The price is that a worker killed within
``HOLD_S`` of an attempt's start loses that attempt's lines (the attempt itself is run again).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from engine.core.events import LogLine

HOLD_S = 0.5
HOLD_LINES = 64
HOLD_BYTES = 16 * 1024
_LINE_OVERHEAD = 96  # the fields beside the message, roughly, as encoded


class HeldLines:
    """A taskrun's lines: during an attempt (``hold``), held until ``take`` (its end) or published
    from the moment the attempt is long; between attempts, published as they come."""

    __slots__ = ("_bytes", "_held", "_post", "_timer")

    def __init__(self, post: Callable[[LogLine], None]) -> None:
        self._post = post
        self._held: list[LogLine] | None = None
        self._bytes = 0
        self._timer: asyncio.TimerHandle | None = None

    def hold(self) -> None:
        """An attempt starts: hold its lines."""
        self.release()
        self._held, self._bytes = [], 0

    def emit(self, line: LogLine) -> None:
        held = self._held
        if held is None:
            self._post(line)
            return
        held.append(line)
        self._bytes += len(line.message) + _LINE_OVERHEAD
        if len(held) > HOLD_LINES or self._bytes > HOLD_BYTES:
            self.release()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(HOLD_S, self.release)

    def release(self) -> None:
        """Publish what is held, and from now on each line as it comes."""
        for line in self._stop():
            self._post(line)

    def take(self) -> tuple[LogLine, ...]:
        """The held lines, for the end report; lines after this are published as they come."""
        return tuple(self._stop())

    def _stop(self) -> list[LogLine]:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        held, self._held = self._held or [], None
        return held
