"""The decider without a server: flows driven in memory by engine.testing.simulate."""

from __future__ import annotations

from typing import Any

from engine.core.decider import Dispatch
from engine.loader.loader import load_flow
from engine.testing import simulate


def flow(body: str) -> Any:
    return load_flow("id: t\nnamespace: io.test\n" + body)


LOG = "io.kestra.plugin.core.log.Log"
RET = "io.kestra.plugin.core.debug.Return"
FAIL = "io.kestra.plugin.core.execution.Fail"


def test_sequential_tasks_run_in_order_and_succeed() -> None:
    f = flow(f"""
tasks:
  - {{id: a, type: {RET}, format: "1"}}
  - {{id: b, type: {RET}, format: "{{{{ outputs.a.value }}}}2"}}
""")
    sim = simulate(f, {"a": lambda d: ("SUCCESS", {"value": "1"})})
    assert sim.state.state == "SUCCESS"
    assert [d.task.id for d in sim.dispatched] == ["a", "b"]
    assert sim.dispatched[1].variables["outputs"]["a"] == {"value": "1"}
    hist = [h.state for h in sim.state.histories]
    assert hist == ["CREATED", "RUNNING", "SUCCESS"]


def test_a_failure_stops_the_block_and_runs_errors() -> None:
    f = flow(f"""
tasks:
  - {{id: a, type: {FAIL}}}
  - {{id: b, type: {LOG}, message: never}}
errors:
  - {{id: e, type: {LOG}, message: handled}}
""")
    sim = simulate(f, {"a": "FAILED"})
    assert sim.state.state == "FAILED"
    assert sim.states() == {"a": "FAILED", "e": "SUCCESS"}


def test_finally_runs_after_success_and_failure() -> None:
    body = f"""
tasks:
  - {{id: a, type: {LOG}, message: x}}
finally:
  - {{id: z, type: {LOG}, message: y}}
"""
    assert simulate(flow(body)).states() == {"a": "SUCCESS", "z": "SUCCESS"}
    sim = simulate(flow(body), {"a": "FAILED"})
    assert sim.state.state == "FAILED" and sim.states()["z"] == "SUCCESS"


def test_parallel_runs_children_at_once_within_the_limit() -> None:
    f = flow(f"""
tasks:
  - id: p
    type: io.kestra.plugin.core.flow.Parallel
    concurrent: 2
    tasks:
      - {{id: a, type: {LOG}, message: x}}
      - {{id: b, type: {LOG}, message: x}}
      - {{id: c, type: {LOG}, message: x}}
""")
    seen: list[list[str]] = []

    def hold(d: Dispatch) -> tuple[str, dict[str, Any]]:
        return "SUCCESS", {}

    sim = simulate(f, {"a": hold, "b": hold, "c": hold})
    assert sim.state.state == "SUCCESS"
    assert sorted(d.task.id for d in sim.dispatched) == ["a", "b", "c"]
    del seen


def test_switch_picks_the_case_or_defaults() -> None:
    body = f"""
inputs:
  - {{id: v, type: STRING}}
tasks:
  - id: s
    type: io.kestra.plugin.core.flow.Switch
    value: "{{{{ inputs.v }}}}"
    cases:
      A:
        - {{id: a, type: {LOG}, message: x}}
      B:
        - {{id: b, type: {LOG}, message: x}}
    defaults:
      - {{id: d, type: {LOG}, message: x}}
"""
    assert set(simulate(flow(body), inputs={"v": "B"}).states()) == {"s", "b"}
    sim = simulate(flow(body), inputs={"v": "Z"})
    assert set(sim.states()) == {"s", "d"}
    assert sim.taskrun("s").outputs == {"value": "Z", "defaults": True}


def test_if_then_else() -> None:
    body = f"""
inputs:
  - {{id: c, type: BOOLEAN}}
tasks:
  - id: i
    type: io.kestra.plugin.core.flow.If
    condition: "{{{{ inputs.c }}}}"
    then:
      - {{id: yes, type: {LOG}, message: x}}
    else:
      - {{id: no, type: {LOG}, message: x}}
"""
    assert set(simulate(flow(body), inputs={"c": True}).states()) == {"i", "yes"}
    assert set(simulate(flow(body), inputs={"c": False}).states()) == {"i", "no"}


def test_foreach_runs_tasks_per_value_and_keys_outputs_by_value() -> None:
    f = flow(f"""
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: ["a", "b", "c"]
    tasks:
      - {{id: r, type: {RET}, format: "{{{{ taskrun.value }}}}"}}
  - {{id: after, type: {LOG}, message: "{{{{ outputs.r['b'].value }}}}"}}
""")
    sim = simulate(f, {"r": lambda d: ("SUCCESS", {"value": d.variables["taskrun"]["value"]})})
    assert sim.state.state == "SUCCESS"
    assert [d.variables["taskrun"]["value"] for d in sim.dispatched if d.task.id == "r"] == ["a", "b", "c"]
    after = next(d for d in sim.dispatched if d.task.id == "after")
    assert after.variables["outputs"]["r"]["b"] == {"value": "b"}


def test_foreach_concurrency_limit_zero_starts_every_value() -> None:
    f = flow(f"""
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: "[1, 2, 3]"
    concurrencyLimit: 0
    tasks:
      - {{id: r, type: {LOG}, message: x}}
""")
    sim = simulate(f, {"r": "RUNNING"})
    assert len(sim.dispatched) == 3  # all three values started before any ended


def test_allow_failure_turns_failure_into_warning() -> None:
    f = flow(f"""
tasks:
  - id: af
    type: io.kestra.plugin.core.flow.AllowFailure
    tasks:
      - {{id: bad, type: {FAIL}}}
  - {{id: next, type: {LOG}, message: x}}
""")
    sim = simulate(f, {"bad": "FAILED"})
    assert sim.state.state == "WARNING"
    assert sim.states() == {"af": "WARNING", "bad": "FAILED", "next": "SUCCESS"}


def test_dag_respects_depends_on() -> None:
    f = flow(f"""
tasks:
  - id: dag
    type: io.kestra.plugin.core.flow.Dag
    tasks:
      - task: {{id: a, type: {LOG}, message: x}}
      - task: {{id: b, type: {LOG}, message: x}}
        dependsOn: [a]
      - task: {{id: c, type: {LOG}, message: x}}
        dependsOn: [a, b]
""")
    sim = simulate(f)
    assert [d.task.id for d in sim.dispatched] == ["a", "b", "c"]
    assert sim.state.state == "SUCCESS"


def test_a_stale_attempt_never_completes_a_taskrun() -> None:
    from engine.core import events as ev
    from engine.core.accept import accept
    from engine.core.execution import evolve

    f = flow(f"tasks:\n  - {{id: a, type: {LOG}, message: x}}\n")
    sim = simulate(f, {"a": "RUNNING"})
    tr = sim.taskrun("a")
    assert tr.state == "RUNNING"
    stale = ev.AttemptEnded(date="2026-01-01T00:00:09Z", taskrun_id=tr.id, attempt=0, state="SUCCESS")
    future = ev.AttemptEnded(date="2026-01-01T00:00:09Z", taskrun_id=tr.id, attempt=7, state="SUCCESS")
    assert accept(sim.state, f, stale, "2026-01-01T00:00:10Z") == []
    assert accept(sim.state, f, future, "2026-01-01T00:00:10Z") == []
    good = ev.AttemptEnded(date="2026-01-01T00:00:09Z", taskrun_id=tr.id, attempt=1, state="SUCCESS")
    events = accept(sim.state, f, good, "2026-01-01T00:00:10Z")
    for e in events:
        evolve(sim.state, e)
    assert sim.taskrun("a").state == "SUCCESS"
    assert accept(sim.state, f, good, "2026-01-01T00:00:11Z") == []  # a duplicate is ignored


def test_kill_stops_running_work_and_ends_killed() -> None:
    from engine.core import events as ev

    f = flow(f"tasks:\n  - {{id: a, type: {LOG}, message: x}}\n  - {{id: b, type: {LOG}, message: y}}\n")
    sent: list[str] = []

    def interrupt(sim: Any) -> list[ev.Input]:
        tr = sim.taskrun("a")
        if tr.state == "RUNNING" and "kill" not in sent:
            sent.append("kill")
            return [ev.KillRequested(date="2026-01-01T00:00:05Z")]
        if sim.state.state == "KILLING" and "ended" not in sent:
            sent.append("ended")
            return [ev.AttemptEnded(date="2026-01-01T00:00:06Z", taskrun_id=tr.id, attempt=1, state="KILLED")]
        return []

    sim = simulate(f, {"a": "RUNNING"}, interrupt=interrupt)
    assert sim.state.state == "KILLED"
    assert sim.states() == {"a": "KILLED"}
    assert sim.kills and sim.kills[0].execution_ids == ("exec",)


def test_flow_outputs_are_rendered_at_the_end() -> None:
    f = flow(f"""
tasks:
  - {{id: a, type: {RET}, format: x}}
outputs:
  - id: out
    type: STRING
    value: "{{{{ outputs.a.value }}}}!"
""")
    sim = simulate(f, {"a": lambda d: ("SUCCESS", {"value": "v"})})
    assert sim.state.outputs == {"out": "v!"}


def test_subflow_waits_for_the_child() -> None:
    from engine.core import events as ev

    f = flow("""
tasks:
  - id: sub
    type: io.kestra.plugin.core.flow.Subflow
    namespace: io.test
    flowId: child
    inputs: {x: "1"}
""")
    sent: list[int] = []

    def interrupt(sim: Any) -> list[ev.Input]:
        if sim.subflows and not sent:
            sent.append(1)
            s = sim.subflows[0]
            return [
                ev.SubflowEnded(
                    date="2026-01-01T00:00:05Z",
                    taskrun_id=s.taskrun_id,
                    execution_id=s.execution_id,
                    state="SUCCESS",
                    outputs={"o": 1},
                )
            ]
        return []

    sim = simulate(f, interrupt=interrupt)
    assert sim.subflows[0].flow_id == "child" and sim.subflows[0].inputs == {"x": "1"}
    assert sim.state.state == "SUCCESS"
    assert sim.taskrun("sub").outputs["outputs"] == {"o": 1}


def test_pause_waits_for_resume_and_sets_the_execution_paused() -> None:
    from engine.core import events as ev

    f = flow(f"""
tasks:
  - id: pause
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - {{id: asked, type: STRING, required: false}}
  - {{id: last, type: {RET}, format: "{{{{ outputs.pause.onResume.asked ?? 'MISSING' }}}}"}}
""")
    resumed: list[int] = []

    def interrupt(sim: Any) -> list[ev.Input]:
        if sim.state.state == "PAUSED" and not resumed:
            resumed.append(1)
            assert sim.states() == {"pause": "PAUSED"}
            return [ev.Resume(date="2026-01-01T00:00:05Z", inputs={"asked": "yes"})]
        return []

    sim = simulate(f, interrupt=interrupt)
    assert sim.state.state == "SUCCESS"
    assert [h.state for h in sim.state.histories] == ["CREATED", "RUNNING", "PAUSED", "RUNNING", "SUCCESS"]
    pause = sim.taskrun("pause")
    assert [h.state for h in pause.histories] == ["CREATED", "RUNNING", "PAUSED", "RUNNING", "SUCCESS"]
    assert pause.outputs == {"onResume": {"asked": "yes"}}
    assert sim.dispatched[-1].variables["outputs"]["pause"]["onResume"]["asked"] == "yes"


def test_pause_delay_resumes_and_timeout_fails_through_a_timer() -> None:
    for prop, outcome, count in (("delay: PT2S", "SUCCESS", 2), ("timeout: PT3S", "FAILED", 1)):
        f = flow(f"""
tasks:
  - id: pause
    type: io.kestra.plugin.core.flow.Pause
    {prop}
  - {{id: last, type: {LOG}, message: x}}
""")
        waiting = simulate(f)
        assert waiting.state.state == "PAUSED"
        assert len(waiting.timers) == 1
        paused_at = waiting.taskrun("pause").histories[-1].date
        seconds = 2 if "delay" in prop else 3
        assert waiting.timers[0].at[17:19] == f"{int(paused_at[17:19]) + seconds:02d}"
        done = simulate(f, fire_timers=True)
        assert done.state.state == outcome
        assert len(done.state.taskruns) == count
        hist = [h.state for h in done.taskrun("pause").histories]
        assert hist.count("PAUSED") == 1


def test_wait_for_runs_rounds_until_the_condition_holds() -> None:
    f = flow("""
tasks:
  - id: w
    type: io.kestra.plugin.core.flow.WaitFor
    condition: "{{ outputs.o.values.count == '4' }}"
    checkFrequency: {interval: PT0.1S}
    tasks:
      - id: o
        type: io.kestra.plugin.core.output.OutputValues
        values: {count: "{{ outputs.w.iterationCount + 1 }}"}
""")

    def values(d: Dispatch) -> tuple[str, dict[str, Any]]:
        return "SUCCESS", {"values": {"count": str(d.variables["outputs"]["w"]["iterationCount"] + 1)}}

    sim = simulate(f, {"o": values}, fire_timers=True)
    assert sim.state.state == "SUCCESS"
    rounds = [tr for tr in sim.state.taskruns.values() if tr.task_id == "o"]
    assert [tr.iteration for tr in rounds] == [1, 2, 3]
    assert rounds[-1].outputs == {"values": {"count": "4"}}
    assert len(sim.timers) == 2


def test_wait_for_fails_on_max_iterations_when_asked() -> None:
    f = flow("""
tasks:
  - id: w
    type: io.kestra.plugin.core.flow.WaitFor
    condition: "{{ false }}"
    failOnMaxReached: true
    checkFrequency: {maxIterations: 2, interval: PT0.1S}
    tasks:
      - {id: o, type: io.kestra.plugin.core.log.Log, message: x}
""")
    sim = simulate(f, fire_timers=True)
    assert sim.state.state == "FAILED"
    assert len([tr for tr in sim.state.taskruns.values() if tr.task_id == "o"]) == 2


def test_restart_runs_failed_taskruns_again_as_new_attempts() -> None:
    from engine.core import events as ev
    from engine.testing import drive

    f = flow(f"""
tasks:
  - {{id: a, type: {LOG}, message: a}}
  - id: seq
    type: io.kestra.plugin.core.flow.Sequential
    tasks:
      - {{id: b, type: {LOG}, message: b}}
      - {{id: c, type: {FAIL}}}
  - {{id: d, type: {LOG}, message: d}}
errors:
  - {{id: handler, type: {LOG}, message: oops}}
""")
    sim = simulate(f, {"c": "FAILED"})
    assert sim.state.state == "FAILED"
    assert set(sim.states()) == {"a", "seq", "b", "c", "handler"}
    drive(sim, f, [ev.Restart(date="2026-01-02T00:00:00Z")], {"c": "SUCCESS"})
    assert sim.state.state == "SUCCESS"
    assert [h.state for h in sim.state.histories][-3:] == ["RESTARTED", "RUNNING", "SUCCESS"]
    assert sim.states() == {"a": "SUCCESS", "seq": "SUCCESS", "b": "SUCCESS", "c": "SUCCESS", "d": "SUCCESS"}
    c = sim.taskrun("c")
    assert [a.state for a in c.attempts] == ["FAILED", "SUCCESS"]
    assert len(sim.taskrun("a").attempts) == 1  # what succeeded is not run again


def test_replay_from_a_taskrun_keeps_what_came_before() -> None:
    from engine.core.execution import evolve as fold
    from engine.core.history import replay_events
    from engine.testing import Simulation, drive

    f = flow(f"""
tasks:
  - {{id: a, type: {RET}, format: a}}
  - {{id: b, type: {RET}, format: b}}
  - {{id: c, type: {RET}, format: c}}
""")
    source = simulate(f, {"a": lambda d: ("SUCCESS", {"value": "A"})})
    b = source.taskrun("b")
    events = replay_events(source.state, "replay1", b.id, f, "2026-01-03T00:00:00Z")
    state = None
    for e in events:
        state = fold(state, e)
    assert state is not None and state.state == "RESTARTED"
    assert [tr.task_id for tr in state.taskruns.values()] == ["a", "b"]
    assert all(tr.id not in source.state.taskruns for tr in state.taskruns.values())  # new ids
    assert state.original_id == "exec"
    sim = drive(Simulation(state, list(events)), f, [])
    assert sim.state.state == "SUCCESS"
    assert sim.states() == {"a": "SUCCESS", "b": "SUCCESS", "c": "SUCCESS"}
    assert len(sim.taskrun("a").attempts) == 1 and len(sim.taskrun("b").attempts) == 2
    assert sim.taskrun("a").outputs == {"value": "A"}  # kept from the source


def test_working_directory_tasks_share_one_directory_key() -> None:
    f = flow(f"""
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    inputFiles:
      a.txt: hello
    tasks:
      - {{id: one, type: {LOG}, message: x}}
      - {{id: two, type: {LOG}, message: y}}
  - {{id: outside, type: {LOG}, message: z}}
""")
    sim = simulate(f)
    assert sim.state.state == "SUCCESS"
    wd = sim.taskrun("wd")
    by_task = {d.task.id: d for d in sim.dispatched}
    assert by_task["one"].workdir == by_task["two"].workdir == wd.id
    assert by_task["one"].workdir_files == {"a.txt": "hello"}
    assert by_task["outside"].workdir is None


def test_concurrency_limit_asks_for_a_slot_and_waits_in_queue() -> None:
    from engine.core import events as ev
    from engine.testing import drive

    f = flow(f"""
concurrency: {{limit: 1, behavior: QUEUE}}
tasks:
  - {{id: a, type: {LOG}, message: x}}
""")
    sim = simulate(f)
    assert sim.state.state == "CREATED"  # nothing runs before a slot is granted
    drive(sim, f, [ev.Admitted(date="2026-01-02T00:00:00Z", state="QUEUED")])
    assert sim.state.state == "QUEUED" and not sim.dispatched
    drive(sim, f, [ev.Admitted(date="2026-01-02T00:00:01Z", state="RUNNING")])
    assert [h.state for h in sim.state.histories] == ["CREATED", "QUEUED", "RUNNING", "SUCCESS"]


def test_a_refused_execution_ends_cancelled_without_running() -> None:
    from engine.core import events as ev
    from engine.testing import drive

    f = flow(f"concurrency: {{limit: 1, behavior: CANCEL}}\ntasks:\n  - {{id: a, type: {LOG}, message: x}}\n")
    sim = simulate(f)
    drive(sim, f, [ev.Admitted(date="2026-01-02T00:00:00Z", state="CANCELLED")])
    assert [h.state for h in sim.state.histories] == ["CREATED", "CANCELLED"] and not sim.dispatched


def test_for_each_item_splits_then_runs_one_subflow_per_batch_then_merges() -> None:
    from engine.core import events as ev

    f = flow("""
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEachItem
    items: "kestra:///io/test/t/file.txt"
    batch: {rows: 2}
    namespace: io.test
    flowId: child
    inputs:
      items: "{{ taskrun.items }}"
""")
    uris = [f"kestra:///b{i}.txt" for i in range(3)]
    ended: set[str] = set()

    def interrupt(sim: Any) -> list[ev.Input]:
        out: list[ev.Input] = []
        for s in sim.subflows:
            if s.execution_id not in ended:
                ended.add(s.execution_id)
                out.append(
                    ev.SubflowEnded(
                        date="2026-01-01T00:00:05Z",
                        taskrun_id=s.taskrun_id,
                        execution_id=s.execution_id,
                        state="SUCCESS",
                    )
                )
        return out

    sim = simulate(f, {"each_split": lambda d: ("SUCCESS", {"splits": uris})}, interrupt=interrupt)
    assert sim.state.state == "SUCCESS"
    assert [tr.task_id for tr in sim.state.taskruns.values()] == [
        "each",
        "each_split",
        "each_items",
        "each_merge",
    ]
    assert [s.inputs for s in sim.subflows] == [{"items": u} for u in uris]
    items = sim.taskrun("each_items")
    assert items.outputs == {"numberOfBatches": 3, "iterations": {"CREATED": 0, "RUNNING": 0, "SUCCESS": 3}}
    merge = next(d for d in sim.dispatched if d.task.id == "each_merge")
    assert merge.task.props == {"executions": [s.execution_id for s in sim.subflows]}


def test_delete_is_an_event_on_a_finished_execution_only() -> None:
    from engine.core import events as ev
    from engine.core.accept import accept

    f = flow(f"tasks:\n  - {{id: a, type: {LOG}, message: x}}\n")
    running = simulate(f, {"a": "RUNNING"})
    assert (
        accept(running.state, f, ev.DeleteRequested(date="2026-01-01T00:00:09Z"), "2026-01-01T00:00:09Z")
        == []
    )
    done = simulate(f)
    events = accept(done.state, f, ev.DeleteRequested(date="2026-01-01T00:00:09Z"), "2026-01-01T00:00:09Z")
    assert [type(e).__name__ for e in events] == ["ExecutionDeleted"]


def test_sla_max_duration_fails_a_late_execution_through_its_timer() -> None:
    f = flow(f"""
sla:
  - {{id: fast, type: MAX_DURATION, behavior: FAIL, duration: PT1S, labels: {{sla: late}}}}
tasks:
  - {{id: slow, type: {LOG}, message: x}}
""")
    sim = simulate(f, {"slow": "RUNNING"}, fire_timers=True)
    assert [t.key for t in sim.timers] == ["sla.fast"]
    assert sim.state.labels == {"sla": "late"}
    assert sim.state.exit_state == "FAILED" and sim.kills  # the running task is stopped, then FAILED


def test_sla_execution_assertion_cancels_or_labels() -> None:
    for value, end, labels in (("ok", "SUCCESS", {}), ("bad", "CANCELLED", {"sla": "violated"})):
        f = flow(f"""
inputs: [{{id: v, type: STRING}}]
sla:
  - {{id: check, type: EXECUTION_ASSERTION, behavior: CANCEL, assert: "{{{{ inputs.v == 'ok' }}}}",
     labels: {{sla: violated}}}}
tasks:
  - {{id: a, type: {LOG}, message: x}}
""")
        sim = simulate(f, inputs={"v": value})
        assert sim.state.state == end and sim.state.labels == labels


def test_redispatch_after_a_restart_builds_the_same_work() -> None:
    from engine.core.decider import redispatch
    from engine.testing import default_renderer

    f = flow(f"""
retry: {{type: constant, interval: PT1S, maxAttempt: 3}}
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - {{id: a, type: {LOG}, message: x}}
""")
    sim = simulate(f, {"a": "RUNNING"})
    first = next(d for d in sim.dispatched if d.task.id == "a")
    a = sim.taskrun("a")
    a.attempts.clear()  # as if the worker never got it: dispatched, not started
    a.state = "CREATED"
    now = "2026-01-02T00:00:00Z"
    again = redispatch(sim.state, f, now, default_renderer().for_step(now, "t"))
    assert [(d.taskrun_id, d.attempt, d.workdir, d.task.retry) for d in again] == [
        (first.taskrun_id, 1, first.workdir, first.task.retry)
    ]
    assert first.task.retry is not None and first.workdir is not None


def test_a_first_load_sends_the_work_its_step_just_decided_once() -> None:
    from engine.core.accept import accept
    from engine.core.decider import redispatch, settle, without_repeats
    from engine.core.execution import evolve
    from engine.core.factory import execution_created
    from engine.testing import default_renderer

    f = flow(f"""
tasks:
  - {{id: a, type: {LOG}, message: x}}
  - {{id: b, type: {LOG}, message: y}}
""")
    now = "2026-01-02T00:00:00Z"
    created = execution_created(f, "e1", now)
    state = None
    for event in accept(None, f, created, now):
        state = evolve(state, event)
    assert state is not None
    templates = default_renderer().for_step(now, "t")
    decided = settle(state, f, now, templates).effects  # dispatches a
    again = redispatch(state, f, now, templates)  # a, dispatched and not started: again
    assert [(d.taskrun_id, d.attempt) for d in again] == [
        (d.taskrun_id, d.attempt) for d in decided if isinstance(d, Dispatch)
    ]
    sent = without_repeats([*decided, *again])
    assert sent == list(decided)
    assert without_repeats([*again, *again]) == again


def test_evolve_knows_every_event_of_the_history() -> None:
    """evolve looks events up by their exact type: an event type it does not list would be
    dropped from every fold without a word."""
    import typing

    from engine.core import events as ev
    from engine.core.execution import _ON_EXECUTION, _ON_TASKRUN

    known = {ev.ExecutionCreated, ev.RetryExecutionCreated, *_ON_EXECUTION, *_ON_TASKRUN}
    assert set(typing.get_args(ev.Event)) == known
    assert all("taskrun_id" in kind.__struct_fields__ for kind in _ON_TASKRUN)


def test_derived_ids_never_change() -> None:
    """Ids derived from an execution's parts must be the same in every version: a replay, a restart
    or a redelivery finds its taskruns and message ids by them."""
    import random

    from engine.core.tree import _BASE62, base62_id, make_id

    def digit_by_digit(n: int) -> str:
        out = []
        for _ in range(22):
            n, r = divmod(n, 62)
            out.append(_BASE62[r])
        return "".join(out)

    rnd = random.Random(7)
    for n in [0, 61, 62, 3843, 3844, 2**128 - 1, *(rnd.getrandbits(128) for _ in range(2000))]:
        assert base62_id(n) == digit_by_digit(n)
    assert make_id("exec", None, "t1", None) == "lzJOntZqj2jYsEJKhOicK3"
