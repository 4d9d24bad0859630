"""Retry behavior CREATE_NEW_EXECUTION: a failed try ends RETRIED and the next try is a new execution.

On the pure decider (``simulate``, chained through the ``StartRetry`` effects), then on the real
executor and worker in memory (``MemoryEngine``); end to end on nats-server it is the conformance
corpus (``retry-new-execution-*``, every execution of the chain checked).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core import events as ev
from engine.core.decider import ReleaseSlot, StartRetry, decide, renotify
from engine.core.execution import Execution, clone, evolve
from engine.core.factory import CORRELATION_LABEL, execution_created
from engine.core.model import Flow
from engine.core.tree import make_id
from engine.loader.loader import load_flow
from engine.testing import Simulation, default_renderer, simulate

FAIL = "io.kestra.plugin.core.execution.Fail"
LOG = "io.kestra.plugin.core.log.Log"


def _retry(max_attempt: int | None = 3, interval: str = "PT1S", max_duration: str | None = None) -> str:
    lines = ["behavior: CREATE_NEW_EXECUTION", "type: constant", f"interval: {interval}"]
    if max_attempt is not None:
        lines.append(f"maxAttempt: {max_attempt}")
    if max_duration is not None:
        lines.append(f"maxDuration: {max_duration}")
    return "{" + ", ".join(lines) + "}"


def flow_level(retry: str) -> Flow:
    return load_flow(f"""
id: f
namespace: io.test
labels: {{team: a}}
inputs:
  - {{id: name, type: STRING, defaults: x}}
retry: {retry}
tasks:
  - {{id: before, type: {LOG}, message: hi}}
  - {{id: fail, type: {FAIL}}}
errors:
  - {{id: handler, type: {LOG}, message: handled}}
""")


def chain(
    flow: Flow, limit: int = 50, inputs: dict[str, Any] | None = None, execution_id: str = "first"
) -> list[Simulation]:
    """Every try of one execution: each the simulation of the ``created`` its predecessor asked for."""
    first = execution_created(flow, execution_id, "2026-01-01T00:00:00.000000Z", inputs)
    sims = [simulate(flow, {"fail": "FAILED"}, created=first)]
    while sims[-1].retries and len(sims) < limit:
        (retry,) = sims[-1].retries
        sims.append(simulate(flow, {"fail": "FAILED"}, created=retry.created))
    return sims


def test_each_try_is_a_new_execution_and_the_last_one_fails() -> None:
    flow = flow_level(_retry(max_attempt=3))
    sims = chain(flow, inputs={"name": "ada"}, execution_id="first")
    assert [s.state.state for s in sims] == ["RETRIED", "RETRIED", "FAILED"]
    assert [s.state.attempt_number for s in sims] == [1, 2, 3]
    ids = [s.state.id for s in sims]
    assert ids[1] == make_id("first", "retry") and ids[2] == make_id(ids[1], "retry")
    for sim in sims:
        assert sim.state.inputs == {"name": "ada"}
        assert sim.state.labels[CORRELATION_LABEL] == "first"
        assert sim.state.labels["team"] == "a"
        assert sim.state.original_created == (None if sim is sims[0] else sims[0].state.start_date)
    assert [s.state.original_id for s in sims] == [None, "first", "first"]
    # a RETRIED try stops at the failure: its errors branch is the last try's
    assert sims[0].states() == {"before": "SUCCESS", "fail": "RETRIED"}
    assert sims[2].states() == {"before": "SUCCESS", "fail": "FAILED", "handler": "SUCCESS"}


def test_the_next_try_starts_after_the_interval() -> None:
    sims = chain(flow_level(_retry(max_attempt=2, interval="PT5S")))
    retried_at = datetime.fromisoformat(sims[0].state.end_date or "")
    next_created = datetime.fromisoformat(sims[1].state.start_date)
    assert (next_created - retried_at).total_seconds() == 5


def test_the_task_and_its_flowable_parents_end_retried_and_the_worker_never_retries_in_place() -> None:
    flow = load_flow(f"""
id: f
namespace: io.test
tasks:
  - id: seq
    type: io.kestra.plugin.core.flow.Sequential
    tasks:
      - id: fail
        type: {FAIL}
        retry: {_retry(max_attempt=2)}
""")
    sims = chain(flow)
    assert [s.state.state for s in sims] == ["RETRIED", "FAILED"]
    assert sims[0].states() == {"seq": "RETRIED", "fail": "RETRIED"}
    assert all(d.task.retry is None for s in sims for d in s.dispatched)
    assert all(len(s.taskrun("fail").attempts) == 1 for s in sims)


def test_a_retry_in_place_of_the_task_wins_over_the_flows_new_execution() -> None:
    flow = load_flow(f"""
id: f
namespace: io.test
retry: {_retry(max_attempt=5)}
tasks:
  - id: fail
    type: {FAIL}
    retry: {{type: constant, interval: PT0S, maxAttempt: 2}}
""")
    sim = simulate(flow, {"fail": "FAILED"})
    assert not sim.retries and sim.state.state == "FAILED"
    assert sim.dispatched[0].task.retry is not None  # the worker retries it in place


def test_deciding_the_retried_step_again_asks_for_the_same_execution() -> None:
    flow = flow_level(_retry(max_attempt=3))
    sim = simulate(flow, {"fail": "FAILED"})
    failed = next(
        i
        for i, e in enumerate(sim.events)
        if isinstance(e, ev.TaskRunStateChanged)
        and e.state == "FAILED"
        and e.taskrun_id == sim.taskrun("fail").id
    )
    before: Execution | None = None
    for event in sim.events[: failed + 1]:  # what the executor holds once it accepted the failure
        before = evolve(before, event)
    assert before is not None
    now = sim.state.end_date or ""
    again = decide(clone(before), flow, now, default_renderer().for_step(now, "x"))
    assert [e for e in again.effects if isinstance(e, StartRetry)] == sim.retries
    # after a restart of the executor (the effect may not have gone out), asked for once more
    renewed = renotify(sim.state, flow, now, default_renderer().for_step(now, "y"))
    assert [e for e in renewed if isinstance(e, StartRetry)] == sim.retries


def test_a_retried_try_gives_its_concurrency_slot_back() -> None:
    flow = load_flow(f"""
id: f
namespace: io.test
concurrency: {{limit: 1}}
retry: {_retry(max_attempt=2)}
tasks:
  - {{id: fail, type: {FAIL}}}
""")

    def admit(sim: Simulation) -> list[ev.Input]:
        if sim.state.state == "CREATED":
            return [ev.Admitted(date=sim.state.start_date, state="RUNNING")]
        return []

    sim = simulate(flow, {"fail": "FAILED"}, interrupt=admit)
    assert sim.state.state == "RETRIED" and sim.retries
    now = sim.state.end_date or ""
    effects = renotify(sim.state, flow, now, default_renderer().for_step(now, "x"))
    assert any(isinstance(e, ReleaseSlot) for e in effects)


@settings(max_examples=40, deadline=None)
@given(
    max_attempt=st.one_of(st.none(), st.integers(1, 6)),
    interval=st.integers(0, 4),
    max_duration=st.one_of(st.none(), st.integers(0, 15)),
    work_ms=st.integers(1, 3000),
)
def test_tries_follow_max_attempt_and_max_duration_across_the_chain(
    max_attempt: int | None, interval: int, max_duration: int | None, work_ms: int
) -> None:
    if max_attempt is None and max_duration is None:
        max_attempt = 4  # neither: Kestra retries forever, and so would this
    retry = _retry(max_attempt, f"PT{interval}S", None if max_duration is None else f"PT{max_duration}S")
    flow = load_flow(f"id: f\nnamespace: io.test\ntasks:\n  - {{id: slow, type: {FAIL}, retry: {retry}}}\n")

    sims = [_slow_simulation(flow, None, work_ms)]
    while sims[-1].retries and len(sims) < 30:
        sims.append(_slow_simulation(flow, sims[-1].retries[0].created, work_ms))
    first_created = datetime.fromisoformat(sims[0].state.start_date)
    for i, sim in enumerate(sims, start=1):
        failed_at = datetime.fromisoformat(sim.state.end_date or "")
        next_at = (failed_at - first_created).total_seconds() + interval
        allowed = (max_attempt is None or i < max_attempt) and (
            max_duration is None or next_at <= max_duration
        )
        assert sim.state.state == ("RETRIED" if allowed else "FAILED"), (i, next_at)
    assert max_attempt is None or len(sims) <= max_attempt


def _slow_simulation(flow: Flow, created: ev.ExecutionCreated | None, work_ms: int) -> Simulation:
    """A try whose task works ``work_ms`` before it fails (the clock moves between start and end)."""
    from engine.testing import Clock, drive

    sim_flow = flow
    clock_start = created.date if created is not None else "2026-01-01T00:00:00.000000Z"
    clock = Clock(datetime.fromisoformat(clock_start.replace("Z", "+00:00")))
    if created is None:
        created = ev.ExecutionCreated(
            date=clock(), execution_id="first", namespace=flow.namespace, flow_id=flow.id, flow_revision=1
        )
    state = evolve(None, created)
    assert state is not None
    sim = Simulation(state, [created])

    def fail_late(dispatch: Any) -> tuple[str, dict[str, Any]]:
        clock.t = clock.t.__class__.fromtimestamp(clock.t.timestamp() + work_ms / 1000, clock.t.tzinfo)
        return "FAILED", {}

    return drive(sim, sim_flow, [], {"slow": fail_late}, clock=clock)


def test_the_next_try_survives_encoding() -> None:
    sims = chain(flow_level(_retry(max_attempt=2)))
    created = sims[0].retries[0].created
    again = ev.decode_input(ev.encode_input(created))
    assert again == created and isinstance(again, ev.RetryExecutionCreated)
    assert msgspec.json.decode(msgspec.json.encode(created), type=ev.Input) == created


def test_memory_engine_runs_the_chain_to_the_last_try() -> None:
    from engine.testing.run import MemoryEngine
    from eventstore.reader import read_execution

    source = f"""
id: cne
namespace: io.test
tasks:
  - id: fail
    type: {FAIL}
    retry: {_retry(max_attempt=3, interval="PT0.1S")}
"""

    async def run() -> list[Execution]:
        async with MemoryEngine() as eng:
            flow = await eng.deploy(source)
            tries = [await eng.run(flow)]
            while tries[-1].state == "RETRIED" and len(tries) < 5:
                next_id = make_id(tries[-1].id, "retry")
                for _ in range(200):
                    state = (await read_execution(eng.store, next_id)).state
                    if state is not None and state.is_terminal:
                        break
                    await asyncio.sleep(0.02)
                assert state is not None and state.is_terminal, f"try {len(tries) + 1} did not end"
                tries.append(state)
            return tries

    tries = asyncio.run(run())
    assert [t.state for t in tries] == ["RETRIED", "RETRIED", "FAILED"]
    assert [t.attempt_number for t in tries] == [1, 2, 3]
    assert [t.taskruns[next(iter(t.taskruns))].state for t in tries] == ["RETRIED", "RETRIED", "FAILED"]
    assert len({t.labels[CORRELATION_LABEL] for t in tries}) == 1


def test_a_subflow_whose_child_retries_by_new_executions_waits_for_the_last_try() -> None:
    from engine.core.factory import retry_id
    from engine.testing.run import MemoryEngine
    from eventstore.reader import read_execution

    child = f"""
id: child
namespace: io.test
retry: {_retry(max_attempt=2, interval="PT0.1S")}
tasks:
  - {{id: fail, type: {FAIL}}}
"""
    parent = """
id: parent
namespace: io.test
tasks:
  - {id: sub, type: io.kestra.plugin.core.flow.Subflow, namespace: io.test, flowId: child}
"""

    async def run() -> tuple[Execution, list[Execution]]:
        async with MemoryEngine() as eng:
            await eng.deploy(child)
            state = await eng.run(await eng.deploy(parent), timeout=15)
            first = state.taskruns[next(iter(state.taskruns))].subflow_execution
            assert first is not None
            tries = [(await read_execution(eng.store, i)).state for i in (first, retry_id(first))]
            return state, [t for t in tries if t is not None]

    state, tries = asyncio.run(run())
    assert [t.state for t in tries] == ["RETRIED", "FAILED"]
    assert tries[1].first_try == tries[0].id
    assert state.state == "FAILED"  # the last try's end reached the parent (it waited for the first id)
