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
from collections.abc import Awaitable, Callable, Collection, Container
from typing import Protocol

from engine.aio import cancelling, until_done
from engine.core.errors import PayloadTooLarge
from engine.core.ports import HeldWork, InputDelivery, WorkQueue
from engine.core.work import WorkItem, encode_work, work_msg_id
from engine.logs import get_logger

log = get_logger("engine.handoff")

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
    """Where the worker and the executor of one process find each other."""

    def __init__(self) -> None:
        self._take: _Take | None = None
        self._take_work: Callable[[LocalWork], bool] | None = None

    def attach_worker(self, take: Callable[[LocalWork], bool]) -> None:
        """``take(work)`` starts work in memory, or says False (another group, or not taking work)."""
        self._take_work = take

    def detach_worker(self, take: Callable[[LocalWork], bool]) -> None:
        if self._take_work == take:
            self._take_work = None

    @property
    def takes_work(self) -> bool:
        return self._take_work is not None

    def offer_work(self, work: LocalWork) -> bool:
        take = self._take_work
        return take is not None and take(work)

    def attach(self, take: _Take) -> None:
        """``take(input)`` queues an input for the executor, or says False (not its partition)."""
        self._take = take

    def detach(self, take: _Take) -> None:
        if self._take == take:  # bound methods: equal, never the same object
            self._take = None

    async def hand_over(self, execution_id: str, partition: int, data: bytes, wait_s: float) -> bool:
        """Offer an input and wait (``wait_s`` at most) for the executor to say it stored it. False:
        no taker, not stored, or too slow (the caller publishes it; a second copy is ignored). A timer,
        not wait_for or asyncio.wait: a tenth of a report's CPU."""
        answer = self.offer(execution_id, partition, data)
        if answer is None:
            return False
        timer = asyncio.get_running_loop().call_later(wait_s, _not_stored, answer)
        try:
            return await answer
        finally:
            timer.cancel()

    def offer(self, execution_id: str, partition: int, data: bytes) -> asyncio.Future[bool] | None:
        """Hand a report over; the future says whether the executor stored it. None: no taker."""
        take = self._take
        if take is None:
            return None
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if not take(LocalInput(data, execution_id, partition, answer)):
            return None
        return answer


async def give_back(msg: InputDelivery) -> None:
    """An input an executor will not fold: a report in memory goes back to its worker, which
    publishes it; one from the inbox is left to the partition's next consumer."""
    if isinstance(msg, LocalInput):
        await msg.nak()


def _not_stored(answer: asyncio.Future[bool]) -> None:
    if not answer.done():
        answer.set_result(False)


# ---- work in memory: the executor of a process dispatching to the worker of the same process ----

WorkKey = tuple[str, str, int]  # execution, taskrun, attempt
_DoneCallback = Callable[["LocalWork", bool], Awaitable[None]]


class LocalWork:
    """A work message in memory, as the worker's work consumer hands deliveries over."""

    __slots__ = ("_on_done", "data", "execution_id", "group", "key", "outcome", "partition")

    redelivered = False

    def __init__(
        self, data: bytes, key: WorkKey, group: str | None, partition: int, on_done: _DoneCallback
    ) -> None:
        self.data = data
        self.key = key
        self.execution_id = key[0]
        self.group = group
        self.partition = partition
        self._on_done = on_done
        self.outcome: bool | None = None  # None: in hand; True: reported; False: handed back

    async def ack(self) -> None:
        """Reported (its end stored, or its start announced): the executor owns it from here."""
        await self._finish(True)

    async def term(self) -> None:
        await self._finish(True)

    async def nak(self, delay: float | None = None) -> None:
        """Not run by this worker: the executor sends it through the work queue."""
        await self._finish(False)

    async def _finish(self, handled: bool) -> None:
        if self.outcome is None:
            self.outcome = handled
            await self._on_done(self, handled)


class MemoryStore(HeldWork, WorkQueue, Protocol):
    """What work in memory needs of the store: the marks of held executions, and the queue."""

    def check_size(self, payload: bytes, headers: dict[str, str] | None) -> None: ...


class MemoryWork:
    """The executor's side: work it handed to its process's worker and not yet seen reported.

    Used only while the executor is the only one (no other can take a partition over and dispatch
    the same attempt again meanwhile). Before a partition goes to another executor, its work still
    in memory is awaited (an attempt is announced, and so recorded as started, after 20 ms), and what
    is left is sent through the work queue with its usual message id; the worker skips a queued copy
    of an attempt it holds or held in memory.

    A process can also die holding work that no record names: not yet announced, or its announce
    lost in an outage. Nothing would dispatch it again, since its execution may wait for no input
    (chaos seed 85 left one RUNNING). So an execution is marked in the store before its first work
    goes into memory, and unmarked when it ends: whoever takes a partition (or starts) loads its
    marked executions, and a first load dispatches again, through the queue, what was not started.
    Two writes per execution, where the queue costs one per taskrun.
    """

    def __init__(self, store: MemoryStore, handoff: Handoff | None) -> None:
        self.store = store
        self.handoff = handoff
        self.enabled = True
        self.held: dict[int, dict[WorkKey, LocalWork]] = {}  # partition -> work in memory
        self.marked: dict[str, int] = {}  # execution -> partition, known marked (by us or a sweep)
        self._to_sweep: set[int] = set()  # partitions taken, whose marked executions are to load
        self._marking: dict[str, asyncio.Task[bool]] = {}  # marks on their way (``mark_soon``)
        self._sweep_wanted = asyncio.Event()

    async def offer(self, execution_id: str, partition: int, item: WorkItem, group: str | None) -> bool:
        """Hand the work to this process's worker: False when it must take the queue (no worker
        here, its execution's mark not stored, or work the queue would refuse as too large)."""
        handoff = self._local_worker()
        if handoff is None:
            return False  # no worker in this process: nothing to mark either
        payload = encode_work(item)
        try:
            self.store.check_size(
                payload, {"Nats-Msg-Id": work_msg_id(execution_id, item.taskrun_id, item.attempt)}
            )
        except PayloadTooLarge:
            return False  # the queue's path fails its attempt and says why
        if not await self._mark(execution_id, partition):
            return False
        key = (execution_id, item.taskrun_id, item.attempt)
        work = LocalWork(payload, key, group, partition, self.done)
        if not handoff.offer_work(work):
            return False
        self.track(work)  # the worker answers from a task of its own: never before this
        return True

    def _local_worker(self) -> Handoff | None:
        """Where this process's worker takes work in memory, while it does."""
        handoff = self.handoff
        return handoff if self.enabled and handoff is not None and handoff.takes_work else None

    def mark_soon(self, execution_id: str, partition: int) -> None:
        """Start writing the execution's mark now, beside the step that dispatches its first work:
        one fsync less on its way (a mark whose step then fails only makes a takeover load it)."""
        if self._local_worker() is None or execution_id in self.marked or execution_id in self._marking:
            return
        task = asyncio.get_running_loop().create_task(self._write_mark(execution_id, partition))
        self._marking[execution_id] = task
        task.add_done_callback(lambda _: self._marking.pop(execution_id, None))

    async def _mark(self, execution_id: str, partition: int) -> bool:
        if execution_id in self.marked:
            return True
        pending = self._marking.get(execution_id)
        if pending is not None:
            return await asyncio.shield(pending)
        return await self._write_mark(execution_id, partition)

    async def _write_mark(self, execution_id: str, partition: int) -> bool:
        try:
            await self.store.mark_held(execution_id)
        except Exception as exc:
            if cancelling():
                raise asyncio.CancelledError from exc
            log.warning(
                "executor.mark_failed", execution_id=execution_id, error=f"{type(exc).__name__}: {exc}"
            )
            return False
        self.marked[execution_id] = partition
        return True

    def ended(self, execution_id: str) -> None:
        if self.marked.pop(execution_id, None) is not None:
            self.store.clear_held(execution_id)

    async def marked_in(self, partitions: Collection[int]) -> list[tuple[str, int]]:
        """The executions of ``partitions`` (and each one's) that a process may have held work of."""
        found = await self.store.held_executions(partitions)
        self.marked.update(found)
        return found

    def taken(self, partition: int) -> None:
        """``partition`` is now ours: its marked executions are to be loaded (``sweep``)."""
        self._to_sweep.add(partition)
        self._sweep_wanted.set()

    async def sweep(
        self, owns: Callable[[int], bool], loaded: Container[str], reload: Callable[[Reload], None]
    ) -> None:
        """Hand ``reload`` the marked executions not ``loaded`` of the partitions just taken: a
        process that held work of theirs in memory may be dead, and their first load dispatches
        again what was not started."""
        while True:
            await self._sweep_wanted.wait()
            self._sweep_wanted.clear()
            parts, self._to_sweep = {p for p in self._to_sweep if owns(p)}, set()
            try:
                found = await self.marked_in(parts)
            except Exception as exc:
                if cancelling():
                    raise asyncio.CancelledError from exc
                log.warning("executor.sweep_failed", error=f"{type(exc).__name__}: {exc}")
                self._to_sweep |= parts
                await asyncio.sleep(1)
                self._sweep_wanted.set()
                continue
            reloads = [Reload(eid, p) for eid, p in found if eid not in loaded]
            if reloads:
                log.info("executor.held_reloaded", executions=len(reloads), partitions=len(parts))
            for item in reloads:
                reload(item)

    def track(self, work: LocalWork) -> None:
        self.held.setdefault(work.partition, {})[work.key] = work

    async def done(self, work: LocalWork, handled: bool) -> None:
        self.held.get(work.partition, {}).pop(work.key, None)
        if not handled:
            await self.send_durably(work)

    async def release(self, partition: int, wait_s: float = 2.0) -> None:
        """Before ``partition`` changes hands: wait (bounded) for its work in memory to be reported,
        then queue what is left durably. Its marks stay: its next owner loads those executions."""
        deadline = asyncio.get_running_loop().time() + wait_s
        while self.held.get(partition) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        for work in list(self.held.pop(partition, {}).values()):
            await self.send_durably(work)
        self.marked = {eid: p for eid, p in self.marked.items() if p != partition}

    async def send_durably(self, work: LocalWork) -> None:
        """Work handed back from memory goes to the queue, retried until stored (nothing else has it)."""
        eid, taskrun_id, attempt = work.key

        def warn(exc: Exception, delay: float) -> None:
            log.warning("executor.dispatch_retry", execution_id=eid, error=f"{type(exc).__name__}: {exc}")

        send = self.store.dispatch
        await until_done(
            lambda: send(eid, work.group, work.data, work_msg_id(eid, taskrun_id, attempt)), warn
        )


class Reload:
    """An input with nothing in it, from a sweep: load the execution, so that its first load
    dispatches again what a dead process may have held in memory."""

    __slots__ = ("execution_id", "partition")

    data = b""
    redelivered = False

    def __init__(self, execution_id: str, partition: int) -> None:
        self.execution_id = execution_id
        self.partition = partition

    async def ack(self) -> None:
        pass

    async def nak(self, delay: float | None = None) -> None:
        pass  # the mark stays: the partition's next sweep loads it

    async def term(self) -> None:
        pass
