"""A worker's report handed to the executor of its process (engine.handoff): stored by the step that
folds it, with no inbox write of its own; published to the inbox whenever the executor cannot take it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from engine.core import events as ev
from engine.core.errors import ConcurrencyConflict
from engine.core.execution import Execution
from engine.core.ports import InputDelivery
from engine.handoff import Handoff, LocalInput
from engine.testing.memory import MemoryStore
from engine.testing.run import MemoryEngine

pytestmark = pytest.mark.anyio

FLOW = """\
id: three
namespace: handoff.test
tasks:
  - id: a
    type: io.kestra.plugin.core.debug.Return
    format: "1"
  - id: b
    type: io.kestra.plugin.core.debug.Return
    format: "2"
  - id: c
    type: io.kestra.plugin.core.debug.Return
    format: "3"
"""


class CountingStore(MemoryStore):
    """Counts what goes through the inbox, by kind of input."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []

    async def send_input(self, execution_id: str, item: ev.Input, msg_id: str | None = None) -> None:
        self.sent.append(type(item).__name__)
        await super().send_input(execution_id, item, msg_id)


async def test_reports_reach_the_executor_of_the_process_without_an_inbox_write() -> None:
    store = CountingStore()
    async with MemoryEngine(store) as eng:
        state = await eng.run(await eng.deploy(FLOW))
    assert state.state == "SUCCESS"
    assert [tr.outputs["value"] for tr in state.taskruns.values()] == ["1", "2", "3"]
    assert "AttemptEnded" not in store.sent  # each report was stored by the executor's step
    steps = await store.read(state.id)
    ended = [e for _, step in steps for e in step if isinstance(e, ev.AttemptEnded)]
    assert len(ended) == 3


async def test_a_report_the_executor_does_not_take_goes_through_the_inbox() -> None:
    store = CountingStore()
    async with MemoryEngine(store) as eng:
        eng.executor.handoff = None  # as if its partition belonged to another process's executor
        eng.worker.handoff = refusing = Handoff()
        refusing.attach(lambda item: False)
        state = await eng.run(await eng.deploy(FLOW))
    assert state.state == "SUCCESS"
    assert store.sent.count("AttemptEnded") == 3


async def test_a_report_whose_step_conflicts_is_published_by_the_worker() -> None:
    """The executor's append conflicts (another writer): the report is handed back (nak), and the
    worker publishes it; nothing is lost and the flow ends."""
    store = CountingStore()
    conflicts = 0
    append = store.append

    async def conflicting_once(execution_id: str, events: list[ev.Event], expected: int) -> int:
        nonlocal conflicts
        if any(isinstance(e, ev.AttemptEnded) for e in events) and not conflicts:
            conflicts += 1
            raise ConcurrencyConflict("another writer")
        return await append(execution_id, events, expected)

    store.append = conflicting_once  # type: ignore[method-assign]
    async with MemoryEngine(store) as eng:
        state = await eng.run(await eng.deploy(FLOW))
    assert state.state == "SUCCESS" and conflicts == 1
    assert store.sent.count("AttemptEnded") == 1  # the one handed back; the other two in memory


async def test_inputs_handed_over_but_never_folded_go_back_when_the_executor_stops() -> None:
    async with MemoryEngine() as eng:
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        held = LocalInput(b"", "e" * 32, 0, answer)
        eng.executor._queue.put_nowait(held)  # queued, not yet picked up by the loop
        await eng.executor.stop()
        assert answer.done() and answer.result() is False


def test_only_the_attached_taker_is_detached() -> None:
    handoff = Handoff()

    def taker(item: InputDelivery) -> bool:
        return True

    handoff.attach(taker)
    handoff.detach(lambda item: True)
    assert handoff._take is taker
    handoff.detach(taker)
    assert handoff._take is None


class CountingWork(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.dispatched: list[str] = []

    async def dispatch(self, execution_id: str, group: str | None, payload: bytes, msg_id: str) -> None:
        self.dispatched.append(msg_id)
        await super().dispatch(execution_id, group, payload, msg_id)


async def test_work_goes_to_the_worker_of_the_process_in_memory_when_the_executor_is_alone() -> None:
    store = CountingWork()
    async with MemoryEngine(store, work_in_memory=True) as eng:
        state = await eng.run(await eng.deploy(FLOW))
    assert state.state == "SUCCESS" and len(state.taskruns) == 3
    assert store.dispatched == []  # no work message: the step that dispatched it is the record


async def test_work_in_memory_is_queued_durably_when_its_partition_changes_hands() -> None:
    """The executor gives a partition back while its worker holds work of it in memory (not yet
    reported): after a bounded wait the work goes to the queue under its usual message id, and the
    worker, which still holds it, skips that queued copy: the task runs once."""
    from engine.handoff import LocalWork, MemoryWork

    store = CountingWork()
    memory = MemoryWork(store, None)
    done: list[bool] = []

    async def on_done(work: LocalWork, handled: bool) -> None:
        done.append(handled)
        await memory.done(work, handled)

    reported = LocalWork(b"", ("e", "t1", 1), None, 3, on_done)
    held = LocalWork(b"", ("e", "t2", 1), None, 3, on_done)
    memory.track(reported)
    memory.track(held)
    await reported.ack()
    await memory.release(3, wait_s=0.05)
    assert store.dispatched == ["e:t2:1"] and done == [True]
    await held.nak()  # handed back later (the worker stopped): sent again, deduplicated by its id
    assert store.dispatched == ["e:t2:1", "e:t2:1"]


async def test_the_worker_skips_a_queued_copy_of_an_attempt_it_holds_in_memory() -> None:
    from engine.core.work import WorkItem, encode_work

    store = CountingWork()
    async with MemoryEngine(store, work_in_memory=True) as eng:
        flow = await eng.deploy(FLOW)
        state = await eng.run(flow)
        first = next(iter(state.taskruns.values()))
        assert eng.worker._in_memory[(state.id, first.id, 1)].outcome is True
        runs: list[int] = []
        execute = eng.worker.execute

        async def counting(item: WorkItem, msg: object = None) -> None:
            runs.append(item.attempt)
            await execute(item, msg)  # type: ignore[arg-type]

        eng.worker.execute = counting  # type: ignore[method-assign]
        # The same attempt's work message arrives from the queue (sent durably at a hand-over),
        # and another attempt's, which this worker never held: only that one runs.
        for attempt in (1, 2):
            copy = WorkItem(state.id, first.id, attempt, flow.tasks[0], flow.namespace, flow.id, 1, {})
            await store.dispatch(state.id, None, encode_work(copy), f"{state.id}:{first.id}:{attempt}")
        for _ in range(200):
            if not any(q.messages for q in store._work.values()) and runs:
                break
            await asyncio.sleep(0.01)
    assert runs == [2]


async def test_a_first_load_sends_its_dispatches_again_through_the_queue_not_memory() -> None:
    """A new owner of a partition (or a restarted executor) dispatches again the attempts not yet
    started. One may be in a worker's hands unannounced, taken from the queue: only the queue's
    message id drops the second copy, so these never go through memory (chaos seed 85 ran one
    attempt twice in one process, from the queue and from memory)."""
    store = CountingWork()
    async with MemoryEngine(store, work_in_memory=True) as eng:
        eng.worker.group = "elsewhere"  # takes no work: the first dispatch stays in the queue
        flow = await eng.deploy(FLOW)
        await _executor_ready(eng)
        eid = await eng.start(flow)
        for _ in range(500):
            if store.dispatched:
                break
            await asyncio.sleep(0.01)
        assert len(store.dispatched) == 1
        eng.worker.group = "default"  # would take work in memory from now on
        eng.executor.cache.pop(eid, None)  # as a new owner: its first load of the execution
        eng.executor._dispatched_checked.discard(eid)
        await store.send_input(eid, ev.Admitted(date="2026-01-01T00:00:00Z", state="RUNNING"), msg_id="poke")
        for _ in range(500):
            if len(store.dispatched) == 2:
                break
            await asyncio.sleep(0.01)
        assert not eng.worker._in_memory  # nothing reached the worker in memory
    assert store.dispatched == [store.dispatched[0]] * 2  # the same message id: the queue drops it


async def _executor_ready(eng: MemoryEngine) -> None:
    """Until the executor holds its partitions: before, a creation goes to the inbox."""
    for _ in range(500):
        if eng.executor.partitions.alone and eng.executor.partitions.owns(0):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the executor did not take its partitions")


class CountingCreations(CountingStore):
    """Counts the first steps stored (not those the store refused), and what they held."""

    def __init__(self) -> None:
        super().__init__()
        self.first_steps: list[list[str]] = []

    async def append(self, execution_id: str, events: list[ev.Event], expected_last_seq: int) -> int:
        seq = await super().append(execution_id, events, expected_last_seq)
        if expected_last_seq == 0:
            self.first_steps.append([type(e).__name__ for e in events])
        return seq


async def test_a_creation_reaches_the_executor_of_the_process_without_an_inbox_write() -> None:
    """``create_execution`` returns once the executor's first step (creation and start) is stored,
    and that step is the only write of the creation."""
    store = CountingCreations()
    async with MemoryEngine(store) as eng:
        flow = await eng.deploy(FLOW)
        await _executor_ready(eng)
        eid = await eng.start(flow)
        first = await store.read(eid)
        assert first, "create_execution returned before the execution was stored"
        assert isinstance(first[0][1][0], ev.ExecutionCreated)
        state = await eng.run(flow)
    assert state.state == "SUCCESS"
    assert "ExecutionCreated" not in store.sent
    assert len(store.first_steps) == 2 and all(s[0] == "ExecutionCreated" for s in store.first_steps)


async def test_a_creation_the_executor_does_not_take_goes_through_the_inbox() -> None:
    store = CountingCreations()
    async with MemoryEngine(store) as eng:
        flow = await eng.deploy(FLOW)
        await _executor_ready(eng)
        eng.handoff.detach(eng.executor._take_local)  # as if its partition belonged to another executor
        state = await eng.run(flow)
    assert state.state == "SUCCESS"
    assert store.sent.count("ExecutionCreated") == 1


async def test_a_keyed_creation_is_handed_over_when_no_execution_has_its_id() -> None:
    """A keyed id (a durable realtime consumer's message) names the execution of a redelivered
    event too: it is read first. Free, the creation goes to the executor in memory; taken, nothing is
    sent (the inbox would have dropped it; in memory it would reach the executor, whose refused first
    step live watchers of the execution's events would see). Any other given id (a schedule's slot)
    goes through the inbox, as before."""
    from engine.runtime import Starter

    store = CountingCreations()
    async with MemoryEngine(store) as eng:
        flow = await eng.deploy(FLOW)
        await _executor_ready(eng)
        starter = Starter(store, store.files, eng.handoff, store.last_seq)
        eid = await starter.create_execution(flow, {}, execution_id="keyed-1", keyed=True)
        assert eid == "keyed-1" and await store.last_seq(eid)  # stored when it returns
        assert "ExecutionCreated" not in store.sent
        assert await starter.create_execution(flow, {}, execution_id=eid, keyed=True) == eid
        assert "ExecutionCreated" not in store.sent  # a redelivery: nothing sent
        await starter.create_execution(flow, {}, execution_id="slot-1")
        assert store.sent == ["ExecutionCreated"]
        await asyncio.sleep(0.2)
    assert len(store.first_steps) == 2
    steps = await store.read("keyed-1")
    assert sum(isinstance(e, ev.ExecutionCreated) for _, step in steps for e in step) == 1


async def test_a_creation_whose_first_step_fails_goes_through_the_inbox_and_runs_once() -> None:
    """The executor's first append of a handed-over creation fails: the creation is handed back
    (nak) and sent to the inbox, and the execution runs once from there."""
    store = CountingCreations()
    failures = 0
    append = store.append

    async def failing_once(execution_id: str, events: list[ev.Event], expected: int) -> int:
        nonlocal failures
        if expected == 0 and not failures:
            failures += 1
            raise ConcurrencyConflict("another writer")
        return await append(execution_id, events, expected)

    store.append = failing_once  # type: ignore[method-assign]
    async with MemoryEngine(store) as eng:
        flow = await eng.deploy(FLOW)
        await _executor_ready(eng)
        state = await eng.run(flow)
    assert state.state == "SUCCESS" and failures == 1
    assert store.sent.count("ExecutionCreated") == 1
    steps = await store.read(state.id)
    assert sum(isinstance(e, ev.ExecutionCreated) for _, step in steps for e in step) == 1
    assert sum(isinstance(e, ev.AttemptEnded) for _, step in steps for e in step) == 3


async def test_a_creation_the_executor_never_answers_for_goes_through_the_inbox(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Taken but never answered (an executor stopped with it in hand): past the wait, the inbox."""
    import engine.runtime

    monkeypatch.setattr(engine.runtime, "CREATION_HANDOFF_WAIT_S", 0.05)
    store = CountingCreations()
    swallowed: list[InputDelivery] = []
    async with MemoryEngine(store) as eng:
        flow = await eng.deploy(FLOW)
        await _executor_ready(eng)
        take = eng.executor._take_local

        def swallow_creations(item: InputDelivery) -> bool:
            if isinstance(ev.decode_input(item.data), ev.ExecutionCreated):
                swallowed.append(item)
                return True
            return take(item)  # the reports as usual

        eng.handoff.attach(swallow_creations)
        state = await eng.run(flow)
    assert state.state == "SUCCESS" and len(swallowed) >= 1
    assert store.sent.count("ExecutionCreated") == 1


class CountingMarks(CountingWork):
    def __init__(self) -> None:
        super().__init__()
        self.marks: list[str] = []

    async def mark_held(self, execution_id: str) -> None:
        self.marks.append(execution_id)
        await super().mark_held(execution_id)


async def test_an_execution_is_marked_once_before_its_work_goes_into_memory_and_unmarked_at_its_end() -> None:
    store = CountingMarks()
    async with MemoryEngine(store, work_in_memory=True) as eng:
        state = await eng.run(await eng.deploy(FLOW))
        assert state.state == "SUCCESS" and store.dispatched == []
        assert store.marks == [state.id]
        assert store.held == set()


async def test_the_work_of_a_one_task_flow_takes_the_queue_unmarked() -> None:
    """Its mark and the mark's clear would cost more than its one work message."""
    store = CountingMarks()
    one = FLOW.split("  - id: b")[0].replace("id: three", "id: one")
    async with MemoryEngine(store, work_in_memory=True) as eng:
        state = await eng.run(await eng.deploy(one))
        assert state.state == "SUCCESS" and len(store.dispatched) == 1
        assert store.marks == []


async def test_work_a_dead_process_held_in_memory_unannounced_runs_once_its_partitions_are_taken() -> None:
    """Chaos seed 85: a process held an attempt in memory, neither announced (its announce failed in an
    outage) nor reported, and died. Its execution waits for no input, so without its mark nothing would
    load it again: the next owner of its partition (here, the restarted process) loads the marked
    executions, and their first load dispatches what was not started, through the queue."""
    store = CountingMarks()
    taken: list[object] = []
    async with MemoryEngine(store, name="dies", work_in_memory=True) as eng:
        flow = await eng.deploy(FLOW)
        await _executor_ready(eng)
        eng.handoff.attach_worker(lambda work: taken.append(work) or True)  # takes it, then nothing
        eid = await eng.start(flow)
        for _ in range(500):
            if taken:
                break
            await asyncio.sleep(0.01)
        assert len(taken) == 1 and store.dispatched == []
        eng.executor.memory_work.held.clear()  # the process dies: what it held in memory is gone
    assert store.marks == [eid]
    async with MemoryEngine(store, name="next", work_in_memory=True) as eng:
        done = await _ended(eng, eid)
    assert done.state == "SUCCESS" and len(done.taskruns) == 3
    assert len(store.dispatched) >= 1  # the first load sent the lost attempt through the queue
    assert store.held == set()


async def test_a_mark_left_by_an_ended_execution_whose_flow_is_gone_is_cleared_by_the_next_sweep() -> None:
    """A process stopped before its clear left: the next sweep loads the execution, finds it ended,
    and clears the mark, without asking for the flow (deleted since)."""

    class FlowsGone(CountingMarks):
        gone = False

        async def get_flow(self, namespace: str, flow_id: str, revision: int | None = None) -> Any:
            return None if self.gone else await super().get_flow(namespace, flow_id, revision)

    store = FlowsGone()
    async with MemoryEngine(store, work_in_memory=True) as eng:
        state = await eng.run(await eng.deploy(FLOW))
    assert state.state == "SUCCESS" and store.held == set()
    await store.mark_held(state.id)
    store.gone = True  # not even its revision can be read any more
    async with MemoryEngine(store, name="next", work_in_memory=True):
        await _no_marks_left(store)


async def test_a_mark_whose_creation_was_never_stored_is_cleared_by_the_next_sweep() -> None:
    """A mark goes out beside the step that dispatches the first work (``mark_soon``); when that step
    is not stored, the mark names no execution: the next sweep clears it instead of loading it at
    every takeover."""
    store = CountingMarks()
    await store.mark_held("0nevercreated00000000a")
    async with MemoryEngine(store, work_in_memory=True):
        await _no_marks_left(store)


async def test_the_mark_is_written_beside_the_first_step_not_after_it() -> None:
    """The first step's append and the mark are both on their way before either is stored."""

    class Slow(CountingMarks):
        def __init__(self) -> None:
            super().__init__()
            self.outstanding = 0
            self.overlapped = False

        async def _slowly(self, write: Any) -> Any:
            self.outstanding += 1
            self.overlapped = self.overlapped or self.outstanding > 1
            try:
                await asyncio.sleep(0.05)
                return await write
            finally:
                self.outstanding -= 1

        async def append(self, execution_id: str, events: list[ev.Event], expected_last_seq: int) -> int:
            seq: int = await self._slowly(super().append(execution_id, events, expected_last_seq))
            return seq

        async def mark_held(self, execution_id: str) -> None:
            await self._slowly(super().mark_held(execution_id))

    store = Slow()
    async with MemoryEngine(store, work_in_memory=True) as eng:
        state = await eng.run(await eng.deploy(FLOW))
    assert state.state == "SUCCESS" and store.marks == [state.id] and store.dispatched == []
    assert store.overlapped


async def _no_marks_left(store: MemoryStore, timeout: float = 5) -> None:
    """Wait (bounded) for the engine's sweep to clear every mark."""
    for _ in range(int(timeout / 0.01)):
        if not store.held:
            break
        await asyncio.sleep(0.01)
    assert store.held == set()


async def _ended(eng: MemoryEngine, eid: str, timeout: float = 10) -> Execution:
    from eventstore.reader import read_execution

    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        state = (await read_execution(eng.store, eid)).state
        if state is not None and state.is_terminal:
            return state
        assert asyncio.get_running_loop().time() < deadline, f"{eid} did not end: {state and state.state}"
        await asyncio.sleep(0.02)


async def test_an_executor_takes_back_the_consumer_a_deposed_owner_replaced() -> None:
    """A deposed owner that recreates a partition's consumer late (chaos seed 120: during an
    election, after the new owner made its own) leaves the owner's subscription hearing nothing:
    its consumer check sees the consumer is no longer its own and makes its own again."""
    store = MemoryStore()
    stolen: list[InputDelivery] = []

    async def deposed(delivery: InputDelivery) -> None:
        stolen.append(delivery)  # an executor that no longer owns the partition

    async with MemoryEngine(store) as eng:
        executor = eng.executor
        for _ in range(100):  # its partitions taken
            if 0 in executor._subs:
                break
            await asyncio.sleep(0.02)
        mine = executor._subs[0]
        assert await store.inputs_consumed(0, mine)
        hijack = await store.consume_inputs(0, deposed)
        assert not await store.inputs_consumed(0, mine)
        checker = asyncio.create_task(executor.check_consumers(every=0.05))
        try:
            for _ in range(100):
                if executor._subs.get(0) not in (None, mine):
                    break
                await asyncio.sleep(0.02)
        finally:
            checker.cancel()
            await asyncio.gather(checker, return_exceptions=True)
            await hijack.unsubscribe()
        taken_back = executor._subs.get(0)
        assert taken_back is not None and taken_back is not mine
        assert store._inputs[0].consumer is getattr(taken_back, "consumer", None)  # the queue's own again
