"""The manifest's notes as checks, without a server: each form holds on what it says and fails on
what it does not; every segment left informational has its reason."""

from __future__ import annotations

from types import SimpleNamespace as NS
from typing import Any

import pytest
from corpus import corpus_root, load_cases
from notes import Observed, informational_reason, parse_note

ROOT = corpus_root()


def _tr(task_id: str, state: str = "SUCCESS", **kw: Any) -> Any:
    base: dict[str, Any] = {
        "id": kw.pop("id", task_id),
        "task_id": task_id,
        "state": state,
        "value": None,
        "parent_id": None,
        "branch": "tasks",
        "outputs": {},
        "attempts": [NS(state=state)],
        "histories": [NS(state="CREATED"), NS(state="RUNNING"), NS(state=state)],
    }
    base.update(kw)
    return NS(**base)


def _ex(*taskruns: Any, **kw: Any) -> Any:
    base: dict[str, Any] = {
        "id": "e1",
        "flow_id": "f",
        "state": "SUCCESS",
        "labels": {},
        "inputs": {},
        "outputs": None,
        "trigger": None,
        "parent": None,
        "taskruns": {tr.id: tr for tr in taskruns},
    }
    base.update(kw)
    return NS(**base)


def _verdicts(note: str, obs: Observed) -> list[str | None]:
    parsed = parse_note(note)
    assert parsed.checks and not parsed.informational, (note, parsed.informational)
    return [check(obs) for _, check in parsed.checks]


def holds(note: str, obs: Observed) -> None:
    assert _verdicts(note, obs) == [None] * len(parse_note(note).checks)


def fails(note: str, obs: Observed) -> None:
    assert any(v is not None for v in _verdicts(note, obs)), note


def test_every_informational_segment_has_its_reason() -> None:
    missing = [
        (case.id, seg)
        for case in load_cases(ROOT)
        for expected in (case.expected, *(t.expected for t in case.then))
        for note in expected.notes
        for seg in parse_note(note).informational
        if informational_reason(seg) is None
    ]
    assert not missing, missing


def test_the_tries_of_a_retried_execution() -> None:
    note = "3 terminal executions observed for this flow, states {RETRIED, RETRIED, FAILED} in any order"
    tries = [_ex(state="RETRIED"), _ex(state="FAILED"), _ex(state="RETRIED")]
    holds(note, Observed(tries[-1], [], chain=tries))
    fails(note, Observed(tries[0], [], chain=tries[:2]))
    fails(note, Observed(tries[0], [], chain=[_ex(state="RETRIED")] * 3))


def test_a_history_counts_the_named_states() -> None:
    pause = _tr("pause", "FAILED")
    pause.histories = [NS(state=s) for s in ("CREATED", "RUNNING", "PAUSED", "RUNNING", "FAILED")]
    holds("pause taskrun history has exactly 1 PAUSED, 2 RUNNING, 1 FAILED entries", Observed(_ex(pause), []))
    fails("pause taskrun history has exactly 1 PAUSED, 1 RUNNING, 1 FAILED entries", Observed(_ex(pause), []))


def test_logs_by_level_and_none_at_all() -> None:
    t0, t1 = _tr("a", id="r0"), _tr("b", id="r1")
    logs = [NS(taskrun_id="r0", level="WARN", message="second thing")]
    obs = Observed(_ex(t0, t1), logs)
    holds("taskrun 0 logs 'second' at WARN", obs)
    fails("taskrun 0 logs 'second' at ERROR", obs)
    holds("taskrun 1 (level TRACE) emits no log entry", obs)
    fails("taskrun 0 emits no log entry", obs)


def test_a_value_path_selects_the_taskrun_in_loops() -> None:
    loop = _tr("loop", id="L")
    outer = _tr("inner", id="I", value="b", parent_id="L")
    leaf = _tr("leaf", id="X", value="1", parent_id="I", outputs={"value": "1"})
    other = _tr("leaf", id="Y", value="2", parent_id="I", outputs={"value": "2"})
    obs = Observed(_ex(loop, outer, leaf, other), [])
    holds("taskrun 'leaf' with value path [b, 1] outputs.value == '1'", obs)
    fails("taskrun 'leaf' with value path [b, 2] outputs.value == '1'", obs)
    fails("taskrun 'leaf' with value path [1] outputs.value == '1'", obs)  # the whole path, as Kestra


def test_the_outputs_map_of_an_execution_by_loop_values() -> None:
    a = _tr("ret", id="A", value="v41", outputs={"value": "return-v41"})
    b = _tr("ret", id="B", value="v42", outputs={"value": "return-v42"})
    note = "execution outputs['ret'].v41.value == 'return-v41', .v42.value == 'return-v42'"
    holds(note, Observed(_ex(a, b), []))
    b.outputs = {"value": "other"}
    fails(note, Observed(_ex(a, b), []))


def test_children_their_state_count_and_labels() -> None:
    sub = _tr("sub", subflow_execution="c1")
    child = _ex(_tr("x"), _tr("y"), id="c1", flow_id="switch", parent={"execution_id": "e1"})
    child.labels = {"system.correlationId": "e1", "k": "v"}
    obs = Observed(_ex(sub), [], children=[child])
    holds("child 'switch' SUCCESS with 2 taskruns", obs)
    fails("child 'switch' FAILED with 2 taskruns", obs)
    fails("child 'switch' SUCCESS with 3 taskruns", obs)
    holds("child labels exactly 2: system.correlationId=<parent id>, k=v", obs)
    fails("child labels exactly 2: system.correlationId=<parent id>, k=w", obs)
    holds("subflow label system.correlationId == parent execution id", obs)


def test_mapping_outputs_and_absent_keys() -> None:
    items = _tr("each_items", outputs={"numberOfBatches": 2, "iterations": {"RUNNING": 0, "SUCCESS": 2}})
    obs = Observed(_ex(_tr("each"), _tr("each_split"), items), [])
    holds("taskrun index 2 outputs numberOfBatches == 2, iterations {CREATED: absent, SUCCESS: 2}", obs)
    fails("taskrun index 2 outputs numberOfBatches == 2, iterations {CREATED: 0, SUCCESS: 2}", obs)


def test_disabled_tasks_have_no_taskrun() -> None:
    flow = NS(
        tasks=[NS(id="on", disabled=False, branches={}), NS(id="off", disabled=True, branches={})],
        errors=(),
        finally_=(),
        after_execution=(),
    )
    holds("disabled tasks produce no taskrun", Observed(_ex(_tr("on")), [], flow=flow))
    fails("disabled tasks produce no taskrun", Observed(_ex(_tr("on"), _tr("off")), [], flow=flow))


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("kestra:///a/<id>/tasks/s/<x>.txt", "kestra:///a/E1/tasks/s/T1/123.txt", True),
        ("kestra:///a/<id>/tasks/s/<x>.txt", "kestra:///b/E1/tasks/s/T1/123.txt", False),
    ],
)
def test_a_placeholder_matches_any_text(pattern: str, text: str, expected: bool) -> None:
    tr = _tr("t", outputs={"uri": text})
    verdict = _verdicts(f"taskrun 0 outputs.uri matches {pattern}", Observed(_ex(tr), []))
    assert (verdict == [None]) is expected


def test_a_triggered_execution_names_its_upstream() -> None:
    trigger = {"variables": {"executionId": "up1", "namespace": "ns.t", "flowId": "trigger-flow-b"}}
    tr = _tr("first", outputs={"value": "childs: from parents: up1"})
    obs = Observed(_ex(tr, trigger=trigger), [], upstream={"trigger-flow-a": "up0", "trigger-flow-b": "up1"})
    holds(
        "trigger.variables: executionId == flow-b execution id, namespace == 'ns.t', "
        "flowId == 'trigger-flow-b'",
        obs,
    )
    holds("trigger.variables: executionId == upstream id, namespace == 'ns.t'", obs)
    fails("trigger.variables: executionId == flow-a execution id", obs)
    fails("trigger.variables: namespace == 'other'", obs)
    holds("first taskrun outputs.value == 'childs: from parents: <trigger-flow-b execution id>'", obs)
    fails("first taskrun outputs.value == 'childs: from parents: <trigger-flow-a execution id>'", obs)


def test_two_executions_of_a_concurrency_case() -> None:
    def ex(*states: str) -> Any:
        return _ex(state=states[-1], histories=[NS(state=s) for s in states])

    one = ex("CREATED", "RUNNING", "SUCCESS")
    queued = ex("CREATED", "QUEUED", "RUNNING", "PAUSED", "RUNNING", "SUCCESS")
    obs = Observed(one, [], executions={"1": one, "2": queued})
    holds("execution 1 ends SUCCESS", obs)
    holds("execution 2 goes CREATED -> QUEUED -> RUNNING -> SUCCESS", obs)
    fails("execution 2 history is CREATED -> QUEUED -> RUNNING -> SUCCESS", obs)
    fails("execution 2 goes CREATED -> RUNNING -> SUCCESS", obs)
    cancelled = Observed(one, [], executions={"1": one, "2": ex("CREATED", "RUNNING", "CANCELLED")})
    fails("start execution 1 (RUNNING), then execution 2: execution 2 is CANCELLED immediately", cancelled)
    at_once = Observed(one, [], executions={"1": one, "2": ex("CREATED", "CANCELLED")})
    holds("start execution 1 (RUNNING), then execution 2: execution 2 is CANCELLED immediately", at_once)
    fails("execution 2 ends SUCCESS", Observed(one, []))  # the case did not run two


def test_notes_about_a_later_run_of_the_flow() -> None:
    parsed = parse_note("run 2 (same input): outputs of 'get' data.value == '2'")
    assert parsed.run == 2 and len(parsed.checks) == 1 and not parsed.informational
    assert parse_note("outputs of 'get' data.value == '2'").run == 1
    obs = Observed(_ex(_tr("exists", outputs={"uris": {"hello.txt": "kestra:///x"}}), _tr("b"), _tr("c")), [])
    holds("SUCCESS, 3 taskruns, outputs of 'exists' uris contains 'hello.txt' (restored from cache)", obs)
    fails("SUCCESS, 2 taskruns, outputs of 'exists' uris contains 'hello.txt'", obs)
    fails("FAILED, 3 taskruns, outputs of 'exists' uris contains 'hello.txt'", obs)
    holds("outputs of 'exists' == {uris: {hello.txt: 'kestra:///x'}}", obs)
    fails("outputs of 'exists' == {uris: {}}", obs)
