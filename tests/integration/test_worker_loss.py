"""A worker dies mid-task: its attempt goes to another worker, and nothing runs twice to completion."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.anyio


async def test_a_lost_workers_attempt_goes_to_another_worker(nats_url: str, tmp_path: Path) -> None:
    from engine.ids import new_execution_id
    from engine.runtime import Runtime

    marks = tmp_path / "marks"
    marks.mkdir()
    ns = f"it.loss{uuid.uuid4().hex[:8]}"
    source = f"""
id: lossy
namespace: {ns}
tasks:
  - id: long
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - echo "{{{{ taskrun.attemptsCount }}}}" >> {marks}/started
      - sleep 2
      - echo "{{{{ taskrun.attemptsCount }}}}" >> {marks}/done
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: ok
"""
    async with Runtime(nats_url=nats_url, home=tmp_path / "home") as rt:
        executor = rt.executor()
        executor_task = asyncio.create_task(executor.run())
        doomed = asyncio.create_task(rt.worker(heartbeat_ttl=1, worker_id=f"doomed-{ns[-8:]}").run())
        try:
            flow = await rt.flows.deploy(source)
            eid = new_execution_id()
            await rt.create_execution(flow, {}, execution_id=eid)
            for _ in range(200):  # the first attempt is running on the doomed worker
                if (marks / "started").exists():
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)
            doomed.cancel()  # the worker stops heartbeating; its process is killed with it
            await asyncio.gather(doomed, return_exceptions=True)
            survivor = asyncio.create_task(rt.worker(heartbeat_ttl=1).run())
            try:
                for _ in range(100):  # the heartbeat expires (1 s), then the executor notices (every 3 s)
                    await asyncio.sleep(0.1)
                    lost = await executor.resubmit_lost()
                    if lost:
                        break
                state = await rt.wait_terminal(eid, timeout=20)
            finally:
                survivor.cancel()
                await asyncio.gather(survivor, return_exceptions=True)
        finally:
            executor_task.cancel()
            await asyncio.gather(executor_task, return_exceptions=True)
    assert state.state == "SUCCESS"
    long = next(tr for tr in state.taskruns.values() if tr.task_id == "long")
    assert [a.state for a in long.attempts] == ["FAILED", "SUCCESS"]
    assert "RESUBMITTED" in [h.state for h in long.histories]
    assert (marks / "done").read_text().split() == ["1"]  # only the second attempt completed


async def test_a_worker_whose_heartbeat_lapses_gives_its_attempts_up_before_they_run_twice(
    nats_url: str, tmp_path: Path
) -> None:
    from engine.ids import new_execution_id
    from engine.runtime import Runtime

    marks = tmp_path / "marks"
    marks.mkdir()
    ns = f"it.fence{uuid.uuid4().hex[:8]}"
    source = f"""
id: fenced
namespace: {ns}
tasks:
  - id: long
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - echo "{{{{ taskrun.attemptsCount }}}}" >> {marks}/started
      - sleep 3
      - echo "{{{{ taskrun.attemptsCount }}}}" >> {marks}/done
"""
    async with Runtime(nats_url=nats_url, home=tmp_path / "home") as rt:
        executor = rt.executor()
        executor_task = asyncio.create_task(executor.run())
        cut_off = rt.worker(heartbeat_ttl=2, worker_id=f"cutoff-{ns[-8:]}")
        cut_task = asyncio.create_task(cut_off.run())
        healthy: asyncio.Task[None] | None = None
        try:
            flow = await rt.flows.deploy(source)
            eid = new_execution_id()
            await rt.create_execution(flow, {}, execution_id=eid)
            for _ in range(200):
                if (marks / "started").exists():
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)  # announced (RUNNING, held by the cut-off worker)

            async def unreachable(*args: object, **kwargs: object) -> None:
                raise TimeoutError("nats: timeout")  # its heartbeats no longer reach the store

            cut_off.store = _Override(rt.store, heartbeat=unreachable)  # type: ignore[assignment]
            healthy = asyncio.create_task(rt.worker(heartbeat_ttl=2).run())
            state = await rt.wait_terminal(eid, timeout=30)
        finally:
            for task in (cut_task, executor_task, healthy):
                if task is not None:
                    task.cancel()
            await asyncio.gather(
                *(t for t in (cut_task, executor_task, healthy) if t is not None), return_exceptions=True
            )
    assert state.state == "SUCCESS"
    long = next(tr for tr in state.taskruns.values() if tr.task_id == "long")
    assert [a.state for a in long.attempts] == ["FAILED", "SUCCESS"]
    assert (marks / "started").read_text().split() == ["0", "1"]
    assert (marks / "done").read_text().split() == ["1"]  # the cut-off attempt never reached its end


class _Override:
    def __init__(self, store: object, **methods: object) -> None:
        self._store = store
        self.__dict__.update(methods)

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)
