"""The executor: the thin async shell around the decider.

It consumes the INBOX (commands and worker reports), folds each execution, lets the decider
say what happens next, appends the resulting events in one guarded write per execution and
step, and only then performs the effects (dispatch work, start subflows, kill, notify).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import msgspec

from engine.aio import cancelling, unsubscribe_all
from engine.clock import utcnow
from engine.core import events as ev
from engine.core.accept import accept
from engine.core.decider import (
    AcquireSlot,
    Dispatch,
    Kill,
    NotifyParent,
    ReleaseSlot,
    StartRetry,
    StartSubflow,
    Timer,
    redispatch,
    renotify,
    settle,
    without_repeats,
)
from engine.core.dispatch import work_item
from engine.core.errors import (
    ConcurrencyConflict,
    EngineError,
    FlowNotFound,
    FlowValidationError,
    PayloadTooLarge,
)
from engine.core.execution import Execution, History, evolve
from engine.core.factory import CORRELATION_LABEL, execution_created
from engine.core.history import replay_events
from engine.core.ports import ExecutorStore, InputDelivery, LogLine, Subscription
from engine.core.replay import Step, record
from engine.core.tree import index_tasks
from engine.core.work import WorkItem, encode_work, work_msg_id
from engine.flows import FlowCache
from engine.handoff import Handoff, MemoryWork, give_back
from engine.loading import Loads, snapshot_every
from engine.logs import get_logger
from engine.lost import LostAttempts
from engine.partitions import Partitions
from engine.settings import settings
from engine.slots import acquire_slot, release_slot
from eventstore import subjects as S
from eventstore.reader import encode_snapshot, read_execution

log = get_logger("engine.executor")

# Inputs that fail the same way however often they are delivered: retrying them would only repeat
# the error (and its traceback) forever. A revision missing from the store, or one that no longer
# loads, or bytes that are not an input at all.
REFUSED = (FlowNotFound, FlowValidationError, msgspec.DecodeError)
_STATE_CHANGE = (ev.TaskRunStateChanged, ev.ExecutionStateChanged)
_STATE_CHANGES = frozenset(_STATE_CHANGE)


class Executor:
    def __init__(
        self,
        store: ExecutorStore,
        flows: FlowCache,
        renderer: Any,
        clock: Callable[[], str] = utcnow,
        executor_id: str | None = None,
        on_step: Callable[[str, Step], None] | None = None,
        handoff: Handoff | None = None,
    ) -> None:
        self.store = store
        self.handoff = handoff  # this process's worker: its reports, and work for it, in memory
        self.memory_work = MemoryWork(store, handoff)
        self.flows = flows
        self.renderer = renderer
        self.clock = clock
        self.cache: dict[str, Execution] = {}
        self._queue: asyncio.Queue[InputDelivery] = asyncio.Queue()
        self._subs: dict[int, Subscription] = {}  # partition -> its consumer's subscription
        self._unconsumed: set[int] = set()  # held partitions whose consumer could not be recreated
        # ENGINE_EXECUTOR_ID: a stable id (unique per process) lets a restarted executor take its
        # partitions back at once instead of waiting for its old leases to expire.
        self.id = executor_id or settings().executor_id or f"x{uuid.uuid4().hex[:12]}"
        self.partitions = Partitions(store, self.id, self._acquire, self._release, alive=store.is_alive)
        self._ping: Subscription | None = None
        self.snapshot_every = snapshot_every()
        self._since_snapshot: dict[str, int] = {}  # steps appended since the last snapshot
        self._snapshotted: set[str] = set()  # executions that have a snapshot to drop when they end
        self._dispatched_checked: set[str] = set()
        # Executions with a step in flight -> the inputs that wait for it.
        self._busy: dict[str, list[InputDelivery]] = {}
        self._conflicted: set[str] = set()  # executions to read in full before their next step
        self._groups: set[str] = set()  # worker groups with a live worker (refreshed every 5 s)
        self._groups_read = -1e9
        self._slots = asyncio.Semaphore(2048)
        self._loads = Loads(store)  # the executions not in memory, read many at a time
        self._tasks: set[asyncio.Task[None]] = set()
        owns = lambda eid: self.partitions.owns(S.partition(eid))  # noqa: E731
        self.lost = LostAttempts(store, owns, lambda: self.clock(), self.cache.values, self._read_leader)
        # Called with each step once appended, before its effects go out (tests/replay records them).
        self.on_step = on_step

    async def start(self) -> None:
        """Take this executor's share of the partitions (all of them when it is alone)."""
        await self.store.prepare_executor()
        self._ping = await self.store.answer_pings(self.id)
        if self.handoff is not None:
            self.handoff.attach(self._take_local)
        try:
            await self.partitions.tick()
        except Exception as exc:  # a node of the cluster is down: the next ticks try again
            if cancelling():
                raise asyncio.CancelledError from exc
            log.warning("executor.partitions_not_taken_yet", error=f"{type(exc).__name__}: {exc}")

    async def _acquire(self, p: int) -> None:
        await self._consume(p)
        self.memory_work.taken(p)  # its marked executions are loaded (sweep)

    async def _consume(self, p: int) -> None:
        """Own partition ``p`` through a fresh consumer: inputs a previous owner left unacked come
        at once (not after their ack wait), and a deposed owner's subscription gets nothing more."""

        async def on_input(delivery: InputDelivery) -> None:
            self._queue.put_nowait(delivery)

        old = self._subs.pop(p, None)
        if old is not None:
            await unsubscribe_all([old])
        try:
            sub = await self.store.consume_inputs(p, on_input)
        except BaseException:
            # Still held (a recreation that failed during an election): check_consumers tries again.
            self._unconsumed.add(p)
            raise
        self._unconsumed.discard(p)
        if not self.partitions.owns(p):
            # Lost while the consumer was made (an election is slow): kept, nothing would ever close
            # it. The owner's check_consumers sees the consumer is no longer its own and takes it back.
            await unsubscribe_all([sub])
            return
        self._subs[p] = sub

    async def check_consumers(self, every: float = 3.0) -> None:
        """Recreate the consumer of a held partition that disappeared (its server node restarted)."""
        while True:
            await asyncio.sleep(every)
            for p in sorted(set(self._subs) | self._unconsumed):
                try:
                    sub = self._subs.get(p)
                    lost = sub is None or not await self.store.inputs_consumed(p, sub)
                    if lost and (p in self._subs or p in self._unconsumed) and self.partitions.owns(p):
                        log.warning("executor.consumer_lost", partition=p)
                        await self._consume(p)
                except Exception as exc:
                    if cancelling():
                        raise asyncio.CancelledError from exc
                    log.warning("executor.consumer_check_failed", partition=p, error=str(exc))
                    break

    async def _release(self, p: int, lost: bool) -> None:
        """Stop consuming ``p`` and forget its executions: their next owner reads them from the log."""
        sub = self._subs.pop(p, None)
        self._unconsumed.discard(p)
        if sub is not None:
            await unsubscribe_all([sub])
        # Work in this process's worker: reported (or announced) first, the rest queued durably.
        await self.memory_work.release(p, wait_s=0.0 if lost else 2.0)
        if not lost:  # a graceful hand-over: let the steps in flight finish first (bounded)
            for _ in range(50):
                if not any(S.partition(eid) == p for eid in self._busy):
                    break
                await asyncio.sleep(0.1)
        for eid in [eid for eid in self.cache if S.partition(eid) == p]:
            self.cache.pop(eid, None)
            self._since_snapshot.pop(eid, None)
        self._dispatched_checked = {eid for eid in self._dispatched_checked if S.partition(eid) != p}
        self._snapshotted = {eid for eid in self._snapshotted if S.partition(eid) != p}

    def _take_local(self, item: InputDelivery) -> bool:
        """A report of this process's worker: ours to store if we own its partition."""
        if not self.partitions.owns(item.partition):
            return False
        self._queue.put_nowait(item)
        return True

    async def stop(self) -> None:
        if self.handoff is not None:
            self.handoff.detach(self._take_local)
        while not self._queue.empty():  # reports handed over but never folded: their worker sends them
            await give_back(self._queue.get_nowait())
        await self._loads.close()
        await self.partitions.stop()
        if self._ping is not None:
            await unsubscribe_all([self._ping])
            self._ping = None
        subs, self._subs = list(self._subs.values()), {}
        await unsubscribe_all(subs)

    async def watch_workers(self, every: float = S.HEARTBEAT_TTL_S / 3) -> None:
        """Attempts held by a worker whose heartbeat expired go to another worker (attempt + 1).

        The record of held attempts lives in the store, so this works after any restart, and with
        several executors (the inputs are idempotent; the decider ignores what is stale).
        """
        while True:
            await asyncio.sleep(every)
            try:
                await self.resubmit_lost()
            except Exception as exc:
                if cancelling():
                    raise asyncio.CancelledError from exc
                log.exception("executor.liveness_check_failed")

    async def group_for(self, group: str | None) -> str | None:
        """A task's `workerGroup`, or the default group when no live worker serves that group (Kestra
        OSS ignores worker groups: a flow written for them must still run here)."""
        if group is None:
            return None
        now = asyncio.get_running_loop().time()
        if now - self._groups_read > 5:
            live = await self.store.live_workers()
            self._groups = {
                str(info.get("group", "default")) for info in live.values() if isinstance(info, dict)
            }
            self._groups_read = now
        if group in self._groups:
            return group
        log.warning("executor.worker_group_unserved", group=group)
        return None

    async def resubmit_lost(self) -> int:
        """Declare lost the attempts of a dead worker, and those whose end never arrived."""
        return await self.lost.check()

    async def _read_leader(self, execution_id: str) -> Execution | None:
        return (await read_execution(self.store, execution_id, leader=True)).state

    async def run(self) -> None:
        await self.start()
        sweep = self.memory_work.sweep(self.partitions.owns, self.cache, self._queue.put_nowait)
        for job in (self.watch_workers(), self.partitions.run(), self.check_consumers(), sweep):
            task = asyncio.create_task(job)
            self._tasks.add(task)
        if cancelling():  # nats-py can swallow a cancellation that lands while it subscribes
            raise asyncio.CancelledError
        try:
            while True:
                batch = [await self._queue.get()]
                while len(batch) < 1024 and not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                groups: dict[str, list[InputDelivery]] = {}
                for msg in batch:
                    if self.partitions.owns(msg.partition):  # else: given back; its next owner gets it
                        groups.setdefault(msg.execution_id, []).append(msg)
                    else:
                        await give_back(msg)
                for eid, msgs in groups.items():
                    if eid in self._busy:
                        self._busy[eid].extend(msgs)  # processed right after the step in flight
                        continue
                    self._busy[eid] = []
                    await self._slots.acquire()
                    task = asyncio.create_task(self._drive(eid, msgs))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
        finally:
            for task in list(self._tasks):
                task.cancel()
            await self.stop()

    async def _drive(self, execution_id: str, msgs: list[InputDelivery]) -> None:
        """Process one execution's inputs, one step at a time; other executions go on meanwhile."""
        try:
            while msgs and self.partitions.owns(S.partition(execution_id)):
                await self._process_safely(execution_id, msgs)
                msgs = self._busy.get(execution_id) or []
                self._busy[execution_id] = []
            for msg in msgs:  # the partition went to another executor meanwhile
                await give_back(msg)
        finally:
            self._busy.pop(execution_id, None)
            self._slots.release()

    async def _process_safely(self, execution_id: str, msgs: list[InputDelivery]) -> None:
        try:
            await self.process(execution_id, [ev.decode_input(m.data) for m in msgs if m.data])
        except ConcurrencyConflict:
            # Someone else wrote this execution: forget what we knew, and let redelivery retry.
            self.cache.pop(execution_id, None)
            self._dispatched_checked.discard(execution_id)
            self._conflicted.add(execution_id)
            for m in msgs:
                await m.nak(delay=0.05)
            return
        except PayloadTooLarge as exc:
            try:
                await self._fail_oversized(execution_id, exc)
            except Exception as again:  # a store that fails now: the same step comes back later
                if cancelling():
                    raise asyncio.CancelledError from again
                log.warning("executor.step_too_large_not_ended", execution_id=execution_id, error=str(again))
                for m in msgs:
                    await m.nak(delay=1)
                return
            for m in msgs:
                await m.ack()
            return
        except REFUSED as exc:
            # An expected refusal, not a fault of the executor: one line, no traceback, and the
            # inputs are acknowledged so that they are not delivered again.
            log.warning("executor.input_refused", execution_id=execution_id, reason=str(exc))
            self.cache.pop(execution_id, None)
            for m in msgs:
                await m.ack()
            return
        except Exception as exc:
            if cancelling():
                raise asyncio.CancelledError from exc
            log.exception("executor.process_failed", execution_id=execution_id)
            self.cache.pop(execution_id, None)
            # The step may be stored while its effects were not all sent (a publish timed out while
            # the server elected a leader): the next load sends them again (idempotent ids).
            self._dispatched_checked.discard(execution_id)
            for m in msgs:
                await m.nak(delay=1)
            return
        for m in msgs:
            await m.ack()

    async def load(self, execution_id: str) -> Execution | None:
        """The execution's state: cached, else its latest snapshot plus the steps after it."""
        state = self.cache.get(execution_id)
        if state is not None:
            return state
        read = await self._loads.read(execution_id)
        if read.has_snapshot:
            self._snapshotted.add(execution_id)
        state = read.state
        if state is not None:
            self.cache[execution_id] = state
            self._since_snapshot[execution_id] = read.steps
        return state

    def _after_append(self, state: Execution) -> None:
        """Every ``snapshot_every`` steps, store the folded state (off the step's path)."""
        eid = state.id
        if state.is_terminal:
            self._since_snapshot.pop(eid, None)
            if eid in self._snapshotted:
                self._snapshotted.discard(eid)
                self._background(self.store.drop_snapshot(eid))
            return
        steps = self._since_snapshot.get(eid, 0) + 1
        if steps < self.snapshot_every:
            self._since_snapshot[eid] = steps
            return
        self._since_snapshot[eid] = 0
        self._snapshotted.add(eid)
        self._background(self.store.put_snapshot(eid, encode_snapshot(state)))

    def _background(self, job: Any) -> None:
        async def run() -> None:
            try:
                await job
            except Exception as exc:
                if cancelling():
                    raise asyncio.CancelledError from exc
                log.warning("executor.snapshot_failed", error=f"{type(exc).__name__}: {exc}")

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def process(self, execution_id: str, items: list[ev.Input]) -> None:
        if execution_id not in self.cache and items and isinstance(items[0], ev.ExecutionCreated):
            # A create is for a new execution: skip the read. Were it not new, the append (expected
            # sequence 0) is refused and the redelivered input is handled after a full load.
            state: Execution | None = None
            if execution_id in self._conflicted:
                self._conflicted.discard(execution_id)
                state = await self.load(execution_id)
        else:
            state = await self.load(execution_id)
        base_seq = state.seq if state is not None else 0
        first_load = state is not None and execution_id not in self._dispatched_checked
        events: list[ev.Event] = []
        now = self.clock()
        flow = None
        for item in items:
            if state is None and isinstance(item, ev.ReplayRequested):
                replayed = await self._replay(execution_id, item, now)
                if replayed is None:
                    continue
                flow, replay = replayed
                for event in replay:
                    state = evolve(state, event)
                    events.append(event)
                continue
            if state is None and isinstance(item, ev.ExecutionCreated):
                try:
                    flow = await self.flows.get(item.namespace, item.flow_id, item.flow_revision)
                except REFUSED as exc:
                    # Created FAILED rather than dropped: the API, the indexer and whoever waits
                    # for the execution see it end, and why.
                    failed = ev.ExecutionStateChanged(date=now, state="FAILED", reason=str(exc))
                    events += [item, failed]
                    state = evolve(evolve(None, item), failed)
                    break  # whatever else came for it has no flow to be judged against
            elif state is not None and flow is None:
                flow = await self.flows.get(state.namespace, state.flow_id, state.flow_revision)
            accepted = accept(state, flow, item, now)
            if not accepted and type(item) is ev.AttemptEnded and item.logs and state is not None:
                await self._stray_lines(state, item)
            for event in accepted:
                state = evolve(state, event)
                events.append(event)
        if state is not None and flow is None and events:
            await self._refuse_creation(state, events, base_seq)
            return
        if state is None:
            if not items:  # a sweep's reload of a mark (``mark_soon``) whose creation was never stored
                self.memory_work.ended(execution_id)
            return
        if flow is None:  # no input (a sweep's reload): only what a first load sends again
            if state.is_terminal:  # ended since (its flow may be gone): only its mark is left
                self.memory_work.ended(execution_id)
                return
            flow = await self.flows.get(state.namespace, state.flow_id, state.flow_revision)
        templates = self.renderer.for_step(now, f"{execution_id}:{base_seq}")
        decision = settle(state, flow, now, templates)
        events.extend(decision.events)
        # A first load's dispatches take the queue: its message id drops a copy of an attempt a worker
        # holds unannounced (chaos seed 85 ran one twice). So does a one-task flow's work: its mark
        # and the mark's clear cost more than one work message (bench/realtime.py: 5.1 appends, 4.1).
        in_memory = not first_load and len(index_tasks(flow)) > 1 and self.partitions.alone
        if in_memory and any(isinstance(e, Dispatch) for e in decision.effects):
            self.memory_work.mark_soon(execution_id, S.partition(execution_id))  # beside the append
        if events:
            # Stored before the step: whoever sees the execution end can read why.
            await self._log_reasons(state, events, base_seq)
            try:
                state.seq = await self.store.append(execution_id, events, base_seq)
            except BaseException:
                self.cache.pop(execution_id, None)
                raise
            self.cache[execution_id] = state
            self._after_append(state)
        effects = list(decision.effects)
        if first_load:
            # After a restart we cannot know whether dispatches of the previous run went out:
            # send them again (same Nats-Msg-Id, and a worker ignores a taskrun already started).
            effects.extend(redispatch(state, flow, now, templates))
            effects.extend(renotify(state, flow, now, templates))  # a finished child's end, again
        if self.on_step is not None:
            step = record(base_seq, now, templates.envs, items, events, effects, first_load)
            self.on_step(execution_id, step)
        await self.perform(state, without_repeats(effects), in_memory=in_memory)
        self._dispatched_checked.add(execution_id)  # this executor sent every effect so far
        if state.is_terminal:
            self.cache.pop(execution_id, None)
            self._dispatched_checked.discard(execution_id)
            self.memory_work.ended(execution_id)

    async def _stray_lines(self, state: Execution, report: ev.AttemptEnded) -> None:
        """A report that no longer counts (its attempt was declared lost, or killed) still says what
        its task logged: its lines go to LOGS, unless it is a copy of the report already stored."""
        tr = state.taskruns.get(report.taskrun_id)
        attempt = next((a for a in tr.attempts if a.number == report.attempt), None) if tr else None
        if attempt is not None and attempt.histories[-1] == History(report.state, report.date):
            return
        key = f"{state.id}:{report.taskrun_id}:{report.attempt}:line"  # a copy delivered again: once
        await self.store.store_lines(state.id, report.logs, key)

    async def _fail_oversized(self, execution_id: str, exc: PayloadTooLarge) -> None:
        """A step too large to be stored can never be: the execution ends FAILED and says why (what
        still runs of it is killed, its slot given back, its parent told), rather than the same step
        being tried forever."""
        self.cache.pop(execution_id, None)
        self._dispatched_checked.discard(execution_id)
        reason = (
            f"a step of this execution or a message it sends is {exc.size} bytes, "
            f"over the limit of {exc.limit} bytes"
        )
        log.warning("executor.step_too_large", execution_id=execution_id, reason=reason)
        state = await self.load(execution_id)
        if state is None or state.is_terminal:
            return  # nothing stored to end (a creation too large): the warning is all there is
        failed = ev.ExecutionStateChanged(date=self.clock(), state="FAILED", reason=reason)
        await self._log_reasons(state, [failed], state.seq)
        await self.store.append(execution_id, [failed], state.seq)
        self.cache.pop(execution_id, None)
        effects: list[Any] = [Kill((execution_id,))]
        flow = await self.flows.get(state.namespace, state.flow_id, state.flow_revision)
        if flow.concurrency is not None:
            effects.append(ReleaseSlot())
        if state.parent:
            parent = state.parent
            effects.append(NotifyParent(str(parent["execution_id"]), str(parent["taskrun_id"]), "FAILED", {}))
        await self.perform(state, effects)

    async def _refuse_creation(self, state: Execution, events: list[ev.Event], base_seq: int) -> None:
        """Store an execution whose flow cannot be had, already FAILED; a subflow's parent is told."""
        await self._log_reasons(state, events, base_seq)
        state.seq = await self.store.append(state.id, events, base_seq)
        reason = next(e.reason for e in events if isinstance(e, ev.ExecutionStateChanged))
        log.warning("executor.creation_refused", execution_id=state.id, reason=reason)
        parent = state.parent
        if parent:
            notify = NotifyParent(str(parent["execution_id"]), str(parent["taskrun_id"]), "FAILED", {})
            await self.perform(state, [notify])

    async def _replay(
        self, execution_id: str, item: ev.ReplayRequested, now: str
    ) -> tuple[Any, list[ev.Event]] | None:
        source = await self.load(item.source_execution_id)
        if source is None:
            log.warning("executor.replay_unknown_source", source=item.source_execution_id)
            return None
        flow = await self.flows.get(source.namespace, source.flow_id, item.revision or source.flow_revision)
        try:
            return flow, replay_events(source, execution_id, item.taskrun_id, flow, now)
        except EngineError as exc:
            log.warning("executor.replay_refused", error=str(exc))
            return None

    async def _log_reasons(self, state: Execution, events: list[ev.Event], base_seq: int) -> None:
        """Why a taskrun or the execution failed, as an ERROR log line (the pure decider cannot log)."""
        for i, event in enumerate(events):
            # A set lookup first: most events are not state changes, and on these Structs an
            # isinstance costs about eight times the lookup (470 against 55 ns here).
            if type(event) in _STATE_CHANGES and isinstance(event, _STATE_CHANGE) and event.reason:
                if event.state not in ("FAILED", "KILLED"):
                    continue
                tr_id = getattr(event, "taskrun_id", None)
                tr = state.taskruns.get(tr_id) if tr_id else None
                if tr is not None and tr.runnable:
                    continue  # the worker logged it already
                task_id = tr.task_id if tr else None
                line = LogLine(event.date, "ERROR", event.reason, tr_id, task_id, None)
                # The same step retried (same base) logs it once.
                await self.store.store_log(state.id, line, msg_id=f"{state.id}:{base_seq}:reason:{i}")

    async def perform(self, state: Execution, effects: list[Any], in_memory: bool = True) -> None:
        in_memory = in_memory and self.partitions.alone
        jobs = []
        for effect in effects:
            if isinstance(effect, Dispatch):
                item = work_item(state, effect)
                group = await self.group_for(effect.task.worker_group)
                if not (
                    in_memory and await self.memory_work.offer(state.id, S.partition(state.id), item, group)
                ):
                    jobs.append(self._dispatch(state, item, group))
            elif isinstance(effect, StartSubflow):
                jobs.append(self.start_subflow(state, effect))
            elif isinstance(effect, Kill):
                for eid in effect.execution_ids:
                    jobs.append(self.store.kill(eid))
                    if eid != state.id:
                        jobs.append(
                            self.store.send_input(
                                eid,
                                ev.KillRequested(date=self.clock(), reason="parent killed"),
                                msg_id=f"{eid}:kill",
                            )
                        )
            elif isinstance(effect, AcquireSlot):
                jobs.append(acquire_slot(self.store, state, effect, self.clock))
            elif isinstance(effect, ReleaseSlot):
                flow = await self.flows.get(state.namespace, state.flow_id, state.flow_revision)
                limit = flow.concurrency.limit if flow.concurrency else 1
                jobs.append(release_slot(self.store, state, limit, self.clock))
            elif isinstance(effect, Timer):
                jobs.append(self.store.schedule_input(state.id, effect.key, effect.at, effect.input))
            elif isinstance(effect, NotifyParent):
                jobs.append(self._notify_parent(state, effect))
            elif isinstance(effect, StartRetry):
                jobs.append(self._start_retry(effect))
        if jobs:
            await asyncio.gather(*jobs)

    async def _start_retry(self, effect: StartRetry) -> None:
        created = effect.created
        eid = created.execution_id
        if created.date <= self.clock():
            await self.store.send_input(eid, created, msg_id=f"{eid}:created")
        else:  # the timer's key makes a second ask (a step decided again) the same timer
            await self.store.schedule_input(eid, "created", created.date, created)

    async def _notify_parent(self, state: Execution, effect: NotifyParent) -> None:
        ended = ev.SubflowEnded(
            date=self.clock(),
            taskrun_id=effect.taskrun_id,
            # a retried child's last try answers for the whole chain: the parent waits for the first
            execution_id=state.first_try or state.id,
            state=effect.state,
            outputs=effect.outputs,
        )
        try:
            await self.store.send_input(effect.parent_execution_id, ended, msg_id=f"{state.id}:ended")
        except PayloadTooLarge as exc:
            # The child has ended: were its outputs never delivered, the parent would wait forever.
            error = (
                f"subflow {state.id}: its outputs are {exc.size} bytes, over the limit of {exc.limit} bytes"
            )
            log.warning("executor.subflow_outputs_too_large", execution_id=state.id, error=error)
            failed = msgspec.structs.replace(ended, state="FAILED", outputs={"error": error})
            await self.store.send_input(effect.parent_execution_id, failed, msg_id=f"{state.id}:ended")

    async def _dispatch(self, state: Execution, item: WorkItem, group: str | None) -> None:
        try:
            await self.store.dispatch(
                state.id, group, encode_work(item), work_msg_id(state.id, item.taskrun_id, item.attempt)
            )
        except PayloadTooLarge as exc:
            # Its variables carry the outputs of the tasks before it: this work can never be sent.
            # The attempt ends FAILED as a worker would report it (same message id), so the flow's
            # errors branch, retries and the end of the execution all happen as usual.
            error = (
                f"task {item.task.id}: its work is {exc.size} bytes (the outputs of earlier tasks "
                f"included), over the limit of {exc.limit} bytes"
            )
            log.warning("executor.work_too_large", execution_id=state.id, error=error)
            line = LogLine(self.clock(), "ERROR", error, item.taskrun_id, item.task.id, item.attempt)
            await self.store.store_log(state.id, line, msg_id=f"{state.id}:{item.taskrun_id}:too_large")
            ended = ev.AttemptEnded(
                date=self.clock(),
                taskrun_id=item.taskrun_id,
                attempt=item.attempt,
                state="FAILED",
                error=error,
            )
            await self.store.send_input(
                state.id, ended, msg_id=f"{state.id}:{item.taskrun_id}:{item.attempt}:ended"
            )

    async def start_subflow(self, parent: Execution, effect: StartSubflow) -> None:
        from engine.inputs import resolve_inputs

        try:
            flow = await self.flows.get(effect.namespace, effect.flow_id, effect.revision)
            inputs = resolve_inputs(flow, effect.inputs, self.renderer.render)
        except EngineError as exc:
            # Where a person looks: the parent's log, on the Subflow task (not only its outputs).
            tr = parent.taskruns.get(effect.taskrun_id)
            line = LogLine(
                self.clock(),
                "ERROR",
                f"subflow {effect.namespace}.{effect.flow_id} cannot start: {exc}",
                effect.taskrun_id,
                tr.task_id if tr else None,
                None,
            )
            await self.store.store_log(parent.id, line, msg_id=f"{effect.execution_id}:refused")
            await self.store.send_input(
                parent.id,
                ev.SubflowEnded(
                    date=self.clock(),
                    taskrun_id=effect.taskrun_id,
                    execution_id=effect.execution_id,
                    state="FAILED",
                    outputs={"error": str(exc)},
                ),
                msg_id=f"{effect.execution_id}:ended",
            )
            return
        created = execution_created(
            flow,
            effect.execution_id,
            self.clock(),
            inputs,
            effect.labels,
            correlation_id=parent.labels.get(CORRELATION_LABEL, parent.id),
            secret_inputs=(),
            parent={
                "outputs": effect.outputs,
                "execution_id": parent.id,
                "taskrun_id": effect.taskrun_id,
                "namespace": parent.namespace,
                "flow_id": parent.flow_id,
            },
        )
        await self.store.send_input(effect.execution_id, created, msg_id=f"{effect.execution_id}:created")
