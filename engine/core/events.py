"""The event schema: every fact about an execution, versioned, as a msgspec tagged union.

One message on the log carries one ``Envelope``: every event one fold step produced, so a
step is atomic (all or nothing) and costs one append. Fields are only ever added with a
default; renaming or removing one needs a new tag (and an upcaster in ``decode``).
"""

from __future__ import annotations

from typing import Any

import msgspec

SCHEMA_VERSION = 1


class LogLine(msgspec.Struct, frozen=True, array_like=True):
    """One line a task logged (``date``: ISO-8601 UTC, the format every event's date has)."""

    date: str
    level: str
    message: str
    taskrun_id: str | None = None
    task_id: str | None = None
    attempt: int | None = None


class _Event(msgspec.Struct, frozen=True, tag_field="t", forbid_unknown_fields=False):
    date: str  # ISO-8601 UTC, e.g. 2026-11-26T08:40:00.123456Z


class ExecutionCreated(_Event, tag="exec.created", frozen=True):
    execution_id: str
    namespace: str
    flow_id: str
    flow_revision: int
    inputs: dict[str, Any] = {}
    labels: dict[str, str] = {}
    trigger: dict[str, Any] | None = None
    parent: dict[str, Any] | None = None  # {execution_id, taskrun_id, namespace, flow_id} for subflows
    original_id: str | None = None
    secret_inputs: tuple[str, ...] = ()


class RetryExecutionCreated(ExecutionCreated, tag="exec.created.retry", frozen=True):
    """The next try of an execution whose retry policy says CREATE_NEW_EXECUTION (Kestra's execution
    metadata): ``attempt_number`` counts the tries of the chain from 1, ``original_created`` is when
    the first try was created (``maxDuration`` counts from it), ``retry_of`` the try before and
    ``first_try`` the chain's first execution (a parent waits for that id: the last try's end is told
    under it)."""

    attempt_number: int = 1
    original_created: str | None = None
    retry_of: str | None = None
    first_try: str | None = None


class ExecutionStateChanged(_Event, tag="exec.state", frozen=True):
    state: str
    reason: str | None = None


class ExecutionOutputs(_Event, tag="exec.outputs", frozen=True):
    outputs: dict[str, Any]


class LabelsSet(_Event, tag="exec.labels", frozen=True):
    labels: dict[str, str]


class ExecutionDeleted(_Event, tag="exec.deleted", frozen=True):
    """The execution was deleted: projections drop it; the history itself stays (the log is append-only)."""

    reason: str | None = None


class ExitRequested(_Event, tag="exec.exit", frozen=True):
    """An Exit task asked to end the execution with ``state`` once what runs has stopped."""

    state: str


class KillRequested(_Event, tag="exec.kill", frozen=True):
    reason: str | None = None


class TaskRunCreated(_Event, tag="tr.created", frozen=True):
    taskrun_id: str
    task_id: str
    parent_id: str | None = None
    value: str | None = None
    branch: str = "tasks"
    iteration: int | None = None
    runnable: bool = True


class TaskRunStateChanged(_Event, tag="tr.state", frozen=True):
    taskrun_id: str
    state: str
    reason: str | None = None


class TaskRunOutputs(_Event, tag="tr.outputs", frozen=True):
    taskrun_id: str
    outputs: dict[str, Any]


class AttemptStarted(_Event, tag="tr.attempt.started", frozen=True):
    taskrun_id: str
    attempt: int
    worker_id: str = ""


class Metric(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """One metric an attempt recorded (Kestra's taskrun metrics): a ``counter`` (its value summed over
    the attempt), a ``timer`` (``value`` in seconds, summed) or a ``gauge`` (its last value). ``date`` is
    when it was first recorded."""

    type: str
    name: str
    value: float
    tags: dict[str, str] = {}
    date: str = ""


class AttemptEnded(_Event, tag="tr.attempt.ended", frozen=True):
    """One attempt finished. ``final`` False means the worker retries (the taskrun goes on).
    ``metrics``: what the attempt recorded (a script's ``::{"metrics": [...]}::``, a task's context)."""

    taskrun_id: str
    attempt: int
    state: str
    outputs: dict[str, Any] = {}
    final: bool = True
    error: str | None = None
    started: str | None = None
    metrics: tuple[Metric, ...] = ()
    # Inside a WorkingDirectory with `outputFiles`: the files they matched after this attempt
    # (name -> kestra:// URI); they become that WorkingDirectory taskrun's `outputFiles` output.
    workdir_outputs: dict[str, str] | None = None
    # The lines of a short attempt, stored with its end: one append for both (the LOGS stream has
    # the lines of longer attempts, see ``workers.lines``). Never read by the fold.
    logs: tuple[LogLine, ...] = ()


class TaskRunDispatched(_Event, tag="tr.dispatched", frozen=True):
    taskrun_id: str
    attempt: int


class TaskRunExpanded(_Event, tag="tr.expanded", frozen=True):
    """A flowable evaluated what it runs: a loop's values, or the chosen branch of Switch/If."""

    taskrun_id: str
    items: list[str]


class ExecutionRestarted(_Event, tag="exec.restarted", frozen=True):
    """Failed (and paused) taskruns run again in the same execution: ``states`` gives each affected
    taskrun its new state (RESTARTED for tasks, RUNNING for their flowable ancestors); ``removed``
    taskruns (error branches) are dropped."""

    states: dict[str, str]
    removed: list[str] = []


class TaskRunsCopied(_Event, tag="exec.copied", frozen=True):
    """A replay starts from a copy of its source's history (taskruns as the fold stores them)."""

    source_execution_id: str
    histories: list[list[str]]
    taskruns: list[dict[str, Any]]


class BatchEnded(_Event, tag="tr.batch.ended", frozen=True):
    """One of a ForEachItem's subflow executions ended."""

    taskrun_id: str
    execution_id: str
    state: str


class RetryScheduled(_Event, tag="tr.retry", frozen=True):
    """A taskrun the executor retries itself (a Subflow) starts its next attempt at ``at``."""

    taskrun_id: str
    at: str


class SubflowStarted(_Event, tag="tr.subflow", frozen=True):
    taskrun_id: str
    execution_id: str


Event = (
    ExecutionCreated
    | RetryExecutionCreated
    | ExecutionStateChanged
    | ExecutionOutputs
    | LabelsSet
    | KillRequested
    | ExecutionDeleted
    | ExitRequested
    | TaskRunCreated
    | TaskRunStateChanged
    | TaskRunOutputs
    | AttemptStarted
    | AttemptEnded
    | TaskRunDispatched
    | TaskRunExpanded
    | SubflowStarted
    | RetryScheduled
    | BatchEnded
    | ExecutionRestarted
    | TaskRunsCopied
)


class Envelope(msgspec.Struct, frozen=True):
    v: int
    events: list[Event]


_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(Envelope)


def encode(events: list[Event]) -> bytes:
    return _enc.encode(Envelope(SCHEMA_VERSION, events))


def decode(data: bytes) -> list[Event]:
    env = _dec.decode(data)
    return env.events


class SubflowEnded(_Event, tag="in.subflow.ended", frozen=True):
    """Input only: a child execution started by a Subflow task reached a terminal state."""

    taskrun_id: str
    execution_id: str
    state: str
    outputs: dict[str, Any] = {}


class Resume(_Event, tag="in.resume", frozen=True):
    """Input only: resume a PAUSED execution (with onResume inputs)."""

    inputs: dict[str, Any] = {}


# What may arrive on an execution's inbox (commands, worker reports, child notifications).
class Wake(_Event, tag="in.wake", frozen=True):
    """Input only, from a durable timer: move a waiting taskrun on (a Pause's delay or timeout)."""

    taskrun_id: str
    state: str


class Admitted(_Event, tag="in.admitted", frozen=True):
    """Input only: the flow's concurrency limit let this execution start (RUNNING), queued it (QUEUED),
    or refused it (CANCELLED / FAILED)."""

    state: str


class DeleteRequested(_Event, tag="in.delete", frozen=True):
    """Input only: delete a finished execution (an ExecutionDeleted event is appended)."""


class SlaCheck(_Event, tag="in.sla", frozen=True):
    """Input only, from a durable timer: a MAX_DURATION SLA's deadline has come."""

    sla_id: str


class AttemptLost(_Event, tag="in.lost", frozen=True):
    """Input only: the worker that held this attempt stopped heartbeating, or the attempt's end never
    arrived (``reason`` says which: ``engine.lost``); the task goes elsewhere."""

    taskrun_id: str
    attempt: int
    worker_id: str
    reason: str = ""


class Restart(_Event, tag="in.restart", frozen=True):
    """Input only: run the failed taskruns of a finished execution again, in the same execution."""


class ReplayRequested(_Event, tag="in.replay", frozen=True):
    """Input only, sent to the NEW execution's inbox: replay ``source_execution_id`` from ``taskrun_id``
    (everything before it is kept; None = from the start, same inputs)."""

    source_execution_id: str
    taskrun_id: str | None = None
    revision: int | None = None


Input = (
    ExecutionCreated
    | RetryExecutionCreated
    | KillRequested
    | AttemptStarted
    | AttemptEnded
    | SubflowEnded
    | Resume
    | Wake
    | Restart
    | ReplayRequested
    | Admitted
    | DeleteRequested
    | SlaCheck
    | AttemptLost
)


class InputEnvelope(msgspec.Struct, frozen=True):
    v: int
    input: Input


_in_dec = msgspec.msgpack.Decoder(InputEnvelope)


def encode_input(item: Input) -> bytes:
    return _enc.encode(InputEnvelope(SCHEMA_VERSION, item))


def decode_input(data: bytes) -> Input:
    return _in_dec.decode(data).input


def lines_in(events: list[Event]) -> list[LogLine]:
    """The log lines stored inside one step's events (the attempts' ends that carry theirs)."""
    return [line for e in events if type(e) is AttemptEnded for line in e.logs]


def in_order(*sources: list[LogLine]) -> list[LogLine]:
    """An execution's lines from several places (the LOGS stream, its history) in one order: by
    date, each source's own order kept among lines of the same date."""
    if sum(1 for lines in sources if lines) <= 1:
        return [line for lines in sources for line in lines]
    return sorted((line for lines in sources for line in lines), key=lambda line: line.date)
