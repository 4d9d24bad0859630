"""The variables an expression sees (Kestra's RunVariables): inputs, outputs, execution, flow, taskrun..."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.core.execution import Execution, TaskRun
from engine.core.model import Flow, Task

LOOP_TYPES = frozenset(
    {
        "io.kestra.plugin.core.flow.ForEach",
        "io.kestra.plugin.core.flow.EachSequential",
        "io.kestra.plugin.core.flow.EachParallel",
    }
)


def millis(date: str) -> str:
    """A stored date (microseconds) as Kestra shows an execution's dates: to the millisecond."""
    head, dot, tail = date.partition(".")
    if not dot or not tail.endswith("Z"):
        return date
    return f"{head}.{tail[:-1][:3].ljust(3, '0')}Z"


def value_path(ex: Execution, tr: TaskRun, loop_ids: frozenset[str]) -> list[str]:
    """The loop values a taskrun lives under, outermost first (empty outside loops)."""
    path: list[str] = []
    node: TaskRun | None = tr
    while node is not None:
        parent = ex.taskruns.get(node.parent_id) if node.parent_id else None
        if parent is not None and parent.id in loop_ids and node.value is not None:
            path.append(node.value)
        node = parent
    path.reverse()
    return path


def loop_taskrun_ids(ex: Execution, flow_tasks: dict[str, Task]) -> frozenset[str]:
    # Asked for every dispatch; most flows have no loop, and then no taskrun need be looked at.
    if not any(t.type in LOOP_TYPES for t in flow_tasks.values()):
        return frozenset()
    return frozenset(
        tr.id
        for tr in ex.taskruns.values()
        if (t := flow_tasks.get(tr.task_id)) is not None and t.type in LOOP_TYPES
    )


def _nest(target: dict[str, Any], task_id: str, path: list[str], value: Any) -> None:
    if not path:
        existing = target.get(task_id)
        target[task_id] = (
            {**existing, **value} if isinstance(existing, dict) and isinstance(value, dict) else value
        )
        return
    node = target.setdefault(task_id, {})
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value


def nested_labels(labels: dict[str, str]) -> dict[str, Any]:
    """Labels by key, and dotted keys also as nested maps (``labels.system.correlationId``), like Kestra."""
    out: dict[str, Any] = dict(labels)
    for key, value in labels.items():
        if "." not in key:
            continue
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                if child is not None:
                    break  # a plain label of that name wins
                child = node[part] = {}
            node = child
        else:
            node.setdefault(parts[-1], value)
    return out


def variables(
    ex: Execution,
    flow: Flow,
    flow_tasks: dict[str, Task],
    taskrun: TaskRun | None = None,
    *,
    envs: Mapping[str, str],
) -> dict[str, Any]:
    """Build the expression variables for the execution, seen from ``taskrun`` if given."""
    loops = loop_taskrun_ids(ex, flow_tasks)
    outputs: dict[str, Any] = {}
    tasks_state: dict[str, Any] = {}
    for tr in ex.taskruns.values():
        path = value_path(ex, tr, loops) if loops else []
        if tr.outputs:
            _nest(outputs, tr.task_id, path, tr.outputs)
        _nest(tasks_state, tr.task_id, path, {"state": tr.state})
    result: dict[str, Any] = {
        "flow": {"id": flow.id, "namespace": flow.namespace, "revision": ex.flow_revision},
        "execution": {
            "id": ex.id,
            "startDate": millis(ex.start_date),
            "originalId": ex.original_id or ex.id,
            "state": ex.state,
        },
        "inputs": ex.inputs,
        "vars": flow.variables,
        "outputs": outputs,
        "tasks": tasks_state,
        "labels": nested_labels(ex.labels),
        "envs": dict(envs),
        "globals": {},
    }
    if ex.trigger is not None:
        # Kestra stores {id, type, variables} and exposes the variables as `trigger`.
        trigger_vars = ex.trigger.get("variables")
        result["trigger"] = trigger_vars if isinstance(trigger_vars, dict) else ex.trigger
    if taskrun is not None:
        task = flow_tasks.get(taskrun.task_id)
        path = value_path(ex, taskrun, loops)
        result["task"] = {"id": taskrun.task_id, "type": task.type if task else ""}
        result["taskrun"] = _taskrun_vars(taskrun)
        node = ex.taskruns.get(taskrun.parent_id) if taskrun.parent_id else None
        while node is not None:  # inside a WorkingDirectory: Kestra's `workerTaskrun` is its taskrun
            parent_task = flow_tasks.get(node.task_id)
            if parent_task is not None and parent_task.type == "io.kestra.plugin.core.flow.WorkingDirectory":
                result["workerTaskrun"] = _taskrun_vars(node)
                break
            node = ex.taskruns.get(node.parent_id) if node.parent_id else None
        parents = _parents(ex, taskrun, loops, outputs)
        if parents:
            result["parents"] = parents
            result["parent"] = parents[0]
        del path
    return result


def _taskrun_vars(taskrun: TaskRun) -> dict[str, Any]:
    return {
        "id": taskrun.id,
        "value": taskrun.value,
        "parentId": taskrun.parent_id,
        "attemptsCount": max(len(taskrun.attempts) - 1, 0),
        "startDate": millis(taskrun.histories[0].date),
        "iteration": taskrun.iteration,
    }


def _parents(
    ex: Execution, taskrun: TaskRun, loops: frozenset[str], outputs: dict[str, Any]
) -> list[dict[str, Any]]:
    """Enclosing flowable taskruns, innermost first, as Kestra's ``Execution.parents``: ``taskrun.value``
    only where the parent has a value, ``outputs`` only where it has some, and a parent with
    neither left out (so ``currentEachOutput`` and ``parents[i]`` see the loops as Kestra does)."""
    out: list[dict[str, Any]] = []
    node = ex.taskruns.get(taskrun.parent_id) if taskrun.parent_id else None
    while node is not None:
        entry: dict[str, Any] = {}
        if node.value is not None:
            entry["taskrun"] = {"value": node.value}
        if node.outputs:
            entry["outputs"] = node.outputs
        if entry:
            out.append(entry)
        node = ex.taskruns.get(node.parent_id) if node.parent_id else None
    del loops, outputs
    return out
