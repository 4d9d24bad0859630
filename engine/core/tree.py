"""The shape of a flow as the decider walks it: ids, the task index, truthiness.

Pure helpers shared by the decider, ``accept`` and history operations.
"""

from __future__ import annotations

import hashlib
from typing import Any

from engine.core.model import Flow, Task

F = "io.kestra.plugin.core.flow."
EXIT_OUTPUT = "exit"


_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


# Two digits at a time: a third of make_id's cost was the loop (ids are made for every taskrun).
_PAIRS = [_BASE62[r % 62] + _BASE62[r // 62] for r in range(62 * 62)]


def base62_id(n: int) -> str:
    """Kestra-style 22-character base62 id of a 128-bit number (least significant digit first)."""
    out = []
    for _ in range(11):
        n, r = divmod(n, 3844)
        out.append(_PAIRS[r])
    return "".join(out)


def make_id(*parts: str | None) -> str:
    """A 22-character id derived from its parts (stable across replays and restarts)."""
    digest = hashlib.blake2b("\x1f".join(p or "" for p in parts).encode(), digest_size=16).digest()
    return base62_id(int.from_bytes(digest, "big"))


ITEMS = F + "ForEachItem$ForEachItemExecutable"
SPLIT = F + "ForEachItem$ForEachItemSplit"
MERGE = F + "ForEachItem$ForEachItemMergeOutputs"
_SUBFLOW_PROPS = (
    "namespace",
    "flowId",
    "revision",
    "inputs",
    "labels",
    "wait",
    "transmitFailed",
    "inheritLabels",
)


def items_children(task: Task) -> tuple[Task, ...]:
    """ForEachItem runs as three tasks, as in Kestra: ``<id>_split``, ``<id>_items``, ``<id>_merge``."""
    props = task.props
    return (
        Task(
            id=f"{task.id}_split",
            type=SPLIT,
            props={"items": props.get("items"), "batch": props.get("batch") or {}},
        ),
        Task(
            id=f"{task.id}_items",
            type=ITEMS,
            props={k: props[k] for k in _SUBFLOW_PROPS if k in props},
            flowable=True,
        ),
        Task(id=f"{task.id}_merge", type=MERGE),
    )


_INDEX: dict[int, tuple[Flow, dict[str, Task]]] = {}


def index_tasks(flow: Flow) -> dict[str, Task]:
    """Every task of the flow by id, at any depth (memoised per flow object)."""
    hit = _INDEX.get(id(flow))
    if hit is not None and hit[0] is flow:
        return hit[1]
    out: dict[str, Task] = {}

    def walk(tasks: tuple[Task, ...]) -> None:
        for t in tasks:
            out[t.id] = t
            for children in t.branches.values():
                walk(children)
            if t.type == F + "ForEachItem":
                walk(items_children(t))

    walk(flow.tasks)
    walk(flow.errors)
    walk(flow.finally_)
    walk(flow.after_execution)
    if len(_INDEX) > 1024:
        _INDEX.clear()
    _INDEX[id(flow)] = (flow, out)
    return out


_FALSE_TEXTS = frozenset({"", "false", "0", "-0", "0.0", "null", "none"})


def is_truthy(value: Any) -> bool:
    """The one truthiness rule of the engine (conditions, runIf, SLA assertions, flags, triggers).

    Kestra's ``TruthUtils`` on the rendered text (false: blank, ``false``, ``0``, ``-0``), widened to
    the other ways a typed value prints as false (``0.0``, null) and to any letter case.
    """
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    return str(value).strip().lower() not in _FALSE_TEXTS
