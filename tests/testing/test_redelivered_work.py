"""A finished task never runs again when its work message comes back.

Seen in the chaos benchmark (seed 14): a worker ran a script, reported its end, and was SIGKILLed before
its acknowledgement of the work message left; 30 s later the message was delivered again and another
worker ran the finished script a second time (after its execution had ended and given its concurrency
slot to the next one). Here the first acknowledgement is lost on purpose, deterministically.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from counted_runs import counting_flow, runs

from engine.core import events as ev
from engine.core.ports import Delivery, Subscription
from engine.core.work import WorkItem
from engine.testing.memory import MemoryStore
from engine.testing.run import MemoryEngine

pytestmark = pytest.mark.anyio


def flow(ran: Path) -> str:
    return counting_flow(ran, "once", "redelivery.test")


class LostAck:
    """A delivery whose acknowledgement never reaches the store, as when the worker dies right after
    its report."""

    def __init__(self, inner: Delivery, store: DiesBeforeAck) -> None:
        self._inner, self._store = inner, store

    @property
    def data(self) -> bytes:
        return self._inner.data

    @property
    def redelivered(self) -> bool:
        return self._inner.redelivered

    async def ack(self) -> None:
        self._store.lost_acks += 1

    async def nak(self, delay: float | None = None) -> None:
        await self._inner.nak(delay)

    async def term(self) -> None:
        await self._inner.term()


class DiesBeforeAck(MemoryStore):
    lost_acks = 0
    redeliveries = 0

    async def consume_work(
        self, group: str, on_work: Callable[[Delivery], Awaitable[None]], max_pending: int
    ) -> list[Subscription]:
        async def handle(delivery: Delivery) -> None:
            if delivery.redelivered:
                self.redeliveries += 1
                await on_work(delivery)
            elif not self.lost_acks:
                await on_work(LostAck(delivery, self))
            else:
                await on_work(delivery)

        return await super().consume_work(group, handle, max_pending)


async def _until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_work_message_delivered_again_after_its_report_does_not_run_the_task_again(
    tmp_path: Path,
) -> None:
    store = DiesBeforeAck(ack_wait_s=0.3)
    async with MemoryEngine(store=store, work_in_memory=False) as eng:
        deployed = await eng.deploy(flow(tmp_path / "ran"))
        state = await eng.run(deployed, timeout=10)
        assert state.state == "SUCCESS"
        await _until(lambda: store.redeliveries == 1)
        await _until(lambda: not any(q.messages for q in store._work.values()))
    assert store.lost_acks == 1
    assert runs(tmp_path / "ran") == 1


async def test_a_report_still_in_the_inbox_counts_as_done() -> None:
    """The executor may not have read the report yet (it is down): the inbox is asked first."""
    store = MemoryStore()
    report = ev.AttemptEnded(
        date="2026-01-01T00:00:00Z", taskrun_id="t", attempt=1, state="SUCCESS", final=True
    )
    await store.send_input("e1", report, msg_id="e1:t:1:ended")
    pending = await store.pending_input("e1", "e1:t:1:ended")
    assert pending is not None and ev.decode_input(pending) == report
    assert await store.pending_input("e1", "e1:t:2:ended") is None


async def test_a_stale_attempt_delivered_again_after_a_newer_one_was_dispatched_does_not_run(
    tmp_path: Path,
) -> None:
    """Chaos seeds 17 and 18: a worker died after announcing attempt 1 but before acknowledging its
    work message; the executor resubmitted the taskrun as attempt 2 (it ran), and 30 s later attempt 1's
    message came back and ran the script once more."""
    store = MemoryStore()
    async with MemoryEngine(store=store, work_in_memory=False) as eng:
        deployed = await eng.deploy(flow(tmp_path / "ran"))
        eid = "stale-attempt"
        d = "2026-01-01T00:00:00Z"
        steps: list[list[ev.Event]] = [
            [
                ev.ExecutionCreated(
                    date=d,
                    execution_id=eid,
                    namespace=deployed.namespace,
                    flow_id=deployed.id,
                    flow_revision=1,
                ),
                ev.TaskRunCreated(date=d, taskrun_id="tr", task_id="side_effect"),
                ev.TaskRunDispatched(date=d, taskrun_id="tr", attempt=1),
            ],
            [ev.AttemptStarted(date=d, taskrun_id="tr", attempt=1, worker_id="dead")],
            [ev.TaskRunDispatched(date=d, taskrun_id="tr", attempt=2)],  # attempt 1's worker was lost
        ]
        seq = 0
        for events in steps:
            seq = await store.append(eid, events, seq)

        def item(attempt: int) -> WorkItem:
            return WorkItem(eid, "tr", attempt, deployed.tasks[0], deployed.namespace, deployed.id, 1, {})

        assert await eng.worker._settled(item(1))  # stale: never run again
        assert not await eng.worker._settled(item(2))  # the current attempt: runs


class CheckFailsOnce(MemoryStore):
    """The first delivery is dropped by its holder (it died before doing anything); the first settled
    check of the redelivered message fails, as a read does while a stream has no leader."""

    dropped = 0
    failed = 0

    async def consume_work(
        self, group: str, on_work: Callable[[Delivery], Awaitable[None]], max_pending: int
    ) -> list[Subscription]:
        async def handle(delivery: Delivery) -> None:
            if not self.dropped:
                self.dropped += 1
                await delivery.nak(0.05)
                return
            await on_work(delivery)

        return await super().consume_work(group, handle, max_pending)

    async def pending_input(self, execution_id: str, msg_id: str) -> bytes | None:
        if not self.failed:
            self.failed += 1
            raise TimeoutError("nats: timeout")
        return await super().pending_input(execution_id, msg_id)


async def test_a_settled_check_that_fails_hands_the_work_back_and_it_runs_once(tmp_path: Path) -> None:
    """Chaos seed 36: the check's failure must neither drop the work nor run it blind."""
    store = CheckFailsOnce()
    async with MemoryEngine(store=store, work_in_memory=False) as eng:
        deployed = await eng.deploy(flow(tmp_path / "ran"))
        state = await eng.run(deployed, timeout=15)
    assert (store.dropped, store.failed) == (1, 1)
    assert state.state == "SUCCESS"
    assert runs(tmp_path / "ran") == 1
