"""Flow `concurrency` (QUEUE / CANCEL / FAIL) against the real engine: slots live in KV, guarded by OCC."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from integration_helpers import Engine

pytestmark = pytest.mark.anyio


def _flow(behavior: str, limit: int = 1, pause: bool = False) -> str:
    middle = (
        "  - id: hold\n    type: io.kestra.plugin.core.flow.Pause\n    delay: PT1S\n"
        if pause
        else "  - id: hold\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT0.8S\n"
    )
    return (
        f"id: conc\nnamespace: it.c{uuid.uuid4().hex[:8]}\n"
        f"concurrency:\n  limit: {limit}\n  behavior: {behavior}\n"
        f"tasks:\n{middle}"
    )


async def _two(eng: Engine, source: str) -> tuple[Any, Any]:
    flow = await eng.deploy(source)
    first = await eng.rt.create_execution(flow, {})
    for _ in range(100):  # the first one holds the slot before the second arrives
        st = await eng.load(first)
        if st is not None and st.state in ("RUNNING", "PAUSED"):
            break
        await asyncio.sleep(0.02)
    second = await eng.rt.create_execution(flow, {})
    return await eng.wait(first), await eng.wait(second)


def hist(state: Any) -> list[str]:
    return [h.state for h in state.histories]


async def test_queue_waits_for_the_slot(eng: Engine) -> None:
    one, two = await _two(eng, _flow("QUEUE"))
    assert one.state == two.state == "SUCCESS"
    assert hist(two) == ["CREATED", "QUEUED", "RUNNING", "SUCCESS"]
    assert two.histories[2].date >= one.histories[-1].date  # never two at once


async def test_cancel_and_fail_refuse_the_second(eng: Engine) -> None:
    for behavior, end in (("CANCEL", "CANCELLED"), ("FAIL", "FAILED")):
        one, two = await _two(eng, _flow(behavior))
        assert one.state == "SUCCESS"
        assert hist(two) == ["CREATED", end] and not two.taskruns


async def test_a_paused_execution_keeps_its_slot(eng: Engine) -> None:
    one, two = await _two(eng, _flow("QUEUE", pause=True))
    assert "PAUSED" in hist(one)
    assert hist(two)[:3] == ["CREATED", "QUEUED", "RUNNING"] and two.state == "SUCCESS"


async def test_limit_two_runs_two_at_once(eng: Engine) -> None:
    flow = await eng.deploy(_flow("QUEUE", limit=2))
    ids = [await eng.rt.create_execution(flow, {}) for _ in range(4)]
    ends = [await eng.wait(i) for i in ids]
    assert all(e.state == "SUCCESS" for e in ends)
    assert sum("QUEUED" in hist(e) for e in ends) == 2
    # At no moment were more than two running.
    spans = sorted(
        (next(h.date for h in e.histories if h.state == "RUNNING"), e.histories[-1].date) for e in ends
    )
    for i, (start, _) in enumerate(spans):
        assert sum(1 for s, end in spans[:i] if end > start) <= 1
