"""The ``tasks`` of a Dag: entries ``{task, dependsOn}`` whose dependencies name tasks of the same
Dag and form no cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from engine.core.model import Task
from engine.loader.checker import Checker, closest
from engine.yamlpos import child_path, index_path

__all__ = ["dag_tasks"]

# reads one task: tasks.py passes its own, which reads the task's branches through this module
ReadTask = Callable[[Checker, Any, str], Task | None]


def dag_tasks(ctx: Checker, value: Any, path: str, read_task: ReadTask) -> tuple[Task, ...]:
    items = ctx.sequence(value, path, "a list of {task, dependsOn}")
    parsed: list[tuple[Task, list[str], str]] = []
    for i, item in enumerate(items or []):
        sub = index_path(path, i)
        data = ctx.mapping(item, sub, "a DAG entry {task: ..., dependsOn: [...]}")
        if data is None:
            continue
        ctx.unknown_keys(data, sub, ("task", "dependsOn"), "DAG entry property")
        if data.get("task") is None:
            ctx.add(
                sub,
                "a DAG entry needs 'task:' — write '- task: {id: ..., type: ...}' "
                "with an optional 'dependsOn: [ids]'",
            )
            continue
        task = read_task(ctx, data["task"], child_path(sub, "task"))
        deps: list[str] = []
        dep_list = ctx.sequence(data.get("dependsOn"), child_path(sub, "dependsOn"), "a list of task ids")
        for j, dep in enumerate(dep_list or []):
            dep_id = ctx.string(dep, index_path(child_path(sub, "dependsOn"), j))
            if dep_id is not None:
                deps.append(dep_id)
        if task is not None:
            parsed.append((task, deps, sub))
    ids = {t.id for t, _, _ in parsed}
    graph: dict[str, list[str]] = {}
    for task, deps, sub in parsed:
        good: list[str] = []
        for j, dep in enumerate(deps):
            dpath = index_path(child_path(sub, "dependsOn"), j)
            if dep == task.id:
                ctx.add(dpath, f"task '{task.id}' depends on itself — remove '{dep}' from its dependsOn")
            elif dep not in ids:
                ctx.add(
                    dpath,
                    f"dependsOn refers to unknown task '{dep}' — use the id of another task of "
                    f"this Dag ({closest(dep, sorted(ids - {task.id}), 'task ids')})",
                )
            else:
                good.append(dep)
        graph[task.id] = good
    cycle = _find_cycle(graph)
    if cycle:
        first = next(sub for t, _, sub in parsed if t.id == cycle[0])
        ctx.add(
            child_path(first, "dependsOn"),
            "dependsOn has a cycle: " + " -> ".join(cycle) + " — remove one of these dependencies",
        )
    return tuple(msgspec.structs.replace(t, depends_on=tuple(deps)) for t, deps, _ in parsed)


def _find_cycle(graph: Mapping[str, list[str]]) -> list[str] | None:
    """One cycle in ``graph`` (node -> dependencies) as a list ``[a, b, ..., a]``, or None."""
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(graph, white)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        color[node] = grey
        stack.append(node)
        for dep in graph.get(node, []):
            if color.get(dep, black) == grey:
                return [*stack[stack.index(dep) :], dep]
            if color.get(dep) == white:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        color[node] = black
        return None

    for node in graph:
        if color[node] == white:
            found = visit(node)
            if found:
                return found
    return None
