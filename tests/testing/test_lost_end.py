"""An attempt's end that never arrives does not leave its execution running forever.

Chaos seed 120: a worker's end report was stored in the inbox, but the partition's consumer had been
taken by a deposed executor, which never folded it. The attempt stayed announced by a live worker,
whose running mark was cleared with the report: nothing else would ever end the taskrun.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from counted_runs import counting_flow

from engine.clock import utcnow
from engine.core import events as ev
from engine.testing.memory import MemoryStore
from engine.testing.run import MemoryEngine
from eventstore.reader import read_execution

pytestmark = pytest.mark.anyio


def flow(ran: Path) -> str:
    return counting_flow(ran, "lost_end", "trust.lost", then_sleep=0.2)  # announced: past 20 ms


class LosesAnEnd(MemoryStore):
    """The first attempt's end is acknowledged to the worker and never delivered."""

    lost = 0

    async def send_input(self, execution_id: str, item: ev.Input, msg_id: str | None = None) -> None:
        if isinstance(item, ev.AttemptEnded) and not self.lost:
            self.lost += 1
            return
        await super().send_input(execution_id, item, msg_id)


async def test_an_announced_attempt_whose_end_never_arrives_is_run_again(tmp_path: Path) -> None:
    store = LosesAnEnd()
    async with MemoryEngine(store=store, work_in_memory=False) as eng:
        eng.worker.handoff = None  # the end takes the inbox, where it is lost
        run = asyncio.create_task(eng.run(await eng.deploy(flow(tmp_path / "ran")), timeout=20))
        while not run.done():
            await asyncio.sleep(0.1)
            await eng.executor.resubmit_lost()  # what the executor does every few seconds
        state = run.result()
    assert store.lost == 1
    assert state.state == "SUCCESS"
    (taskrun,) = state.taskruns.values()
    assert [a.state for a in taskrun.attempts] == ["FAILED", "SUCCESS"]
    assert (tmp_path / "ran").read_text() == "ran\nran\n"  # the price: the task ran twice


async def test_a_running_attempt_and_an_end_on_its_way_are_not_declared_lost(tmp_path: Path) -> None:
    async with MemoryEngine(work_in_memory=False) as eng:
        eng.worker.handoff = None
        run = asyncio.create_task(eng.run(await eng.deploy(flow(tmp_path / "ran")), timeout=20))
        lost = 0
        while not run.done():
            await asyncio.sleep(0.02)
            lost += await eng.executor.resubmit_lost()
        state = run.result()
    assert lost == 0
    assert state.state == "SUCCESS"
    assert (tmp_path / "ran").read_text() == "ran\n"


async def test_a_report_that_no_longer_counts_keeps_its_log_lines(tmp_path: Path) -> None:
    """Attempt 1 is declared lost while its worker still runs it (a heartbeat that lapsed); its end
    then comes, stale: the taskrun goes on with attempt 2, and attempt 1's lines are kept."""
    source = counting_flow(tmp_path / "ran", "stray", "trust.lost", then_sleep=0.3)
    source = source.replace("      - echo ran >>", "      - echo attempt ran\n      - echo ran >>")
    async with MemoryEngine(work_in_memory=False) as eng:
        eid = await eng.start(await eng.deploy(source))
        announced = None
        while announced is None:  # attempt 1 running, announced by the worker
            await asyncio.sleep(0.01)
            state = (await read_execution(eng.store, eid)).state
            for tr in state.taskruns.values() if state else ():
                if tr.attempts and tr.attempts[-1].worker_id and tr.attempts[-1].state == "RUNNING":
                    announced = tr
        lost = ev.AttemptLost(
            date=utcnow(), taskrun_id=announced.id, attempt=1, worker_id=announced.attempts[-1].worker_id
        )
        await eng.store.send_input(eid, lost, msg_id="test-lost")
        for _ in range(200):
            state = (await read_execution(eng.store, eid)).state
            if state is not None and state.is_terminal and (tmp_path / "ran").read_text().count("ran") == 2:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # attempt 1's stale end, after attempt 2's
        lines = await eng.store.read_logs(eid)
    assert state is not None and state.state == "SUCCESS"
    assert sorted(line.attempt or 0 for line in lines if line.message == "attempt ran") == [1, 2]


async def test_a_copy_of_a_stored_end_adds_no_line(tmp_path: Path) -> None:
    """The same end delivered twice (handed over, then published past the hand-off's wait): the
    copy is stale, and its lines are already in the history."""
    source = counting_flow(tmp_path / "ran", "copy", "trust.lost")
    source = source.replace("      - echo ran >>", "      - echo once\n      - echo ran >>")
    async with MemoryEngine(work_in_memory=False) as eng:
        state = await eng.run(await eng.deploy(source))
        (end,) = [e for _, es in await eng.store.read(state.id) for e in es if type(e) is ev.AttemptEnded]
        assert "once" in [line.message for line in end.logs]
        await eng.store.send_input(state.id, end, msg_id="a-copy")
        await asyncio.sleep(0.3)
        lines = await eng.store.read_logs(state.id)
    assert [line.message for line in lines].count("once") == 1
