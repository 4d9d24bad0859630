"""The executor's reads of executions it does not hold in memory, many in one round.

An executor that takes over a dead peer's partitions receives at once the inputs of thousands of
executions it has never seen; each one's first step starts with a read of its snapshot and tail.
The loads asked for while rounds are being read (up to ``IN_FLIGHT`` at once) wait and go together
in the next one (``eventstore.reader.read_executions``): a lone load costs a few requests, a
takeover a few requests per hundreds of executions.
"""

from __future__ import annotations

import asyncio
import contextlib

from engine.aio import cancelling
from engine.core.ports import HistoryStore
from engine.settings import settings
from eventstore.reader import ExecutionRead, read_execution, read_executions


def snapshot_every() -> int:
    """ENGINE_SNAPSHOT_EVERY steps (default 100) between two snapshots of an execution's state."""
    return settings().snapshot_every


ROUND = 512  # executions read in one round (bounds a round's requests and the memory of its answers)
# Rounds read at once. One at a time, a takeover's loads waited for each other: a round is a few
# round trips, slow on a loaded server, and the executions asked for meanwhile (thousands) queued
# behind it (bench/recovery.py: 0.25-2 s from an execution's first input to its state).
IN_FLIGHT = 4


class Loads:
    def __init__(self, store: HistoryStore, per_round: int = ROUND, in_flight: int = IN_FLIGHT) -> None:
        self.store = store
        self.per_round = per_round
        self.in_flight = in_flight
        self._waiting: list[tuple[str, asyncio.Future[ExecutionRead]]] = []
        self._rounds: set[asyncio.Task[None]] = set()
        self._starting = False  # a round is about to take what waits (at the loop's next turn)
        self._closing = False

    async def read(self, execution_id: str) -> ExecutionRead:
        """The execution as it stands (its snapshot plus the tail), read with the others asked for."""
        future: asyncio.Future[ExecutionRead] = asyncio.get_running_loop().create_future()
        self._waiting.append((execution_id, future))
        self._kick()
        return await future

    def _kick(self) -> None:
        if self._waiting and not (self._starting or self._closing) and len(self._rounds) < self.in_flight:
            self._starting = True
            self._track(asyncio.create_task(self._start()))

    def _track(self, task: asyncio.Task[None]) -> None:
        self._rounds.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._rounds.discard(task)
        self._kick()

    async def _start(self) -> None:
        await asyncio.sleep(0)  # the steps started in this turn of the loop join this round
        self._starting = False
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
        self._kick()  # what is left starts its own round, up to ``in_flight``
        if batch:
            await self._round(batch)

    async def _round(self, batch: dict[str, asyncio.Future[ExecutionRead]]) -> None:
        try:
            try:
                reads = await read_executions(self.store, list(batch))
            except Exception as exc:
                if cancelling():
                    raise asyncio.CancelledError from exc
                # One stream without a leader (an election) fails the round: read them one by
                # one, so that only the executions whose own read fails wait for a retry.
                await self._one_by_one(batch)
                return
        except BaseException:
            for future in batch.values():
                future.cancel()
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

    async def close(self) -> None:
        """Stop reading (the executor stops): whoever still waits is cancelled."""
        self._closing = True
        try:
            rounds, self._rounds = list(self._rounds), set()
            for task in rounds:
                task.cancel()
            for task in rounds:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for _, future in self._waiting:
                future.cancel()
            self._waiting = []
        finally:
            self._closing = self._starting = False
