"""The one place a new execution's first event is made.

Whoever starts an execution (a user through the CLI or the API, a trigger, a parent's Subflow task)
decides the flow, the typed inputs, the labels it adds, what triggered it and its id; the rest is
Kestra's rule, the same for all: the flow's labels first, the given ones over them, and
``system.correlationId`` naming the execution that started the chain (the parent's correlation for
a subflow, else the execution itself, unless the caller already gave one). The inputs the flow
declares SECRET are named so that they are masked wherever the execution is shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.core import events as ev
from engine.core.execution import Execution
from engine.core.inputs import secret_input_ids
from engine.core.model import Flow
from engine.core.tree import make_id

CORRELATION_LABEL = "system.correlationId"


def execution_labels(
    flow: Flow, execution_id: str, labels: Mapping[str, str] | None, correlation_id: str | None = None
) -> dict[str, str]:
    """The labels of a new execution: the flow's, overridden by ``labels``, with its correlation id."""
    merged = {**flow.labels, **(labels or {})}
    if correlation_id is not None:
        merged[CORRELATION_LABEL] = correlation_id
    else:
        merged.setdefault(CORRELATION_LABEL, execution_id)
    return merged


def execution_created(
    flow: Flow,
    execution_id: str,
    now: str,
    inputs: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
    *,
    trigger: dict[str, Any] | None = None,
    parent: dict[str, Any] | None = None,
    correlation_id: str | None = None,
    secret_inputs: tuple[str, ...] | None = None,
) -> ev.ExecutionCreated:
    """The ``ExecutionCreated`` of a new execution of ``flow`` (``now``: ISO-8601 UTC).

    ``correlation_id`` (a subflow: its parent's) replaces any given one; ``secret_inputs`` None
    names the flow's SECRET inputs.
    """
    if secret_inputs is None:
        secret_inputs = tuple(sorted(secret_input_ids(flow)))
    return ev.ExecutionCreated(
        date=now,
        execution_id=execution_id,
        namespace=flow.namespace,
        flow_id=flow.id,
        flow_revision=flow.revision,
        inputs=dict(inputs or {}),
        labels=execution_labels(flow, execution_id, labels, correlation_id),
        trigger=trigger,
        parent=parent,
        secret_inputs=secret_inputs,
    )


def retry_id(execution_id: str) -> str:
    """The id of the next try of ``execution_id`` (retry behavior CREATE_NEW_EXECUTION): derived,
    so deciding the failed step twice can never create two."""
    return make_id(execution_id, "retry")


def retry_created(previous: Execution, flow: Flow, execution_id: str, at: str) -> ev.RetryExecutionCreated:
    """The next try of ``previous`` (retry behavior CREATE_NEW_EXECUTION), created at ``at``.

    As Kestra's replay from the start: the same flow revision, inputs, labels (its correlation id
    included) and trigger; the chain's first execution as its original; the try counted on.
    """
    return ev.RetryExecutionCreated(
        date=at,
        execution_id=execution_id,
        namespace=previous.namespace,
        flow_id=previous.flow_id,
        flow_revision=previous.flow_revision,
        inputs=dict(previous.inputs),
        labels=execution_labels(
            flow, execution_id, previous.labels, previous.labels.get(CORRELATION_LABEL, previous.id)
        ),
        trigger=previous.trigger,
        parent=previous.parent,
        original_id=previous.original_id or previous.id,
        secret_inputs=previous.secret_inputs,
        attempt_number=previous.attempt_number + 1,
        original_created=previous.chain_created,
        retry_of=previous.id,
        first_try=previous.first_try or previous.id,
    )
