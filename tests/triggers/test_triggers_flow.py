"""Flow triggers: one execution per upstream state change, conditions, preconditions, inputs."""

from __future__ import annotations

import asyncio

import msgspec
import pytest
from triggers_helpers import Engine, Recorder, trigger_service

from engine.core import events as ev

pytestmark = pytest.mark.anyio


def upstream(namespace: str, flow_id: str = "up", fail: bool = False, labels: str = "") -> str:
    task = (
        "  - id: boom\n    type: io.kestra.plugin.core.execution.Fail\n"
        if fail
        else "  - id: only\n    type: io.kestra.plugin.core.debug.Return\n"
        "    format: 'v-{{ execution.id }}'\n"
    )
    return f"""
id: {flow_id}
namespace: {namespace}
{labels}
outputs:
  - id: result
    type: STRING
    value: "out-{{{{ execution.id }}}}"
tasks:
{task}"""


def listener(namespace: str, flow_id: str, trigger: str, inputs: str = "") -> str:
    return f"""
id: {flow_id}
namespace: {namespace}
{inputs}
tasks:
  - id: hello
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ trigger.executionId }}}} {{{{ trigger.state }}}}"
triggers:
{trigger}"""


def on_up(namespace: str) -> str:
    """``down``, started by every end of ``up``."""
    return listener(
        namespace,
        "down",
        f"""  - id: on-up
    type: io.kestra.plugin.core.trigger.Flow
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionFlow
        namespace: {namespace}
        flowId: up""",
    )


async def test_a_flow_trigger_deployed_while_the_service_runs_is_heard(
    eng: Engine, rec: Recorder, namespace: str
) -> None:
    up = await eng.deploy(upstream(namespace))
    async with trigger_service(eng.rt, namespace) as svc:
        # nothing listens to execution steps yet: a step is not even decoded
        assert await svc.handle("some-execution", 1, b"\xc1 not msgpack") == []
        await eng.deploy(on_up(namespace))
        for _ in range(500):  # the service follows FLOWS: the new revision reaches its index
            if svc.step_listeners().flow_triggers:
                break
            await asyncio.sleep(0.01)
        with pytest.raises(msgspec.DecodeError):  # now steps are read
            await svc.handle("some-execution", 1, b"\xc1 not msgpack")
        run = await eng.run(up)
        runs = await rec.wait_ended("down", 1)
        assert [c.trigger["executionId"] for c in runs] == [run.id]  # type: ignore[index]


async def test_fires_once_per_state_change_even_on_redelivery(
    eng: Engine, rec: Recorder, namespace: str
) -> None:
    up = await eng.deploy(upstream(namespace))
    await eng.deploy(on_up(namespace))
    async with trigger_service(eng.rt, namespace) as svc:
        first = await eng.run(up)
        second = await eng.run(up)
        runs = await rec.wait_ended("down", 2)
        assert sorted(c.trigger["executionId"] for c in runs) == sorted([first.id, second.id])  # type: ignore[index]
        for c in runs:
            assert c.trigger is not None
            assert c.trigger["id"] == "on-up" and c.trigger["type"] == "io.kestra.plugin.core.trigger.Flow"
            assert c.trigger["variables"]["namespace"] == namespace
            assert c.trigger["variables"]["flowId"] == "up"
            assert c.trigger["variables"]["state"] == "SUCCESS"
            assert c.trigger["variables"]["outputs"] == {"result": f"out-{c.trigger['executionId']}"}
        # the listener saw trigger.* in its own tasks
        st = await eng.rt.load_execution(runs[0].execution_id)
        assert st is not None and st.state == "SUCCESS"
        assert (
            next(iter(st.taskruns.values())).outputs["value"] == f"{runs[0].trigger['executionId']} SUCCESS"
        )  # type: ignore[index]

        # redelivery: the terminal step of the first upstream execution handled again, by this
        # service and by a second one: the same id comes out and the executor keeps one execution
        steps = await eng.rt.store.read(first.id)
        terminal = [
            (seq, events)
            for seq, events in steps
            if any(isinstance(e, ev.ExecutionStateChanged) and e.state == "SUCCESS" for e in events)
        ]
        assert len(terminal) == 1
        seq, events = terminal[0]
        again = await svc.handle(first.id, seq, ev.encode(events))
        original = [c.execution_id for c in runs if c.trigger["executionId"] == first.id]  # type: ignore[index]
        assert again == original
        async with trigger_service(eng.rt, namespace) as other:
            assert await other.handle(first.id, seq, ev.encode(events)) == original
        await eng.run(up)  # a later execution: proves the repeated creates were processed before it
        await rec.wait_ended("down", 3)
    assert len(rec.of("down")) == 3
    assert len([e for e in rec.creates if rec.created[e].flow_id == "down"]) == 3


async def test_conditions(eng: Engine, rec: Recorder, namespace: str) -> None:
    ok = await eng.deploy(upstream(namespace, "ok", labels="labels:\n  team: data"))
    ko = await eng.deploy(upstream(namespace, "ko", fail=True))

    def flow_trigger(conditions: str, states: str = "") -> str:
        return (
            f"  - id: t\n    type: io.kestra.plugin.core.trigger.Flow\n{states}    conditions:\n{conditions}"
        )

    cases = {
        # listener id: (conditions, upstream flows it must fire for)
        "on-failed": (
            "      - type: io.kestra.plugin.core.condition.ExecutionStatus\n        in: [FAILED]\n",
            {"ko"},
        ),
        "not-failed": (
            "      - type: io.kestra.plugin.core.condition.ExecutionStatus\n        notIn: [FAILED]\n",
            {"ok"},
        ),
        "ns-prefix": (
            "      - type: io.kestra.plugin.core.condition.ExecutionNamespace\n"
            f"        namespace: {namespace.split('.')[0]}\n        prefix: true\n",
            {"ok", "ko"},
        ),
        "ns-exact-other": (
            "      - type: io.kestra.plugin.core.condition.ExecutionNamespace\n"
            f"        namespace: {namespace.split('.')[0]}\n",
            set(),
        ),
        "labels": (
            "      - type: io.kestra.plugin.core.condition.ExecutionLabels\n"
            "        labels:\n          team: data\n",
            {"ok"},
        ),
        "outputs": (
            "      - type: io.kestra.plugin.core.condition.ExecutionOutputs\n"
            '        expression: "{{ trigger.outputs.result is defined }}"\n',
            {"ok"},
        ),
        "expression": (
            "      - type: io.kestra.plugin.core.condition.Expression\n"
            "        expression: \"{{ trigger.flowId == 'ko' }}\"\n",
            {"ko"},
        ),
        "not-or": (
            "      - type: io.kestra.plugin.core.condition.Not\n        conditions:\n"
            "          - type: io.kestra.plugin.core.condition.Or\n            conditions:\n"
            "              - type: io.kestra.plugin.core.condition.ExecutionFlow\n"
            f"                namespace: {namespace}\n                flowId: ko\n"
            "              - type: io.kestra.plugin.core.condition.ExecutionStatus\n"
            "                in: [WARNING]\n",
            {"ok"},
        ),
        "legacy-names": (
            "      - type: io.kestra.core.models.conditions.types.ExecutionStatusCondition\n"
            "        in: [SUCCESS]\n"
            "      - type: io.kestra.core.models.conditions.types.VariableCondition\n"
            "        expression: \"{{ labels.team == 'data' }}\"\n",
            {"ok"},
        ),
        "running-only": (
            "      - type: io.kestra.plugin.core.condition.ExecutionFlow\n"
            f"        namespace: {namespace}\n        flowId: ok\n",
            {"ok"},
        ),
    }
    for lid, (conds, _) in cases.items():
        states = "    states: [RUNNING]\n" if lid == "running-only" else ""
        await eng.deploy(listener(namespace, lid, flow_trigger(conds, states)))
    async with trigger_service(eng.rt, namespace):
        ran = {"ok": (await eng.run(ok)).id, "ko": (await eng.run(ko)).id}

        def fired_for(lid: str) -> set[str]:
            return {c.trigger["flowId"] for c in rec.of(lid) if c.trigger["executionId"] in ran.values()}  # type: ignore[index]

        await rec.wait(
            lambda: all(fired_for(lid) >= fires for lid, (_, fires) in cases.items()), what="firings"
        )
        await eng.run(ok)  # one more upstream run: listeners that should not fire had time to be wrong
        await rec.wait(
            lambda: len(rec.of("running-only")) == 2 and len(rec.of("labels")) == 2, what="third run"
        )
    for lid, (_, fires) in cases.items():
        got = fired_for(lid)
        assert got == fires, f"{lid}: fired for {got}, expected {fires}"
    running = rec.of("running-only")
    assert {c.trigger["state"] for c in running} == {"RUNNING"}  # type: ignore[index]


async def test_preconditions_across_two_upstream_flows(eng: Engine, rec: Recorder, namespace: str) -> None:
    a = await eng.deploy(upstream(namespace, "a", labels="labels:\n  some: label"))
    b = await eng.deploy(upstream(namespace, "b"))
    await eng.deploy(f"""
id: joined
namespace: {namespace}
tasks:
  - id: only
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ trigger.executionId }}}}"
triggers:
  - id: both
    type: io.kestra.plugin.core.trigger.Flow
    preconditions:
      id: both
      flows:
        - namespace: {namespace}
          flowId: a
          states: [SUCCESS]
        - namespace: {namespace}
          flowId: b
          states: [SUCCESS]
      where:
        - id: labelled
          filters:
            - field: EXPRESSION
              type: IS_TRUE
              value: "{{{{ labels.some == 'label' }}}}"
""")
    async with trigger_service(eng.rt, namespace):
        await eng.run(a)
        await eng.run(a)
        await eng.run(b)
        b_id_1 = (await eng.run(b)).id  # window was reset after the first firing: b alone is not enough
        del b_id_1
        runs = await rec.wait_ended("joined", 1)
        await eng.run(a)  # completes the second window: fires again
        await rec.wait_ended("joined", 2)
    runs = rec.of("joined")
    assert len(runs) == 2
    assert [c.trigger["flowId"] for c in sorted(runs, key=lambda c: c.date)] == ["b", "a"]  # type: ignore[index]


async def test_inputs_from_trigger_outputs(eng: Engine, rec: Recorder, namespace: str) -> None:
    up = await eng.deploy(upstream(namespace))
    await eng.deploy(f"""
id: consumer
namespace: {namespace}
inputs:
  - id: value
    type: STRING
  - id: count
    type: INT
tasks:
  - id: echo
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ inputs.value }}}}/{{{{ inputs.count + 1 }}}}"
triggers:
  - id: t
    type: io.kestra.plugin.core.trigger.Flow
    inputs:
      value: "{{{{ trigger.outputs.result }}}}"
      count: "{{{{ outputs.only.value | length }}}}"
    labels:
      from: "{{{{ trigger.flowId }}}}"
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionFlow
        namespace: {namespace}
        flowId: up
""")
    async with trigger_service(eng.rt, namespace):
        src = await eng.run(up)
        [run] = await rec.wait_ended("consumer", 1)
    assert run.inputs == {"value": f"out-{src.id}", "count": len(f"v-{src.id}")}
    assert run.labels["from"] == "up"
    st = await eng.rt.wait_terminal(run.execution_id, timeout=10)  # re-reads until the end is stored
    assert st is not None and st.state == "SUCCESS"
    assert next(iter(st.taskruns.values())).outputs["value"] == f"out-{src.id}/{len(src.id) + 3}"


async def test_steps_are_delivered_only_once_something_listens_and_not_those_from_before(
    eng: Engine, rec: Recorder, namespace: str
) -> None:
    """A service that starts with no Flow trigger and no stopAfter has no step consumer (two steps
    per execution it would receive for nothing). A consumer an earlier service left holds steps
    stored while nothing listened: once a Flow trigger is deployed, those are acknowledged unread,
    as they would have been had they been delivered then; the later ones fire."""
    import uuid

    up = await eng.deploy(upstream(namespace))
    trigger = f"""  - id: on-up
    type: io.kestra.plugin.core.trigger.Flow
    disabled: {{disabled}}
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionFlow
        namespace: {namespace}
        flowId: up"""
    durable = f"triggers-test-{uuid.uuid4().hex[:8]}"
    await eng.deploy(listener(namespace, "down", trigger.format(disabled="false")))
    async with trigger_service(eng.rt, namespace, durable=durable) as first:
        assert first.steps_subscribed  # something listened at start: subscribed at once
    await eng.deploy(listener(namespace, "down", trigger.format(disabled="true")))
    before = await eng.run(up)  # its steps wait in the consumer the first service left
    async with trigger_service(eng.rt, namespace, durable=durable) as svc:
        assert not svc.steps_subscribed
        await eng.deploy(listener(namespace, "down", trigger.format(disabled="false")))
        for _ in range(500):  # the service follows FLOWS, then subscribes
            if svc.steps_subscribed:
                break
            await asyncio.sleep(0.01)
        after = await eng.run(up)
        runs = await rec.wait_ended("down", 1)
        await asyncio.sleep(0.5)  # a run for the execution from before would show by now
    assert [c.trigger["executionId"] for c in rec.of("down")] == [after.id]  # type: ignore[index]
    assert before.id != after.id and len(runs) == 1


async def test_a_service_with_nothing_listening_makes_no_step_consumer(
    eng: Engine, rec: Recorder, namespace: str
) -> None:
    from nats.js.errors import NotFoundError

    from eventstore import subjects as S

    up = await eng.deploy(upstream(namespace))
    async with trigger_service(eng.rt, namespace) as svc:
        await eng.run(up)
        assert not svc.steps_subscribed
        for k in range(S.SHARDS):
            with pytest.raises(NotFoundError):
                await eng.rt.store.js.consumer_info(f"{S.EVENTS}_{k}", svc.durable)


async def test_a_completed_window_fires_once_for_the_step_that_completed_it(
    eng: Engine, rec: Recorder, namespace: str
) -> None:
    """The step that completes a MultipleCondition window fires, once, even when other steps are
    handled between its write to the window and its creation (other shards, other services), and
    when it is redelivered after stopping in between."""
    from triggers.flow import Upstream

    a = await eng.deploy(upstream(namespace, "a"))
    b = await eng.deploy(upstream(namespace, "b"))
    await eng.deploy(f"""
id: joined
namespace: {namespace}
tasks:
  - id: only
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ trigger.executionId }}}}"
triggers:
  - id: both
    type: io.kestra.plugin.core.trigger.Flow
    conditions:
      - id: both
        type: io.kestra.plugin.core.condition.MultipleCondition
        window: P1D
        windowAdvance: P0D
        conditions:
          a:
            type: io.kestra.plugin.core.condition.ExecutionFlow
            namespace: {namespace}
            flowId: a
          b:
            type: io.kestra.plugin.core.condition.ExecutionFlow
            namespace: {namespace}
            flowId: b
""")

    async def terminal_step(eid: str) -> tuple[int, bytes]:
        [(seq, events)] = [
            (seq, events)
            for seq, events in await eng.rt.store.read(eid)
            if any(isinstance(e, ev.ExecutionStateChanged) and e.state == "SUCCESS" for e in events)
        ]
        return seq, ev.encode(events)

    # No step consumer: this test hands each step to the service itself, in the order it chooses.
    quiet = {
        "flow_triggers": False,
        "schedules": False,
        "realtime": False,
        "polling": False,
        "backfills": False,
    }
    async with trigger_service(eng.rt, namespace, **quiet) as svc:
        for _ in range(500):  # the service follows FLOWS: the listener reaches its index
            if svc.step_listeners().flow_triggers:
                break
            await asyncio.sleep(0.01)
        runs = {name: await eng.run(flow) for name, flow in (("a", a), ("b", b), ("a2", a), ("b2", b))}
        steps = {name: await terminal_step(run.id) for name, run in runs.items()}

        assert await svc.handle(runs["a"].id, *steps["a"]) == []
        # b's step completes the window; its service stops before sending the creation.
        joined = svc.index[(namespace, "joined")]
        state = await eng.rt.load_execution(runs["b"].id)
        plan = await svc.flow_triggers.evaluate(
            joined, joined.triggers[0], Upstream(execution=state, state="SUCCESS", occurrence=1, variables={})
        )
        assert plan is not None
        # Meanwhile another step is handled (a's, again): it finds no complete window.
        assert await svc.handle(runs["a"].id, *steps["a"]) == []
        # b's step redelivered: the creation it did not send, under the same id, as often as it comes.
        assert await svc.handle(runs["b"].id, *steps["b"]) == [plan.execution_id]
        assert await svc.handle(runs["b"].id, *steps["b"]) == [plan.execution_id]

        # Steps handled at the same time as the completing one (several shards): b2's alone fires.
        assert await svc.handle(runs["a2"].id, *steps["a2"]) == []
        handled = await asyncio.gather(
            svc.handle(runs["b2"].id, *steps["b2"]),
            *(svc.handle(runs["a2"].id, *steps["a2"]) for _ in range(8)),
        )
        assert handled[1:] == [[]] * 8
        assert len(handled[0]) == 1
        assert set(svc.created) == {plan.execution_id, handled[0][0]}  # every creation it sent
        await rec.wait_ended("joined", 2)
    fired = {c.execution_id: c.trigger["executionId"] for c in rec.of("joined")}  # type: ignore[index]
    assert fired == {plan.execution_id: runs["b"].id, handled[0][0]: runs["b2"].id}


async def test_steps_backlog_counts_the_steps_no_service_has_handled(
    eng: Engine, rec: Recorder, namespace: str
) -> None:
    import time
    import uuid

    from eventstore.triggerfeeds import steps_backlog

    up = await eng.deploy(upstream(namespace))
    await eng.deploy(on_up(namespace))
    durable = f"triggers-test-{uuid.uuid4().hex[:8]}"
    assert await steps_backlog(eng.rt.store, durable) is None  # no consumer yet
    async with trigger_service(eng.rt, namespace, durable=durable) as svc:
        assert svc.steps_subscribed
    run = await eng.run(up)  # its steps wait in the consumers the stopped service left
    assert (await steps_backlog(eng.rt.store, durable) or 0) >= 2  # at least its start and its end
    async with trigger_service(eng.rt, namespace, durable=durable):
        deadline = time.monotonic() + 10
        while await steps_backlog(eng.rt.store, durable) != 0:
            assert time.monotonic() < deadline, "the backlog never reached 0"
            await asyncio.sleep(0.02)
        # handled means its creation was sent: the listener's execution comes without another step
        [down] = await rec.wait_ended("down", 1)
    assert down.trigger is not None and down.trigger["executionId"] == run.id
