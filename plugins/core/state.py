"""Deprecated state.Set, state.Get and state.Delete, kept on top of the namespace KV store.

A state is a JSON map stored under the key ``tasks-states.<flowId>.<name>[.<taskrun value>]``
(``tasks-states._namespace.<name>...`` when ``namespace: true``) in the flow's namespace.
Names or taskrun values that are not key-safe are replaced by a hash.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import msgspec

from engine.core.errors import TaskFailed
from plugins.api import RunContext, TaskResult, runnable

P = "io.kestra.plugin.core.state."
_SAFE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def _part(text: str) -> str:
    return text if _SAFE.match(text) else "h" + hashlib.sha256(text.encode()).hexdigest()[:24]


class _State(msgspec.Struct, frozen=True, kw_only=True):
    name: str = "default"
    namespace: bool = False
    taskrunValue: bool = True


class Set(_State, frozen=True, kw_only=True):
    data: dict[str, Any] = msgspec.field(default_factory=dict)


class Get(_State, frozen=True, kw_only=True):
    errorOnMissing: bool = False


class Delete(_State, frozen=True, kw_only=True):
    errorOnMissing: bool = False


def state_key(props: _State, ctx: RunContext) -> str:
    parts = ["tasks-states", "_namespace" if props.namespace else _part(ctx.flow_id), _part(props.name)]
    if props.taskrunValue:
        taskrun = ctx.variables.get("taskrun")
        value = taskrun.get("value") if isinstance(taskrun, dict) else None
        if value is not None:
            parts.append(_part(str(value)))
    return ".".join(parts)


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Deep merge (Kestra's MapUtils.merge): nested maps merge, anything else is replaced."""
    out = dict(base)
    for key, value in update.items():
        current = out.get(key)
        out[key] = merge(current, value) if isinstance(current, dict) and isinstance(value, dict) else value
    return out


async def _load(ctx: RunContext, key: str) -> dict[str, Any] | None:
    stored = await ctx.kv.get(ctx.namespace, key)
    return stored if isinstance(stored, dict) else None


async def run_set(props: Set, ctx: RunContext) -> TaskResult:
    key = state_key(props, ctx)
    merged = merge(await _load(ctx, key) or {}, props.data)
    await ctx.kv.set(ctx.namespace, key, merged)
    return TaskResult(outputs={"count": len(merged), "key": key})


async def run_get(props: Get, ctx: RunContext) -> TaskResult:
    key = state_key(props, ctx)
    data = await _load(ctx, key)
    if data is None:
        if props.errorOnMissing:
            raise TaskFailed(f"Unable to find the state file '{props.name}'", retryable=False)
        data = {}
    return TaskResult(outputs={"count": len(data), "data": data})


async def run_delete(props: Delete, ctx: RunContext) -> TaskResult:
    deleted = await ctx.kv.delete(ctx.namespace, state_key(props, ctx))
    if not deleted and props.errorOnMissing:
        raise TaskFailed(f"Unable to find the state file '{props.name}'", retryable=False)
    return TaskResult(outputs={"deleted": deleted})


SPECS = [
    runnable(P + "Set", Set, run_set, "Deprecated: merge `data` into a named state (use kv.Set)."),
    runnable(
        P + "Get",
        Get,
        run_get,
        "Deprecated: read a named state into outputs `data` and `count` (use kv.Get).",
    ),
    runnable(P + "Delete", Delete, run_delete, "Deprecated: delete a named state (use kv.Delete)."),
]
