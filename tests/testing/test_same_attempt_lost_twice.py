"""One attempt number lost by two workers in turn is resubmitted both times.

Seen in the chaos benchmark (seed 29, a ForEach item stuck RUNNING): worker A took attempt 1 and died
before announcing it; the executor's loss notice for A was ignored (nothing had started) and the work
message came back 30 s later to worker B, which announced attempt 1 and died too. The second notice had
the same message id as the first (execution, taskrun, attempt) and the inbox dropped it as a duplicate:
nobody ever ran the task again. The worker is now part of the id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from engine.core import events as ev
from engine.testing.memory import MemoryStore
from engine.testing.run import MemoryEngine

pytestmark = pytest.mark.anyio

# Served by a "worker" that is only a heartbeat: the work the executor sends is never run here, so the
# test sees exactly what the executor decides.
FLOW = """
id: lost_twice
namespace: lost.test
tasks:
  - id: item
    type: io.kestra.plugin.core.log.Log
    message: ran
    workerGroup:
      key: elsewhere
"""


async def _until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_the_same_attempt_lost_by_two_workers_in_turn_is_resubmitted_twice() -> None:
    store = MemoryStore()
    async with MemoryEngine(store=store) as eng:
        await store.heartbeat("elsewhere-1", {"group": "elsewhere"}, ttl_s=60)
        flow = await eng.deploy(FLOW)
        eid = await eng.start(flow)

        def events() -> list[ev.Event]:
            return [e for step in store.history.get(eid, []) for e in step[1]]

        def dispatched() -> list[int]:
            return [e.attempt for e in events() if isinstance(e, ev.TaskRunDispatched)]

        await _until(lambda: dispatched() == [1])
        taskrun = next(e.taskrun_id for e in events() if isinstance(e, ev.TaskRunDispatched))

        # Worker A held attempt 1 and died before announcing it: its loss changes nothing.
        await store.mark_running("A", eid, taskrun, 1)
        assert await eng.executor.resubmit_lost() == 1
        # The work came back to worker B, which announced attempt 1, then died as well.
        started = ev.AttemptStarted(date="2026-01-01T00:00:00Z", taskrun_id=taskrun, attempt=1, worker_id="B")
        await store.send_input(eid, started, msg_id=f"{eid}:{taskrun}:1:started")
        await _until(lambda: any(isinstance(e, ev.AttemptStarted) for e in events()))
        await store.mark_running("B", eid, taskrun, 1)
        assert await eng.executor.resubmit_lost() == 1

        await _until(lambda: dispatched() == [1, 2])
        lost = [e for e in events() if isinstance(e, ev.AttemptEnded)]
        assert [(e.attempt, e.state, e.error) for e in lost] == [(1, "FAILED", "worker B lost")]
