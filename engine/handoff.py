"""A worker's report handed to the executor of the same process, with no write of its own.

A report published to the inbox costs a durable write and a round trip before the executor even
sees it; then the executor's step is a second write. When the executor that owns the execution's
partition runs in the worker's process (``engine run``, ``engine server local``), the report goes to
it in memory instead, and the step that folds it in is the one write that stores it: one fsync less
per taskrun, and one fewer on the path from one task to the next.

Nothing is lost by it. The worker acknowledges its work message only when the executor says the
step is stored (``ack``); when the executor cannot take the report (it does not own the partition,
it is stopping, its append conflicted or failed) it says so (``nak``) and the worker publishes the
report to the inbox as before. Were the process to die in between, the work message, not yet
acknowledged, comes back and runs only if its attempt is still owed (the worker's redelivery rule).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from engine.core.ports import InputDelivery

_Take = Callable[[InputDelivery], bool]


class LocalInput:
    """One report in memory, as the executor's input consumer hands inputs over."""

    __slots__ = ("_answer", "data", "execution_id", "partition")

    redelivered = False

    def __init__(self, data: bytes, execution_id: str, partition: int, answer: asyncio.Future[bool]) -> None:
        self.data = data
        self.execution_id = execution_id
        self.partition = partition
        self._answer = answer

    def _settle(self, stored: bool) -> None:
        if not self._answer.done():
            self._answer.set_result(stored)

    async def ack(self) -> None:
        """Folded into a stored step (or refused for good): the worker need not publish it."""
        self._settle(True)

    async def term(self) -> None:
        self._settle(True)

    async def nak(self, delay: float | None = None) -> None:
        """Not stored: the worker publishes it to the inbox itself."""
        self._settle(False)


class Handoff:
    """Where the worker of a process finds the executor of the same process, if it runs one."""

    def __init__(self) -> None:
        self._take: _Take | None = None

    def attach(self, take: _Take) -> None:
        """``take(input)`` queues an input for the executor, or says False (not its partition)."""
        self._take = take

    def detach(self, take: _Take) -> None:
        if self._take == take:  # bound methods: equal, never the same object
            self._take = None

    def offer(self, execution_id: str, partition: int, data: bytes) -> asyncio.Future[bool] | None:
        """Hand a report over; the future says whether the executor stored it. None: no taker."""
        take = self._take
        if take is None:
            return None
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if not take(LocalInput(data, execution_id, partition, answer)):
            return None
        return answer
