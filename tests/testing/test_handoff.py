"""A worker's report handed to the executor of its process (engine.handoff): stored by the step that
folds it, with no inbox write of its own; published to the inbox whenever the executor cannot take it."""

from __future__ import annotations

import asyncio

import pytest

from engine.core import events as ev
from engine.core.errors import ConcurrencyConflict
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
    async with MemoryEngine(store) as eng:
        state = await eng.run(await eng.deploy(FLOW))
    assert state.state == "SUCCESS" and len(state.taskruns) == 3
    assert store.dispatched == []  # no work message: the step that dispatched it is the record


async def test_work_in_memory_is_queued_durably_when_its_partition_changes_hands() -> None:
    """The executor gives a partition back while its worker holds work of it in memory (not yet
    reported): after a bounded wait the work goes to the queue under its usual message id, and the
    worker, which still holds it, skips that queued copy: the task runs once."""
    from engine.handoff import LocalWork, MemoryWork

    sent: list[tuple[str, str, int]] = []

    async def send(work: LocalWork) -> None:
        sent.append(work.key)

    memory = MemoryWork(send)
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
    assert sent == [("e", "t2", 1)] and done == [True]
    await held.nak()  # handed back later (the worker stopped): sent again, deduplicated by its id
    assert sent == [("e", "t2", 1), ("e", "t2", 1)]


async def test_the_worker_skips_a_queued_copy_of_an_attempt_it_holds_in_memory() -> None:
    from engine.core.work import WorkItem, encode_work

    store = CountingWork()
    async with MemoryEngine(store) as eng:
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
