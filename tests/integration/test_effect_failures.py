"""A step is stored but one of its effects fails to go out: the execution must not stall."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.anyio


async def test_a_dispatch_that_times_out_is_sent_again(nats_url: str, tmp_path: Path) -> None:
    from engine.ids import new_execution_id
    from engine.runtime import Runtime

    ns = f"it.effects{uuid.uuid4().hex[:8]}"
    source = f"""
id: two
namespace: {ns}
tasks:
  - id: a
    type: io.kestra.plugin.core.debug.Return
    format: one
  - id: b
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ outputs.a.value }}}}-two"
  - id: c
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ outputs.b.value }}}}-three"
"""
    async with Runtime(nats_url=nats_url, home=tmp_path / "h") as rt:
        executor = rt.executor()
        executor.memory_work.enabled = False  # the work queue's path: that is what fails here
        real = rt.store.dispatch
        failures: list[str] = []
        calls: list[str] = []

        async def flaky(execution_id: str, group: str | None, payload: bytes, msg_id: str) -> None:
            calls.append(msg_id)
            if len(calls) == 3:  # the last task's dispatch is lost, as in a leader election
                failures.append(msg_id)
                raise TimeoutError("nats: timeout")
            await real(execution_id, group, payload, msg_id)

        executor.store = _Proxy(rt.store, dispatch=flaky)
        tasks = [asyncio.create_task(executor.run()), asyncio.create_task(rt.worker().run())]
        try:
            flow = await rt.flows.deploy(source)
            eid = new_execution_id()
            await rt.create_execution(flow, {}, execution_id=eid)
            state = await rt.wait_terminal(eid, timeout=20)
            assert failures, "the failure was never injected"
            assert state.state == "SUCCESS"
            outputs = {tr.task_id: tr.outputs for tr in state.taskruns.values()}
            assert outputs["c"] == {"value": "one-two-three"}
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


class _Proxy:
    """The store, with some methods replaced."""

    def __init__(self, store: Any, **overrides: Any) -> None:
        self._store = store
        self._overrides = overrides

    def __getattr__(self, name: str) -> Any:
        if name in self._overrides:
            return self._overrides[name]
        return getattr(self._store, name)
