"""``accept``: which events one input (a command, a worker report, a timer) causes. Pure.

What is stale or duplicated yields no event: a late result of an old attempt, a second create,
a resume of an execution that is not paused.
"""

from __future__ import annotations

from datetime import timedelta

from engine.core import events as ev
from engine.core.dates import parse as parse_date
from engine.core.errors import EngineError
from engine.core.execution import Execution, TaskRun
from engine.core.history import restart_events
from engine.core.model import SLA, Flow, Task
from engine.core.retry import attempt_delay, in_place
from engine.core.states import TERMINAL, State, worst
from engine.core.tree import EXIT_OUTPUT, index_tasks, is_truthy

WORKING_DIRECTORY = "io.kestra.plugin.core.flow.WorkingDirectory"

# ---------------------------------------------------------------------------------------------
# accept: turn one input into events


def accept(state: Execution | None, flow: Flow | None, item: ev.Input, now: str) -> list[ev.Event]:
    """Validate an input against the state; what is stale or duplicated yields no event."""
    if isinstance(item, ev.ExecutionCreated):
        return [] if state is not None else [item]
    if isinstance(item, ev.Admitted):
        if state is None or state.state not in (State.CREATED, State.QUEUED) or item.state == state.state:
            return []
        return [ev.ExecutionStateChanged(date=now, state=item.state, reason="concurrency limit")]
    if isinstance(item, ev.Restart):
        if state is None or flow is None:
            return []
        try:
            return restart_events(state, flow, now)
        except EngineError:
            return []  # the caller checked; a stale or repeated restart changes nothing
    if isinstance(item, ev.DeleteRequested):
        if state is None or not state.is_terminal or state.deleted:
            return []
        return [ev.ExecutionDeleted(date=now, reason="deleted")]
    if state is None or state.is_terminal:
        return []
    if isinstance(item, ev.SlaCheck):
        sla = next((s for s in (flow.sla if flow else ()) if s.id == item.sla_id), None)
        return [] if sla is None or state.exit_state is not None else _sla_violated(sla, now)
    if isinstance(item, ev.KillRequested):
        return [] if state.kill_requested else [ev.KillRequested(date=now, reason=item.reason)]
    if isinstance(item, ev.Resume):
        paused = [tr for tr in state.taskruns.values() if tr.state == State.PAUSED]
        resumed: list[ev.Event] = []
        for waiting in paused:
            if item.inputs:
                resumed.append(
                    ev.TaskRunOutputs(
                        date=now, taskrun_id=waiting.id, outputs={"onResume": dict(item.inputs)}
                    )
                )
            resumed.append(
                ev.TaskRunStateChanged(date=now, taskrun_id=waiting.id, state=State.RUNNING, reason="resumed")
            )
        return resumed
    if isinstance(item, ev.Wake):
        woken = state.taskruns.get(item.taskrun_id)
        if woken is None or woken.state not in (State.PAUSED, State.RETRYING):
            return []  # resumed (or ended) before the timer fired
        return [
            ev.TaskRunStateChanged(date=now, taskrun_id=woken.id, state=State(item.state), reason="timer")
        ]
    tr = state.taskruns.get(getattr(item, "taskrun_id", ""))
    if tr is None or tr.state in TERMINAL:
        return []
    if isinstance(item, ev.AttemptStarted):
        if not _next_attempt(tr, item.attempt):
            return []
        out: list[ev.Event] = [item]
        if tr.state != State.RUNNING:
            out.append(ev.TaskRunStateChanged(date=item.date, taskrun_id=tr.id, state=State.RUNNING))
        return out
    if isinstance(item, ev.AttemptEnded):
        return _accept_result(state, flow, tr, item)
    if isinstance(item, ev.AttemptLost):
        current = tr.attempts[-1] if tr.attempts else None
        if current is None or current.number != item.attempt or current.state != State.RUNNING:
            return []  # that attempt already ended: nothing was lost
        if current.worker_id and current.worker_id != item.worker_id:
            return []
        reason = item.reason or f"worker {item.worker_id} lost"
        return [
            ev.AttemptEnded(
                date=now,
                taskrun_id=tr.id,
                attempt=item.attempt,
                state=State.FAILED,
                final=False,
                error=reason,
            ),
            ev.TaskRunStateChanged(date=now, taskrun_id=tr.id, state=State.RESUBMITTED, reason=reason),
        ]
    if isinstance(item, ev.SubflowEnded) and tr.items and item.execution_id in tr.items:
        return _accept_batch_ended(state, flow, tr, item, now)
    if isinstance(item, ev.SubflowEnded):
        if tr.subflow_execution != item.execution_id:
            return []
        task = index_tasks(flow).get(tr.task_id) if flow else None
        transmit = True
        if task is not None:
            transmit = is_truthy(task.props.get("transmitFailed", True))
        child = State(item.state)
        final = State.SUCCESS
        if child in (State.FAILED, State.KILLED, State.CANCELLED) and transmit:
            final = State.FAILED
        elif child == State.WARNING:
            final = State.WARNING
        outputs = {"executionId": item.execution_id, "state": item.state, "outputs": item.outputs}
        attempt = tr.current_attempt
        if final == State.FAILED and task is not None and flow is not None:
            # CREATE_NEW_EXECUTION: not here, the decider ends the execution RETRIED and starts the next
            retry = in_place(task.retry or flow.retry)
            if retry is not None and attempt >= 1:
                delay = attempt_delay(retry, tr.id, attempt, tr.attempts[0].histories[0].date, now)
                if delay is not None:
                    at = (parse_date(now) + timedelta(seconds=delay)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                    return [
                        ev.TaskRunOutputs(date=now, taskrun_id=tr.id, outputs=outputs),
                        ev.AttemptEnded(
                            date=now, taskrun_id=tr.id, attempt=attempt, state=State.FAILED, final=False
                        ),
                        ev.TaskRunStateChanged(date=now, taskrun_id=tr.id, state=State.RETRYING),
                        ev.RetryScheduled(date=now, taskrun_id=tr.id, at=at),
                    ]
        return [
            ev.TaskRunOutputs(date=now, taskrun_id=tr.id, outputs=outputs),
            ev.AttemptEnded(date=now, taskrun_id=tr.id, attempt=attempt, state=final),
            ev.TaskRunStateChanged(date=now, taskrun_id=tr.id, state=_allow(task, final)),
        ]
    return []


def _accept_batch_ended(
    state: Execution, flow: Flow | None, tr: TaskRun, item: ev.SubflowEnded, now: str
) -> list[ev.Event]:
    """One ForEachItem batch's subflow ended: count it; the last one ends the ``_items`` taskrun."""
    if item.execution_id in tr.batches:
        return []
    ended = {**tr.batches, item.execution_id: item.state}
    counts: dict[str, int] = {"CREATED": len(tr.items or []) - len(ended), "RUNNING": 0}
    for st in ended.values():
        counts[st] = counts.get(st, 0) + 1
    out: list[ev.Event] = [
        ev.BatchEnded(date=now, taskrun_id=tr.id, execution_id=item.execution_id, state=item.state),
        ev.TaskRunOutputs(date=now, taskrun_id=tr.id, outputs={"iterations": counts}),
    ]
    if counts["CREATED"] == 0:
        task = index_tasks(flow).get(tr.task_id) if flow else None
        transmit = is_truthy(task.props.get("transmitFailed", True)) if task else True
        states = [State(s) for s in ended.values()]  # a child's end state comes from outside
        final = worst(states) if transmit else State.SUCCESS
        final = _allow(task, final)
        out.append(ev.AttemptEnded(date=now, taskrun_id=tr.id, attempt=1, state=final))
        out.append(ev.TaskRunStateChanged(date=now, taskrun_id=tr.id, state=final))
    return out


_SLA_STATES = {"FAIL": State.FAILED, "CANCEL": State.CANCELLED}


def _sla_violated(sla: SLA, now: str) -> list[ev.Event]:
    out: list[ev.Event] = []
    if sla.labels:
        out.append(ev.LabelsSet(date=now, labels=dict(sla.labels)))
    if sla.behavior in _SLA_STATES:
        out.append(ev.ExitRequested(date=now, state=_SLA_STATES[sla.behavior]))
    return out


def _allow(task: Task | None, state: State) -> State:
    if task is None:
        return state
    if state == State.FAILED and task.allow_failure:
        state = State.WARNING
    if state == State.WARNING and task.allow_warning:
        state = State.SUCCESS
    return state


def _next_attempt(tr: TaskRun, attempt: int) -> bool:
    """May ``attempt`` start now? The first one once dispatched, the next one while retrying."""
    if attempt != tr.current_attempt + 1:
        return False
    return attempt <= tr.dispatched or tr.state == State.RETRYING


def _accept_result(state: Execution, flow: Flow | None, tr: TaskRun, item: ev.AttemptEnded) -> list[ev.Event]:
    # A result is only for the attempt in flight: a stale attempt's report never completes the taskrun.
    in_flight = (
        bool(tr.attempts) and item.attempt == tr.current_attempt and tr.attempts[-1].state == State.RUNNING
    )
    if not in_flight and not _next_attempt(tr, item.attempt):
        return []
    out: list[ev.Event] = [item]
    if tr.state != State.RUNNING:
        out.append(
            ev.TaskRunStateChanged(date=item.started or item.date, taskrun_id=tr.id, state=State.RUNNING)
        )
    if not item.final:
        # The worker retries: the taskrun waits for the next attempt.
        out.append(ev.TaskRunStateChanged(date=item.date, taskrun_id=tr.id, state=State.RETRYING))
        return out
    task = index_tasks(flow).get(tr.task_id) if flow else None
    result = State(item.state)
    if result == State.SUCCESS and item.attempt > 1 and task and task.retry and task.retry.warning_on_retry:
        result = State.WARNING  # Kestra: `warningOnRetry` marks a success that needed retries
    final = _allow(task, result)
    if item.state == State.KILLED:
        final = State.KILLED
    out.append(ev.TaskRunStateChanged(date=item.date, taskrun_id=tr.id, state=final, reason=item.error))
    labels = item.outputs.get("labels") if task and task.type.endswith("execution.Labels") else None
    if isinstance(labels, dict):
        out.append(ev.LabelsSet(date=item.date, labels={str(k): str(v) for k, v in labels.items()}))
    if item.workdir_outputs is not None:
        out.extend(_workdir_outputs(state, flow, tr, item))
    exit_ = item.outputs.get(EXIT_OUTPUT) if task and task.type.endswith("execution.Exit") else None
    if isinstance(exit_, dict) and final in (State.SUCCESS, State.WARNING):
        target = str(exit_.get("state", "SUCCESS")).replace("CANCELED", "CANCELLED")
        out.append(ev.ExitRequested(date=item.date, state=target))
    return out


def _workdir_outputs(
    state: Execution, flow: Flow | None, tr: TaskRun, item: ev.AttemptEnded
) -> list[ev.Event]:
    """Kestra collects a WorkingDirectory's `outputFiles` after its last task: the worker reports what
    matched after each task, and the latest report is the WorkingDirectory taskrun's output."""
    tasks = index_tasks(flow) if flow else {}
    node = state.taskruns.get(tr.parent_id) if tr.parent_id else None
    while node is not None:
        task = tasks.get(node.task_id)
        if task is not None and task.type == WORKING_DIRECTORY:
            outputs = {"outputFiles": dict(item.workdir_outputs or {})}
            return [ev.TaskRunOutputs(date=item.date, taskrun_id=node.id, outputs=outputs)]
        node = state.taskruns.get(node.parent_id) if node.parent_id else None
    return []
