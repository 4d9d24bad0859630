"""The executor's reads of executions it does not hold in memory, many in one round.

An executor that takes over a dead peer's partitions receives at once the inputs of thousands of
executions it has never seen; each one's first step starts with a read of its snapshot and tail.
The loads asked for while a round is being read wait and go together in the next one
(``eventstore.reader.read_executions``): a lone load costs the same two requests as before, a
takeover a few requests per hundreds of executions instead of two each.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

from engine.aio import cancelling
from engine.core.ports import HistoryStore
from engine.settings import settings
from eventstore.reader import ExecutionRead, read_execution, read_executions


def snapshot_every() -> int:
    """ENGINE_SNAPSHOT_EVERY steps (default 100) between two snapshots of an execution's state."""
    return settings().snapshot_every


ROUND = 512  # executions read in one round (bounds a round's requests and the memory of its answers)


class Loads:
    def __init__(self, store: HistoryStore, per_round: int = ROUND) -> None:
        self.store = store
        self.per_round = per_round
        self._waiting: list[tuple[str, asyncio.Future[ExecutionRead]]] = []
        self._reader: asyncio.Task[None] | None = None

    async def read(self, execution_id: str) -> ExecutionRead:
        """The execution as it stands (its snapshot plus the tail), read with the others asked for."""
        future: asyncio.Future[ExecutionRead] = asyncio.get_running_loop().create_future()
        self._waiting.append((execution_id, future))
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read_rounds())
        return await future

    async def _read_rounds(self) -> None:
        await asyncio.sleep(0)  # the steps started in this turn of the loop join the first round
        while self._waiting:
            # One future per execution and round: two readers of one execution (a replay reading
            # its source while the source takes a step) each get their own copy to fold into.
            batch: dict[str, asyncio.Future[ExecutionRead]] = {}
            later: list[tuple[str, asyncio.Future[ExecutionRead]]] = []
            for eid, future in self._waiting:
                if future.done():  # its step was cancelled
                    continue
                if eid in batch or len(batch) >= self.per_round:
                    later.append((eid, future))
                else:
                    batch[eid] = future
            self._waiting = later
            if not batch:
                continue
            try:
                try:
                    reads = await read_executions(self.store, list(batch))
                except Exception as exc:
                    if cancelling():
                        raise asyncio.CancelledError from exc
                    # One stream without a leader (an election) fails the round: read them one by
                    # one, so that only the executions whose own read fails wait for a retry.
                    await self._one_by_one(batch)
                    continue
            except BaseException:
                self._cancel(batch.values())
                raise
            for eid, future in batch.items():
                if not future.done():
                    future.set_result(reads[eid])

    async def _one_by_one(self, batch: dict[str, asyncio.Future[ExecutionRead]]) -> None:
        async def one(eid: str, future: asyncio.Future[ExecutionRead]) -> None:
            try:
                read = await read_execution(self.store, eid)
            except Exception as exc:
                if cancelling():
                    raise asyncio.CancelledError from exc
                if not future.done():
                    future.set_exception(exc)
                return
            if not future.done():
                future.set_result(read)

        await asyncio.gather(*(one(eid, future) for eid, future in batch.items()))

    def _cancel(self, futures: Iterable[asyncio.Future[ExecutionRead]]) -> None:
        for future in [*futures, *(f for _, f in self._waiting)]:
            future.cancel()
        self._waiting = []

    async def close(self) -> None:
        """Stop reading (the executor stops): whoever still waits is cancelled."""
        reader, self._reader = self._reader, None
        if reader is not None and not reader.done():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        self._cancel(())
