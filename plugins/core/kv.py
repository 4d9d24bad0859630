"""kv.Set, kv.Get, kv.Delete and kv.GetKeys on the namespace key/value store (``ctx.kv``)."""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec

from engine.core.errors import TaskFailed
from plugins.api import RunContext, TaskResult, runnable
from plugins.core.sleep import duration_prop

P = "io.kestra.plugin.core.kv."

_KEY = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$")
KV_TYPES = ("STRING", "NUMBER", "BOOLEAN", "DATETIME", "DATE", "DURATION", "JSON")


def check_key(key: str) -> str:
    if not _KEY.match(key):
        raise TaskFailed(
            f"key: invalid key {key!r}: it must start with a letter or digit and contain only letters, "
            "digits, dots (.), underscores (_) and hyphens (-)",
            retryable=False,
        )
    return key


def convert_value(value: Any, kv_type: str | None) -> Any:
    """Kestra's ``kvType`` coercion, applied only when the rendered value is a string."""
    if kv_type is None or not isinstance(value, str):
        return value
    kind = kv_type.upper()
    if kind not in KV_TYPES:
        raise TaskFailed(
            f"kvType: unknown type {kv_type!r}; expected one of {', '.join(KV_TYPES)}", retryable=False
        )
    try:
        if kind == "NUMBER":
            number = json.loads(value)
            if isinstance(number, bool) or not isinstance(number, int | float):
                raise ValueError("not a number")
            return number
        if kind == "BOOLEAN":
            return value.strip().lower() == "true"
        if kind == "JSON":
            return json.loads(value)
        if kind == "DURATION":
            duration_prop(value, "value")
    except ValueError as exc:
        raise TaskFailed(f"value: {value!r} is not a valid {kind}: {exc}", retryable=False) from None
    return value


class Set(msgspec.Struct, frozen=True):
    key: str
    value: Any
    namespace: str | None = None
    overwrite: bool = True
    ttl: str | float | None = None
    kvType: str | None = None


class Get(msgspec.Struct, frozen=True):
    key: str
    namespace: str | None = None
    errorOnMissing: bool = False


class Delete(msgspec.Struct, frozen=True):
    key: str
    namespace: str | None = None
    errorOnMissing: bool = False


class GetKeys(msgspec.Struct, frozen=True):
    prefix: str | None = None
    namespace: str | None = None


async def run_set(props: Set, ctx: RunContext) -> TaskResult:
    namespace = props.namespace or ctx.namespace
    key = check_key(props.key)
    ttl = None if props.ttl is None else duration_prop(props.ttl, "ttl")
    if ttl is not None and ttl <= 0:
        raise TaskFailed(f"ttl: must be positive, got {props.ttl!r}", retryable=False)
    value = convert_value(props.value, props.kvType)
    if not props.overwrite and await ctx.kv.get(namespace, key) is not None:
        raise TaskFailed(
            f"Cannot set value for key '{key}'. Key already exists and `overwrite` is set to `false`.",
            retryable=False,
        )
    await ctx.kv.set(namespace, key, value, ttl)
    return TaskResult()


def _missing(key: str, namespace: str) -> TaskFailed:
    return TaskFailed(
        f"No value found for key '{key}' in namespace '{namespace}' and `errorOnMissing` is set to true",
        retryable=False,
    )


async def run_get(props: Get, ctx: RunContext) -> TaskResult:
    namespace = props.namespace or ctx.namespace
    value = await ctx.kv.get(namespace, props.key)
    if value is None and props.errorOnMissing:
        raise _missing(props.key, namespace)
    return TaskResult(outputs={"value": value})


async def run_delete(props: Delete, ctx: RunContext) -> TaskResult:
    namespace = props.namespace or ctx.namespace
    deleted = await ctx.kv.delete(namespace, props.key)
    if not deleted and props.errorOnMissing:
        raise _missing(props.key, namespace)
    return TaskResult(outputs={"deleted": deleted})


async def run_get_keys(props: GetKeys, ctx: RunContext) -> TaskResult:
    namespace = props.namespace or ctx.namespace
    keys = await ctx.kv.keys(namespace, props.prefix or "")
    return TaskResult(outputs={"keys": list(keys)})


SPECS = [
    runnable(
        P + "Set", Set, run_set, "Set `key` to `value` in the namespace KV store (optional `ttl`, `kvType`)."
    ),
    runnable(P + "Get", Get, run_get, "Read `key` from the namespace KV store into output `value`."),
    runnable(P + "Delete", Delete, run_delete, "Delete `key` from the namespace KV store; output `deleted`."),
    runnable(
        P + "GetKeys", GetKeys, run_get_keys, "List the keys starting with `prefix` into output `keys`."
    ),
]
