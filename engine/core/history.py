"""Restart and replay: new events over an existing history, never edits. Pure."""

from __future__ import annotations

import msgspec

from engine.core import events as ev
from engine.core.errors import EngineError
from engine.core.execution import Execution
from engine.core.model import Flow
from engine.core.states import State
from engine.core.tree import index_tasks, make_id

# ---------------------------------------------------------------------------------------------
# restart and replay: new events over an existing history, never edits


def _with_ancestors(state: Execution, ids: list[str]) -> dict[str, None]:
    """Those taskruns and their ancestors, in creation order (a set of strings would iterate in
    an order of its process: the events built from it must be the same bytes everywhere)."""
    out: set[str] = set()
    for tr_id in ids:
        node = state.taskruns.get(tr_id)
        while node is not None and node.id not in out:
            out.add(node.id)
            node = state.taskruns.get(node.parent_id) if node.parent_id else None
    return {tr_id: None for tr_id in state.taskruns if tr_id in out}


def _error_branch_ids(state: Execution) -> list[str]:
    """Taskruns of `errors` branches (and everything under them): a restart drops them."""
    dropped: set[str] = set()
    for tr in state.taskruns.values():  # creation order: parents come first
        if tr.branch == "errors" or (tr.parent_id is not None and tr.parent_id in dropped):
            dropped.add(tr.id)
    return [tr_id for tr_id in state.taskruns if tr_id in dropped]


def restart_events(state: Execution, flow: Flow, now: str) -> list[ev.Event]:
    """Run failed and paused taskruns again in the same execution (Kestra's restart)."""
    if not (state.is_terminal or state.state == State.PAUSED):
        raise EngineError(
            f"execution {state.id} is {state.state}: only a finished or paused execution restarts"
        )
    failed = [
        tr.id for tr in state.taskruns.values() if tr.state in (State.FAILED, State.KILLED, State.PAUSED)
    ]
    removed = set(_error_branch_ids(state))
    targets = _with_ancestors(state, [t for t in failed if t not in removed])
    if not targets:
        raise EngineError(f"execution {state.id} has no failed or paused taskrun to restart")
    tasks = index_tasks(flow)
    states: dict[str, str] = {}
    for tr_id in targets:
        tr = state.taskruns[tr_id]
        task = tasks.get(tr.task_id)
        flowable = task is not None and task.flowable
        # Tasks run again (a new attempt); flowables around them resume (Kestra: RUNNING).
        states[tr_id] = State.RUNNING if flowable else State.RESTARTED
    return [
        ev.ExecutionRestarted(
            date=now, states=states, removed=sorted(removed, key=list(state.taskruns).index)
        )
    ]


def replay_events(
    source: Execution, new_id: str, taskrun_id: str | None, flow: Flow, now: str
) -> list[ev.Event]:
    """A new execution that keeps what happened before ``taskrun_id`` and runs again from there."""
    created = ev.ExecutionCreated(
        date=now,
        execution_id=new_id,
        namespace=source.namespace,
        flow_id=source.flow_id,
        flow_revision=flow.revision,
        inputs=source.inputs,
        labels=source.labels,
        trigger=source.trigger,
        original_id=source.original_id or source.id,
        secret_inputs=source.secret_inputs,
    )
    if taskrun_id is None:
        return [created]
    if taskrun_id not in source.taskruns:
        raise EngineError(f"execution {source.id} has no taskrun {taskrun_id!r}")
    order = list(source.taskruns)
    start = order.index(taskrun_id)
    targets = _with_ancestors(source, [taskrun_id])
    dropped = set(_error_branch_ids(source))
    descendants = {taskrun_id}
    for tr_id in order[start + 1 :]:
        tr = source.taskruns[tr_id]
        if tr.parent_id in descendants:
            descendants.add(tr_id)
        dropped.add(tr_id)  # created after the replayed taskrun: it runs again (or not) from there
    mapping = {
        tr_id: make_id(new_id, "replay", tr_id) for tr_id in order if tr_id not in dropped or tr_id in targets
    }
    copied = []
    for tr_id in order:
        if tr_id not in mapping:
            continue
        tr = source.taskruns[tr_id]
        raw = msgspec.to_builtins(tr)
        raw["id"] = mapping[tr_id]
        raw["parent_id"] = mapping.get(tr.parent_id) if tr.parent_id else None
        raw["dispatched"] = tr.current_attempt  # nothing of the copy is in flight
        copied.append(raw)
    tasks = index_tasks(flow)
    states: dict[str, str] = {}
    for tr_id in targets:
        task = tasks.get(source.taskruns[tr_id].task_id)
        states[mapping[tr_id]] = (
            State.RUNNING if task is not None and task.flowable and tr_id != taskrun_id else State.RESTARTED
        )
    histories = [[h.state, h.date] for h in source.histories]
    return [
        created,
        ev.TaskRunsCopied(date=now, source_execution_id=source.id, histories=histories, taskruns=copied),
        ev.ExecutionRestarted(date=now, states=states),
    ]
