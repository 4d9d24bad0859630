"""Schedule triggers with an injected clock: each slot once across restarts and with two services."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from triggers_helpers import Engine, FakeClock, Recorder, trigger_service

from eventstore.triggerstate import TriggerKV, schedule_key, set_disabled
from triggers.schedule import slot_execution_id

pytestmark = pytest.mark.anyio

T0 = datetime(2031, 3, 5, 10, 0, 30, tzinfo=UTC)


def at(hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime(2031, 3, 5, hh, mm, ss, tzinfo=UTC)


def scheduled(namespace: str, triggers: str, flow_id: str = "s", task: str = "") -> str:
    task = task or (
        "  - id: log\n    type: io.kestra.plugin.core.log.Log\n"
        "    message: '{{ trigger.date }} {{ inputs.slot }}'"
    )
    return f"""
id: {flow_id}
namespace: {namespace}
inputs:
  - id: slot
    type: STRING
    defaults: none
tasks:
{task}
triggers:
{triggers}"""


async def test_each_slot_once_across_restart_and_two_services(
    eng: Engine, rec: Recorder, namespace: str
) -> None:
    await eng.deploy(
        scheduled(
            namespace,
            """  - id: every-minute
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "* * * * *"
    inputs:
      slot: "{{ trigger.date }}|{{ trigger.previous }}|{{ trigger.next }}"
""",
        )
    )
    clock = FakeClock(T0)
    fast = {"now": clock, "poll_interval": 0.02}
    async with trigger_service(eng.rt, namespace, **fast) as s1:
        assert await s1.tick() == []  # first sight: starts from now, nothing in the past
        clock.advance(180)  # 10:03:30
        await rec.wait(lambda: len(rec.of("s")) == 3, what="3 slots")
    clock.advance(120)  # 10:05:30, while no service runs
    async with trigger_service(eng.rt, namespace, **fast):  # restart: missed slots recovered (ALL)
        await rec.wait(lambda: len(rec.of("s")) == 5, what="5 slots")
    async with (
        trigger_service(eng.rt, namespace, **fast) as a,
        trigger_service(eng.rt, namespace, **fast) as b,
    ):
        for _ in range(5):
            clock.advance(60)
            await asyncio.gather(a.tick(), b.tick(), a.tick(), b.tick())
        await rec.wait(lambda: len(rec.of("s")) == 10, what="10 slots")
        await asyncio.sleep(0.2)  # both loops tick a few more times: nothing new
    slots = [at(10, m) for m in range(1, 11)]
    expected = {slot_execution_id(namespace, "s", "every-minute", s) for s in slots}
    assert set(rec.created) == expected
    assert sorted(rec.creates) == sorted(expected), "an ExecutionCreated was appended twice"
    first = rec.created[slot_execution_id(namespace, "s", "every-minute", at(10, 1))]
    assert first.inputs["slot"] == "2031-03-05T10:01:00Z|2031-03-05T10:00:00Z|2031-03-05T10:02:00Z"
    assert first.trigger is not None and first.trigger["variables"]["date"] == "2031-03-05T10:01:00Z"
    assert first.trigger["type"] == "io.kestra.plugin.core.trigger.Schedule"
    await rec.wait_ended("s", 10)
    state, _ = await TriggerKV(eng.rt.store).get(schedule_key(namespace, "s", "every-minute"))
    assert state["last_slot"] == "2031-03-05T10:10:00Z"


async def test_recover_missed_schedules(eng: Engine, rec: Recorder, namespace: str) -> None:
    triggers = "".join(
        f"""  - id: {policy.lower()}
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "@hourly"
    recoverMissedSchedules: {policy}
"""
        for policy in ("ALL", "LAST", "NONE")
    )
    await eng.deploy(scheduled(namespace, triggers))
    clock = FakeClock(T0)
    async with trigger_service(eng.rt, namespace, now=clock, poll_interval=0.02) as s1:
        await s1.tick()
    clock.advance(5 * 3600)  # 15:00:30: 11:00 .. 15:00 missed
    async with trigger_service(eng.rt, namespace, now=clock, poll_interval=0.02) as s2:
        await s2.tick()
        clock.advance(3600)  # 16:00:30: on time for everyone
        await s2.tick()

    def fired(tid: str) -> list[str]:
        return sorted(c.trigger["variables"]["date"] for c in rec.of("s") if c.trigger["id"] == tid)  # type: ignore[index]

    await rec.wait(lambda: len(rec.of("s")) == 6 + 2 + 1, what="9 executions")
    assert fired("all") == [f"2031-03-05T{h}:00:00Z" for h in range(11, 17)]
    assert fired("last") == ["2031-03-05T15:00:00Z", "2031-03-05T16:00:00Z"]
    assert fired("none") == ["2031-03-05T16:00:00Z"]


async def test_stop_after_disables_and_enable_resumes(eng: Engine, rec: Recorder, namespace: str) -> None:
    await eng.deploy(
        scheduled(
            namespace,
            """  - id: tick
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "*/10 * * * * *"
    withSeconds: true
    stopAfter: [FAILED]
""",
            task="  - id: boom\n    type: io.kestra.plugin.core.execution.Fail",
        )
    )
    clock = FakeClock(T0)
    kv = TriggerKV(eng.rt.store)
    k = schedule_key(namespace, "s", "tick")
    async with trigger_service(eng.rt, namespace, now=clock, poll_interval=0.02) as svc:
        await svc.tick()
        clock.advance(10)  # 10:00:40
        [run] = await rec.wait_ended("s", 1)
        assert run.trigger["variables"]["date"] == "2031-03-05T10:00:40Z"  # type: ignore[index]

        async def disabled() -> bool:
            state, _ = await kv.get(k)
            return bool(state and state.get("disabled"))

        for _ in range(200):
            if await disabled():
                break
            await asyncio.sleep(0.01)
        assert await disabled(), "stopAfter [FAILED] did not disable the trigger"
        clock.advance(30)  # 10:01:10: three slots while disabled
        await svc.tick()
        assert len(rec.of("s")) == 1
        await set_disabled(kv, namespace, "s", "tick", False)  # re-enabled: missed slots follow ALL
        await svc.tick()
        await rec.wait(lambda: len(rec.of("s")) == 4, what="3 recovered slots")
    dates = sorted(c.trigger["variables"]["date"] for c in rec.of("s"))  # type: ignore[index]
    assert dates == [f"2031-03-05T10:0{t}Z" for t in ("0:40", "0:50", "1:00", "1:10")]


async def test_invalid_cron_is_reported_and_others_run(eng: Engine, rec: Recorder, namespace: str) -> None:
    await eng.deploy(
        scheduled(
            namespace,
            """  - id: bad
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "61 * * * *"
  - id: good
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "*/30 * * * *"
    timezone: Asia/Kolkata
""",
        )
    )
    clock = FakeClock(T0)
    async with trigger_service(eng.rt, namespace, now=clock, poll_interval=0.02) as svc:
        await svc.tick()
        clock.advance(3600)
        await svc.tick()
    # 10:00:30 UTC is 15:30:30 in Kolkata (UTC+05:30); an hour later two slots came due
    await rec.wait(lambda: len(rec.of("s")) == 2, what="2 slots")
    dates = sorted(c.trigger["variables"]["date"] for c in rec.of("s"))  # type: ignore[index]
    assert dates == ["2031-03-05T16:00:00+05:30", "2031-03-05T16:30:00+05:30"]
