"""Properties of the decider and the fold, checked with hypothesis (no server)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.core import events as ev
from engine.core.accept import accept
from engine.core.decider import advance_created, created_next, decide, settle
from engine.core.execution import Execution, evolve, to_bytes
from engine.core.tree import index_tasks
from engine.loader.loader import load_flow
from engine.testing import Clock, default_renderer, simulate

RENDERER = default_renderer()
LOG = "io.kestra.plugin.core.log.Log"

FLOW = load_flow(f"""
id: props
namespace: io.test
tasks:
  - {{id: a, type: {LOG}, message: a}}
  - id: par
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - {{id: b, type: {LOG}, message: b}}
      - id: each
        type: io.kestra.plugin.core.flow.ForEach
        values: [1, 2, 3]
        concurrencyLimit: 2
        tasks:
          - {{id: c, type: {LOG}, message: c}}
  - id: af
    type: io.kestra.plugin.core.flow.AllowFailure
    tasks:
      - {{id: d, type: {LOG}, message: d}}
errors:
  - {{id: e, type: {LOG}, message: e}}
finally:
  - {{id: f, type: {LOG}, message: f}}
""")

outcome = st.sampled_from(["SUCCESS", "FAILED", "WARNING"])
outcomes = st.fixed_dictionaries({k: outcome for k in "abcdef"})


def fold(events: list[ev.Event]) -> Execution:
    state: Execution | None = None
    for e in events:
        state = evolve(state, e)
    assert state is not None
    return state


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(outcomes)
def test_folding_the_same_events_twice_gives_the_same_state(chosen: dict[str, str]) -> None:
    sim = simulate(FLOW, chosen, renderer=RENDERER)
    assert sim.state.is_terminal
    once, twice = fold(sim.events), fold(sim.events)
    assert to_bytes(once) == to_bytes(twice) == to_bytes(sim.state)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(outcomes)
def test_every_taskrun_ends_and_the_execution_state_is_the_worst_that_counts(chosen: dict[str, str]) -> None:
    sim = simulate(FLOW, chosen, renderer=RENDERER)
    states = sim.states()
    assert all(s in ("SUCCESS", "WARNING", "FAILED", "SKIPPED") for s in states.values())
    if sim.state.state == "SUCCESS":
        assert all(s == "SUCCESS" for s in states.values())
    # The errors branch runs exactly when the main block failed.
    main_failed = chosen["a"] == "FAILED" or chosen["b"] == "FAILED" or chosen["c"] == "FAILED"
    assert ("e" in states) == main_failed
    assert "f" in states  # finally always runs


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(min_value=-1, max_value=4), outcome, st.booleans()), max_size=12))
def test_a_stale_or_foreign_attempt_never_completes_a_taskrun(reports: list[tuple[int, str, bool]]) -> None:
    flow = load_flow(f"id: one\nnamespace: io.test\ntasks:\n  - {{id: a, type: {LOG}, message: x}}\n")
    sim = simulate(flow, {"a": "RUNNING"}, renderer=RENDERER)
    tr = sim.state.taskruns[next(iter(sim.state.taskruns))]
    assert tr.state == "RUNNING" and tr.current_attempt == 1
    clock = Clock()
    for attempt, result, final in reports:
        if attempt == 1:
            continue  # only attempts other than the one in flight
        item = ev.AttemptEnded(date=clock(), taskrun_id=tr.id, attempt=attempt, state=result, final=final)
        for e in accept(sim.state, flow, item, clock()):
            evolve(sim.state, e)
        now = clock()
        settle(sim.state, flow, now, RENDERER.for_step(now, "t"))
    assert sim.state.taskruns[tr.id].state == "RUNNING"
    assert not sim.state.is_terminal


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(outcomes, st.randoms(use_true_random=False))
def test_redelivered_inputs_change_nothing(chosen: dict[str, str], rnd: Any) -> None:
    """Each worker report delivered again (as JetStream may after a crash) leaves the same end state."""
    sim = simulate(FLOW, chosen, renderer=RENDERER)
    reports = [e for e in sim.events if isinstance(e, ev.AttemptStarted | ev.AttemptEnded)]
    created = sim.events[0]
    assert isinstance(created, ev.ExecutionCreated)
    state = evolve(None, created)
    assert state is not None
    clock = Clock()
    now = clock()
    settle(state, FLOW, now, RENDERER.for_step(now, "t"))
    queue: list[ev.Input] = []
    for r in reports:
        queue.append(r)
        if rnd.random() < 0.5:
            queue.append(r)
    for item in queue:
        for e in accept(state, FLOW, item, clock()):
            evolve(state, e)
        now = clock()
        settle(state, FLOW, now, RENDERER.for_step(now, "t"))
    assert state.state == sim.state.state
    assert {t.id: t.state for t in state.taskruns.values()} == {
        t.id: t.state for t in sim.state.taskruns.values()
    }


def reports_in_any_order(flow: Any, chosen: dict[str, str], rnd: Any) -> Iterator[tuple[Execution, str]]:
    """A run of ``flow`` replayed with its workers' reports shuffled and half of them sent twice:
    the state once each report is accepted (and once before any), with the step's time, for the
    caller to decide on."""
    sim = simulate(flow, chosen, renderer=RENDERER)
    reports = [e for e in sim.events if isinstance(e, ev.AttemptStarted | ev.AttemptEnded)]
    rnd.shuffle(reports)
    created = sim.events[0]
    assert isinstance(created, ev.ExecutionCreated)
    state = evolve(None, created)
    assert state is not None
    clock = Clock()
    for item in [None, *reports, *reports[: len(reports) // 2]]:
        if item is not None:
            for e in accept(state, flow, item, clock()):
                evolve(state, e)
        yield state, clock()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(outcomes, st.randoms(use_true_random=False))
def test_settle_leaves_nothing_to_decide(chosen: dict[str, str], rnd: Any) -> None:
    """``settle`` stops early after a decision that only dispatches; deciding once more, at every
    step of a run (reports in any order, some twice), must then find nothing to do."""
    for state, now in reports_in_any_order(FLOW, chosen, rnd):
        settle(state, FLOW, now, RENDERER.for_step(now, "t"))
        again = decide(state, FLOW, now, RENDERER.for_step(now, "t"))
        assert (again.events, again.effects) == ([], [])


SHAPES = load_flow(f"""
id: shapes
namespace: io.test
tasks:
  - {{id: a, type: {LOG}, message: a, runIf: "{{{{ execution.id == 'exec' }}}}"}}
  - {{id: skipped, type: {LOG}, message: s, runIf: "false"}}
  - id: seq
    type: io.kestra.plugin.core.flow.Sequential
    tasks:
      - {{id: b, type: {LOG}, message: b}}
  - id: when
    type: io.kestra.plugin.core.flow.If
    condition: "{{{{ true }}}}"
    then:
      - {{id: c, type: {LOG}, message: c}}
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - {{id: d, type: {LOG}, message: d}}
  - {{id: g, type: {LOG}, message: "{{{{ taskrun.id }}}}"}}
errors:
  - {{id: e, type: {LOG}, message: e}}
finally:
  - {{id: f, type: {LOG}, message: f}}
afterExecution:
  - {{id: h, type: {LOG}, message: "{{{{ execution.state }}}}"}}
""")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([FLOW, SHAPES]),
    st.fixed_dictionaries({k: outcome for k in "abcdefgh"}),
    st.randoms(use_true_random=False),
)
def test_advancing_the_created_task_decides_what_the_walk_decides(flow: Any, chosen: Any, rnd: Any) -> None:
    """``settle`` moves a task it just created in the flow's main list on without walking the
    execution again (``advance_created``); at every such point of a run, reports in any order and
    some twice, the walk (``decide``) must decide exactly the same."""
    tasks = index_tasks(flow)
    compared = 0
    for state, now in reports_in_any_order(flow, chosen, rnd):
        templates = RENDERER.for_step(now, "t")
        step = decide(state, flow, now, templates)
        while step.events:
            for e in step.events:
                evolve(state, e)
            made = created_next(step.events)
            step = decide(state, flow, now, templates)
            if made is not None:
                shortcut = advance_created(state, flow, now, templates, tasks, made)
                assert (shortcut.events, shortcut.effects) == (step.events, step.effects)
                compared += 1
    assert compared >= 1
