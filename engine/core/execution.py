"""An execution's state as the fold of its events: ``evolve(state, event) -> state``.

``evolve`` is total and deterministic: no I/O, no clock, no randomness. It updates the state
it is given and returns it (folding copies nothing: a long ForEach stays linear); callers
that need the previous state keep a ``clone``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from engine.core import events as ev
from engine.core.states import TERMINAL


class History(msgspec.Struct, array_like=True):
    state: str
    date: str


class Attempt(msgspec.Struct):
    number: int
    state: str
    histories: list[History]
    worker_id: str = ""
    metrics: list[ev.Metric] = msgspec.field(default_factory=list)


class TaskRun(msgspec.Struct):
    id: str
    task_id: str
    parent_id: str | None
    value: str | None
    branch: str
    runnable: bool
    state: str
    histories: list[History]
    iteration: int | None = None
    attempts: list[Attempt] = msgspec.field(default_factory=list)
    outputs: dict[str, Any] = msgspec.field(default_factory=dict)
    dispatched: int = 0  # highest attempt number sent to a worker
    items: list[str] | None = None  # a loop's values, or the chosen branch of Switch/If
    subflow_execution: str | None = None
    batches: dict[str, str] = msgspec.field(default_factory=dict)
    retry_at: str | None = None  # ForEachItem: ended child -> state

    @property
    def current_attempt(self) -> int:
        return self.attempts[-1].number if self.attempts else 0


class Execution(msgspec.Struct):
    id: str
    namespace: str
    flow_id: str
    flow_revision: int
    state: str
    histories: list[History]
    inputs: dict[str, Any]
    labels: dict[str, str]
    trigger: dict[str, Any] | None = None
    parent: dict[str, Any] | None = None
    original_id: str | None = None
    outputs: dict[str, Any] | None = None
    taskruns: dict[str, TaskRun] = msgspec.field(default_factory=dict)
    kill_requested: bool = False
    exit_state: str | None = None
    restarts: int = 0
    deleted: bool = False
    secret_inputs: tuple[str, ...] = ()
    attempt_number: int = 1  # the try of a CREATE_NEW_EXECUTION retry chain (Kestra's metadata)
    original_created: str | None = None  # when the chain's first try was created (None: this one)
    first_try: str | None = None  # the chain's first execution (None: this one)
    seq: int = 0  # stream sequence of the last applied step (set by the shell, not by events)

    @property
    def start_date(self) -> str:
        return self.histories[0].date

    @property
    def chain_created(self) -> str:
        """When the first try of this execution's retry chain was created."""
        return self.original_created or self.histories[0].date

    @property
    def end_date(self) -> str | None:
        return self.histories[-1].date if self.is_terminal else None

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL  # a StrEnum: its members hash and compare as their names


_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(Execution)


def clone(state: Execution) -> Execution:
    return _dec.decode(_enc.encode(state))


def to_bytes(state: Execution) -> bytes:
    return _enc.encode(state)


def from_bytes(data: bytes) -> Execution:
    return _dec.decode(data)


def evolve(state: Execution | None, event: ev.Event) -> Execution | None:
    """Apply one event.

    Events that do not fit the state (a duplicate create, an unknown taskrun) change nothing.
    """
    if isinstance(event, ev.ExecutionCreated):  # a RetryExecutionCreated too
        return state if state is not None else _created(event)
    if state is None:
        return None
    # One lookup by the event's exact type, not a chain of isinstance: evolve runs about six times
    # per taskrun, and the chain cost nine calls each. No event type is subclassed but the creation.
    kind = type(event)
    apply = _ON_EXECUTION.get(kind)
    if apply is not None:
        apply(state, event)
        return state
    on_taskrun = _ON_TASKRUN.get(kind)
    if on_taskrun is not None:
        tr = state.taskruns.get(event.taskrun_id)  # type: ignore[union-attr]
        if tr is not None:
            on_taskrun(tr, event)
    return state


def _created(event: ev.ExecutionCreated) -> Execution:
    retry = event if isinstance(event, ev.RetryExecutionCreated) else None
    return Execution(
        id=event.execution_id,
        namespace=event.namespace,
        flow_id=event.flow_id,
        flow_revision=event.flow_revision,
        state="CREATED",
        histories=[History("CREATED", event.date)],
        inputs=dict(event.inputs),
        labels=dict(event.labels),
        trigger=event.trigger,
        parent=event.parent,
        original_id=event.original_id,
        secret_inputs=event.secret_inputs,
        attempt_number=retry.attempt_number if retry else 1,
        original_created=retry.original_created if retry else None,
        first_try=retry.first_try if retry else None,
    )


def _state_changed(state: Execution, event: ev.ExecutionStateChanged) -> None:
    if state.state != event.state:
        state.state = event.state
        state.histories.append(History(event.state, event.date))


def _outputs(state: Execution, event: ev.ExecutionOutputs) -> None:
    state.outputs = dict(event.outputs)


def _labels(state: Execution, event: ev.LabelsSet) -> None:
    state.labels = {**state.labels, **event.labels}


def _kill(state: Execution, event: ev.KillRequested) -> None:
    state.kill_requested = True


def _deleted(state: Execution, event: ev.ExecutionDeleted) -> None:
    state.deleted = True


def _exit(state: Execution, event: ev.ExitRequested) -> None:
    state.exit_state = event.state


def _restarted(state: Execution, event: ev.ExecutionRestarted) -> None:
    for tr_id in event.removed:
        state.taskruns.pop(tr_id, None)
    for tr_id, new_state in event.states.items():
        tr = state.taskruns.get(tr_id)
        if tr is not None and tr.state != new_state:
            tr.state = new_state
            tr.histories.append(History(new_state, event.date))
    state.state = "RESTARTED"
    state.histories.append(History("RESTARTED", event.date))
    state.restarts += 1
    state.outputs = None
    state.exit_state = None
    state.kill_requested = False


def _copied(state: Execution, event: ev.TaskRunsCopied) -> None:
    state.histories = [History(s, d) for s, d in event.histories] + state.histories[1:]
    for raw in event.taskruns:
        tr = msgspec.convert(raw, TaskRun)
        state.taskruns[tr.id] = tr


def _taskrun_created(state: Execution, event: ev.TaskRunCreated) -> None:
    if event.taskrun_id not in state.taskruns:
        state.taskruns[event.taskrun_id] = TaskRun(
            id=event.taskrun_id,
            task_id=event.task_id,
            parent_id=event.parent_id,
            value=event.value,
            branch=event.branch,
            runnable=event.runnable,
            iteration=event.iteration,
            state="CREATED",
            histories=[History("CREATED", event.date)],
        )


def _tr_state(tr: TaskRun, event: ev.TaskRunStateChanged) -> None:
    if tr.state != event.state:
        tr.state = event.state
        tr.histories.append(History(event.state, event.date))


def _tr_outputs(tr: TaskRun, event: ev.TaskRunOutputs) -> None:
    tr.outputs = {**tr.outputs, **event.outputs}


def _dispatched(tr: TaskRun, event: ev.TaskRunDispatched) -> None:
    tr.dispatched = max(tr.dispatched, event.attempt)


def _attempt_started(tr: TaskRun, event: ev.AttemptStarted) -> None:
    if event.attempt > tr.current_attempt:
        tr.attempts.append(
            Attempt(event.attempt, "RUNNING", [History("RUNNING", event.date)], event.worker_id)
        )


def _attempt_ended(tr: TaskRun, event: ev.AttemptEnded) -> None:
    if event.attempt > tr.current_attempt:  # a result whose start we never saw
        tr.attempts.append(
            Attempt(event.attempt, "RUNNING", [History("RUNNING", event.started or event.date)])
        )
    attempt = tr.attempts[-1]
    if attempt.number == event.attempt and attempt.state == "RUNNING":
        attempt.state = event.state
        attempt.histories.append(History(event.state, event.date))
        if event.metrics:
            attempt.metrics = list(event.metrics)
        if event.final and event.outputs:
            tr.outputs = {**tr.outputs, **event.outputs}


def _subflow_started(tr: TaskRun, event: ev.SubflowStarted) -> None:
    tr.subflow_execution = event.execution_id


def _retry_scheduled(tr: TaskRun, event: ev.RetryScheduled) -> None:
    tr.retry_at = event.at


def _batch_ended(tr: TaskRun, event: ev.BatchEnded) -> None:
    tr.batches[event.execution_id] = event.state


def _expanded(tr: TaskRun, event: ev.TaskRunExpanded) -> None:
    tr.items = list(event.items)


_ON_EXECUTION: dict[type, Callable[[Execution, Any], None]] = {
    ev.ExecutionStateChanged: _state_changed,
    ev.ExecutionOutputs: _outputs,
    ev.LabelsSet: _labels,
    ev.KillRequested: _kill,
    ev.ExecutionDeleted: _deleted,
    ev.ExitRequested: _exit,
    ev.ExecutionRestarted: _restarted,
    ev.TaskRunsCopied: _copied,
    ev.TaskRunCreated: _taskrun_created,
}
_ON_TASKRUN: dict[type, Callable[[TaskRun, Any], None]] = {
    ev.TaskRunStateChanged: _tr_state,
    ev.TaskRunOutputs: _tr_outputs,
    ev.TaskRunDispatched: _dispatched,
    ev.AttemptStarted: _attempt_started,
    ev.AttemptEnded: _attempt_ended,
    ev.SubflowStarted: _subflow_started,
    ev.RetryScheduled: _retry_scheduled,
    ev.BatchEnded: _batch_ended,
    ev.TaskRunExpanded: _expanded,
}
