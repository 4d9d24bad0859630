"""`workerGroup.key` routes a task to that group's workers; with none alive it runs on the default group."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.anyio


def _flow(ns: str) -> str:
    return f"""
id: grouped
namespace: {ns}
tasks:
  - id: a
    type: io.kestra.plugin.core.debug.Return
    format: x
    workerGroup:
      key: gpu
"""


async def test_worker_group_routing_and_fallback(nats_url: str, tmp_path: Path) -> None:
    from engine.ids import new_execution_id
    from engine.runtime import Runtime

    async with Runtime(nats_url=nats_url, home=tmp_path / "home") as rt:
        tasks = [asyncio.create_task(rt.executor().run())]
        default = asyncio.create_task(rt.worker(worker_id=f"plain-{uuid.uuid4().hex[:6]}").run())
        try:
            flow = await rt.flows.deploy(_flow(f"it.wg{uuid.uuid4().hex[:8]}"))
            eid = new_execution_id()
            # No gpu worker alive: Kestra OSS ignores worker groups, so the task still runs.
            state = await rt.wait_terminal(
                eid, on_start=lambda: rt.create_execution(flow, {}, execution_id=eid), timeout=15
            )
            assert state.state == "SUCCESS"
            gpu_id = f"gpu-{uuid.uuid4().hex[:6]}"
            gpu = asyncio.create_task(rt.worker(group="gpu", worker_id=gpu_id).run())
            tasks.append(gpu)
            await asyncio.sleep(6)  # the executor re-reads live groups every 5 s
            slow = await rt.flows.deploy(
                _flow(flow.namespace)
                .replace(
                    "type: io.kestra.plugin.core.debug.Return\n    format: x",
                    "type: io.kestra.plugin.core.flow.Sleep\n    duration: PT0.2S",
                )
                .replace("id: grouped", "id: grouped-slow")
            )
            eid = new_execution_id()
            state = await rt.wait_terminal(
                eid, on_start=lambda: rt.create_execution(slow, {}, execution_id=eid), timeout=15
            )
            assert state.state == "SUCCESS"
            attempt = state.taskruns[next(iter(state.taskruns))].attempts[0]
            assert attempt.worker_id == gpu_id  # announced (long enough) by the gpu group's worker
        finally:
            for task in [*tasks, default]:
                task.cancel()
            await asyncio.gather(*tasks, default, return_exceptions=True)
