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

from engine.core import events as ev
from engine.testing.memory import MemoryStore
from engine.testing.run import MemoryEngine

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
