"""Backfill: every slot of the window once, however often it runs; schedule conditions apply."""

from __future__ import annotations

import pytest
from triggers_helpers import Engine, Recorder

from engine.errors import EngineError
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
