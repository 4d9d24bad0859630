"""engine.core.factory: the ExecutionCreated of every new execution (Kestra's labels rule)."""

from __future__ import annotations

import msgspec

from engine.core import events as ev
from engine.core.execution import evolve
from engine.core.factory import CORRELATION_LABEL, execution_created, execution_labels
from engine.core.model import Flow, Input

NOW = "2026-01-02T03:04:05.000000Z"


def flow(**kw: object) -> Flow:
    base = Flow(id="f", namespace="company.team", tasks=(), revision=3, labels={"team": "a", "env": "dev"})
    return msgspec.structs.replace(base, **kw)


def test_labels_flow_first_given_over_them_correlation_is_the_execution() -> None:
    labels = execution_labels(flow(), "e1", {"env": "prod", "who": "me"})
    assert labels == {"team": "a", "env": "prod", "who": "me", CORRELATION_LABEL: "e1"}


def test_a_given_correlation_label_is_kept_a_parent_correlation_wins() -> None:
    given = {CORRELATION_LABEL: "from-the-caller"}
    assert execution_labels(flow(), "e1", given)[CORRELATION_LABEL] == "from-the-caller"
    assert execution_labels(flow(), "e1", given, correlation_id="parent")[CORRELATION_LABEL] == "parent"


def test_created_event_names_the_flow_revision_inputs_trigger_and_secret_inputs() -> None:
    f = flow(inputs=(Input(id="pw", type="SECRET"), Input(id="n", type="INT")))
    trigger = {"id": "t", "type": "io.kestra.plugin.core.trigger.Schedule", "variables": {}}
    created = execution_created(f, "e1", NOW, {"n": 1, "pw": "x"}, {"who": "me"}, trigger=trigger)
    assert created == ev.ExecutionCreated(
        date=NOW,
        execution_id="e1",
        namespace="company.team",
        flow_id="f",
        flow_revision=3,
        inputs={"n": 1, "pw": "x"},
        labels={"team": "a", "env": "dev", "who": "me", CORRELATION_LABEL: "e1"},
        trigger=trigger,
        secret_inputs=("pw",),
    )
    state = evolve(None, created)
    assert state is not None and state.id == "e1" and state.labels[CORRELATION_LABEL] == "e1"


def test_subflow_creation_carries_its_parent_and_its_correlation() -> None:
    parent = {"execution_id": "p", "taskrun_id": "tr", "namespace": "company.team", "flow_id": "up"}
    created = execution_created(flow(), "child", NOW, parent=parent, correlation_id="root", secret_inputs=())
    assert created.parent == parent and created.labels[CORRELATION_LABEL] == "root"
    assert created.secret_inputs == () and created.inputs == {} and created.trigger is None
