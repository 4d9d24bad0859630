"""Backfill: every slot of the window once, however often it runs; schedule conditions apply."""

from __future__ import annotations

import asyncio

import pytest
from triggers_helpers import Engine, Recorder

from engine.core.errors import EngineError
from triggers.backfill import backfill

pytestmark = pytest.mark.anyio


def daily(namespace: str, flow_id: str, extra: str = "") -> str:
    return f"""
id: {flow_id}
namespace: {namespace}
inputs:
  - id: who
    type: STRING
    defaults: nobody
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{{{ inputs.who }}}} {{{{ trigger.date }}}}"
triggers:
  - id: daily
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "@daily"
    timezone: Europe/Paris
{extra}"""


async def test_backfill_twice_creates_each_slot_once(eng: Engine, rec: Recorder, namespace: str) -> None:
    await eng.deploy(daily(namespace, "d"))
    seen: list[tuple[int, int]] = []
    first = await backfill(
        eng.rt,
        namespace,
        "d",
        None,
        "2031-03-01T00:00:00",
        "2031-03-07T00:00:00",
        {"who": "ada"},
        {"run": "bf"},
        progress=lambda done, total: seen.append((done, total)),
    )
    second = await backfill(
        eng.rt,
        namespace,
        "d",
        "daily",
        "2031-03-01T00:00:00+01:00",
        "2031-03-07T00:00:00+01:00",
        {"who": "ada"},
    )
    assert first.slots == second.slots == 7
    assert first.created == second.created and len(set(first.created)) == 7
    assert seen[0] == (0, 7) and seen[-1] == (7, 7)
    runs = await rec.wait_ended("d", 7)
    assert len(runs) == 7 and sorted(rec.creates) == sorted(first.created)
    dates = sorted(c.trigger["variables"]["date"] for c in runs)  # type: ignore[index]
    assert dates == [f"2031-03-0{d}T00:00:00+01:00" for d in range(1, 8)]
    assert {c.inputs["who"] for c in runs} == {"ada"}
    assert all(c.labels.get("run") == "bf" for c in runs if c.execution_id in first.created)


async def test_backfill_follows_schedule_conditions(eng: Engine, rec: Recorder, namespace: str) -> None:
    await eng.deploy(
        daily(
            namespace,
            "weekend",
            """    conditions:
      - type: io.kestra.plugin.core.condition.Weekend
""",
        )
    )
    result = await backfill(
        eng.rt, namespace, "weekend", None, "2031-03-01", "2031-03-07T23:00:00", None, None
    )
    assert result.slots == 7 and len(result.created) == 2 and len(result.skipped) == 5
    runs = await rec.wait_ended("weekend", 2)
    # 2031-03-01 is a Saturday
    assert sorted(c.trigger["variables"]["date"][:10] for c in runs) == ["2031-03-01", "2031-03-02"]  # type: ignore[index]


async def test_backfill_refusals(eng: Engine, namespace: str) -> None:
    await eng.deploy(daily(namespace, "d"))
    with pytest.raises(EngineError, match="before"):
        await backfill(eng.rt, namespace, "d", None, "2031-03-07T00:00:00Z", "2031-03-01T00:00:00Z")
    with pytest.raises(EngineError, match="no trigger 'nope'"):
        await backfill(eng.rt, namespace, "d", "nope", "2031-03-01T00:00:00Z", "2031-03-07T00:00:00Z")
    with pytest.raises(EngineError, match="not deployed"):
        await backfill(eng.rt, namespace, "missing", None, "2031-03-01T00:00:00Z", "2031-03-07T00:00:00Z")


def slow_daily(namespace: str, flow_id: str, extra: str = "") -> str:
    return f"""
id: {flow_id}
namespace: {namespace}
{extra}
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT0.2S
triggers:
  - id: daily
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "@daily"
"""


def _overlap(rec: Recorder, ids: list[str]) -> int:
    """The most executions among ``ids`` that were alive (created, not yet ended) at the same moment."""
    from engine.core.states import TERMINAL, State

    moments: list[tuple[str, int]] = []
    for eid in ids:
        states = rec.states[eid]
        moments.append((states[0][1], 1))
        moments.append((next(d for s, d in states if State(s) in TERMINAL), -1))
    alive = most = 0
    for _, step in sorted(moments, key=lambda m: (m[0], m[1])):
        alive += step
        most = max(most, alive)
    return most


async def test_backfill_honours_the_flow_concurrency(eng: Engine, rec: Recorder, namespace: str) -> None:
    await eng.deploy(slow_daily(namespace, "c", "concurrency:\n  limit: 2"))
    running: list[int] = []
    result = await backfill(
        eng.rt,
        namespace,
        "c",
        None,
        "2031-03-01T00:00:00Z",
        "2031-03-06T00:00:00Z",
        labels={"source": "backfill"},
        progress=lambda done, total: running.append(done),
    )
    assert result.status == "DONE" and len(result.created) == 6
    runs = await rec.wait_ended("c", 6)
    assert all(c.labels.get("source") == "backfill" for c in runs)
    assert _overlap(rec, result.created) <= 2
    assert running == sorted(running) and running[-1] == 6


async def test_pause_resume_cancel(eng: Engine, rec: Recorder, namespace: str) -> None:
    from triggers_helpers import trigger_service

    from triggers.backfill import (
        BackfillError,
        backfill_status,
        cancel_backfill,
        pause_backfill,
        resume_backfill,
        start_backfill,
    )

    store = eng.rt.store
    await eng.deploy(slow_daily(namespace, "p"))
    window = ("2031-03-01T00:00:00Z", "2031-03-10T00:00:00Z")
    started = await start_backfill(eng.rt, namespace, "p", None, *window, labels={"k": "v"}, max_inflight=1)
    assert started.status == "RUNNING" and started.total == 10 and started.handled == 0
    # the same backfill again: the same record; another window while it is active: refused
    again = await start_backfill(eng.rt, namespace, "p", None, *window, labels={"k": "v"}, max_inflight=1)
    assert again.raw["created_at"] == started.raw["created_at"]
    with pytest.raises(BackfillError, match="already has a RUNNING backfill"):
        await start_backfill(eng.rt, namespace, "p", None, window[0], "2031-03-05T00:00:00Z")

    async with trigger_service(eng.rt, namespace, poll_interval=0.05):  # the scheduler role advances it
        await rec.wait(lambda: len(rec.of("p")) >= 2, what="two slots created")
        paused = await pause_backfill(store, namespace, "p")
        assert paused.status == "PAUSED"
        await asyncio.sleep(1.0)  # several advance turns, and the running execution ends
        during = await backfill_status(store, namespace, "p", "daily")
        assert during.status == "PAUSED" and during.handled <= paused.handled + 1
        assert len(rec.of("p")) == during.raw["created"] < 10
        resumed = await resume_backfill(store, namespace, "p")
        assert resumed.status == "RUNNING"
        await rec.wait(lambda: len(rec.of("p")) >= during.handled + 2, what="two more slots after resume")
        cancelled = await cancel_backfill(store, namespace, "p")
        assert cancelled.status == "CANCELLED"
        await asyncio.sleep(1.0)
        final = await backfill_status(store, namespace, "p")
        assert final.status == "CANCELLED" and final.handled < 10
        assert len(rec.of("p")) == final.raw["created"]
        with pytest.raises(BackfillError, match="is CANCELLED: it cannot be resumed"):
            await resume_backfill(store, namespace, "p")
    runs = await rec.wait_ended("p", final.raw["created"])
    assert all(c.labels.get("k") == "v" for c in runs)
    # a cancelled backfill is replaced by the next one; its slots already created are not created again
    status = (await backfill(eng.rt, namespace, "p", None, *window, labels={"k": "v"})).status
    assert status == "DONE"
    runs = await rec.wait_ended("p", 10)
    assert len(rec.creates) == 10 == len(set(rec.creates))


async def test_control_refusals(eng: Engine, namespace: str) -> None:
    from triggers.backfill import BackfillError, pause_backfill

    await eng.deploy(slow_daily(namespace, "p"))
    with pytest.raises(BackfillError, match=f"flow {namespace}.p has no backfill"):
        await pause_backfill(eng.rt.store, namespace, "p")
    with pytest.raises(EngineError, match="not deployed"):
        await pause_backfill(eng.rt.store, namespace, "nope")
