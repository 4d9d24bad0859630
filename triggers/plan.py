"""What every trigger hands over to start an execution: a :class:`Plan`, and how it is started.

Below the trigger service and the backfill (both plan Schedule slots with :func:`slot_plan`), so
neither imports the other. A plan is started through the :class:`ExecutionStarter` port (the
runtime), which makes the ``ExecutionCreated`` with ``engine.core.factory``; :class:`TriggerRuntime`
is all the trigger role uses of the runtime.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from engine.core.errors import EngineError
from engine.core.execution import Execution
from engine.core.model import Flow, Trigger
from engine.inputs import resolve_inputs
from engine.logs import get_logger
from eventstore.store import Store
from triggers import conditions as C
from triggers.schedule import ScheduleSpec, iso, trigger_labels

log = get_logger("triggers")


@dataclass
class Plan:
    """An execution to create."""

    flow: Flow
    execution_id: str
    inputs: dict[str, Any]
    labels: dict[str, str]
    trigger: dict[str, Any]


class ExecutionStarter(Protocol):
    """Starts executions: the one way a trigger creates one (``engine.runtime.Starter``). A trigger
    always names the execution (so that a second send starts nothing) and says what started it."""

    async def create_execution(
        self,
        flow: Flow,
        inputs: dict[str, Any],
        labels: dict[str, str],
        *,
        execution_id: str,
        trigger: dict[str, Any],
        fresh: bool = False,
        keyed: bool = False,
    ) -> str: ...


class FlowSource(Protocol):
    """The deployed flows by (namespace, id, revision; None: the latest)."""

    async def get(self, namespace: str, flow_id: str, revision: int | None = None) -> Flow: ...


class TriggerRuntime(ExecutionStarter, Protocol):
    """What the trigger role needs from the process wiring (``engine.runtime.Runtime``)."""

    @property
    def store(self) -> Store: ...

    @property
    def flows(self) -> FlowSource: ...

    @property
    def expressions(self) -> Any: ...

    async def load_execution(self, execution_id: str) -> Execution | None: ...


async def start_plan(
    starter: ExecutionStarter, plan: Plan, *, fresh: bool = False, keyed: bool = False
) -> str:
    """Send the plan's creation; returns its execution id (a second send of the same id starts nothing).

    ``fresh``: the plan's id is random, made for it; ``keyed``: it derives from an event that may come
    again (``engine.runtime.Starter.create_execution``)."""
    return await starter.create_execution(
        plan.flow,
        plan.inputs,
        plan.labels,
        execution_id=plan.execution_id,
        trigger=plan.trigger,
        fresh=fresh,
        keyed=keyed,
    )


def trigger_record(trigger: Trigger, variables: dict[str, Any]) -> dict[str, Any]:
    """What ExecutionCreated.trigger carries: Kestra's {id, type, variables}.

    The variables are also copied at the top level so ``{{ trigger.executionId }}`` renders while
    the execution context exposes the whole record as ``trigger`` (see /tmp/triggers-requests.md).
    """
    return {**variables, "id": trigger.id, "type": trigger.type, "variables": variables}


def label_strings(labels: dict[str, Any]) -> dict[str, str]:
    """Rendered trigger labels as execution labels (a null value sets no label)."""
    return {str(k): str(v) for k, v in labels.items() if v is not None}


def flow_variables(flow: Flow) -> dict[str, Any]:
    """``flow.*`` as a trigger's expressions see it."""
    return {"id": flow.id, "namespace": flow.namespace, "revision": flow.revision}


def event_plan(
    flow: Flow, trigger: Trigger, execution_id: str, variables: dict[str, Any], expressions: Any
) -> Plan:
    """The execution of a realtime or polling trigger's event: the flow's default inputs."""
    return Plan(
        flow=flow,
        execution_id=execution_id,
        inputs=resolve_inputs(flow, {}, expressions.render),
        labels=label_strings(trigger_labels(trigger.props.get("labels"))),
        trigger=trigger_record(trigger, variables),
    )


async def slot_plan(
    expressions: Any,
    flow: Flow,
    spec: ScheduleSpec,
    slot: datetime,
    extra_inputs: dict[str, Any] | None = None,
    extra_labels: dict[str, str] | None = None,
    *,
    strict: bool = False,
) -> Plan | None:
    """The execution of one Schedule slot, or None when the schedule's conditions say no.

    Invalid inputs: None (logged), or with ``strict`` the error is raised.
    """
    trigger = next(t for t in flow.triggers if t.id == spec.trigger_id)
    tvars = spec.variables(slot)
    variables = {"flow": flow_variables(flow), "trigger": tvars, "schedule": tvars}
    ctx = C.Context(variables=variables, flow_namespace=flow.namespace, flow_id=flow.id)
    if spec.conditions and not await C.all_true(list(spec.conditions), ctx, expressions):
        return None
    try:
        inputs = await expressions.render_value_async(spec.inputs, variables)
        labels = await expressions.render_value_async(trigger_labels(spec.labels), variables)
        typed = resolve_inputs(flow, {**inputs, **(extra_inputs or {})}, expressions.render)
    except EngineError as exc:
        if strict:
            raise
        log.warning("triggers.slot_invalid_inputs", trigger=spec.where, slot=iso(slot), error=str(exc))
        return None
    return Plan(
        flow=flow,
        execution_id=spec.execution_id(slot),
        inputs=typed,
        labels={**label_strings(labels), **(extra_labels or {})},
        trigger=trigger_record(trigger, tvars),
    )
