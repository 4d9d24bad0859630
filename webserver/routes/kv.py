"""``/api/v1/namespaces/{namespace}/kv``: Kestra's KV store (typed values, optional time to live)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from litestar import Request, delete, get, put
from litestar.params import FromPath, HeaderParameter

from eventstore.store import JetStreamKV
from webserver.http import bad, check_kv, deps, json_body, not_found, read_text, with_body
from webserver.query import parse_seconds


def kv_type(value: Any) -> str:
    """Kestra's type of a KV value: a list or a map is JSON."""
    if isinstance(value, bool):  # before int: True is an int too
        return "BOOLEAN"
    if isinstance(value, int | float):
        return "NUMBER"
    return "STRING" if isinstance(value, str) else "JSON"


@get("/namespaces/{namespace:str}/kv", tags=["KV"])
async def kv_list(request: Request[Any, Any, Any], namespace: FromPath[str]) -> list[dict[str, Any]]:
    """The keys of a namespace."""
    check_kv(namespace)
    keys = await JetStreamKV(deps(request).store).keys(namespace)
    return [{"key": k} for k in keys]


@get("/namespaces/{namespace:str}/kv/{key:str}", tags=["KV"])
async def kv_get(
    request: Request[Any, Any, Any], namespace: FromPath[str], key: FromPath[str]
) -> dict[str, Any]:
    """One value, with its type: ``{type, value}``."""
    check_kv(namespace, key)
    value = await JetStreamKV(deps(request).store).get(namespace, key)
    if value is None:
        raise not_found(f"no key {key!r} in namespace {namespace!r}")
    return {"type": kv_type(value), "value": value}


VALUE = json_body("The value: JSON (a number, true, {...}) or plain text (a string)", required=True)


@put("/namespaces/{namespace:str}/kv/{key:str}", **with_body(VALUE, "KV"))
async def kv_set(
    request: Request[Any, Any, Any],
    namespace: FromPath[str],
    key: FromPath[str],
    ttl: Annotated[
        str | None, HeaderParameter(name="ttl", description="Time to live, ISO-8601 (PT1H)")
    ] = None,
) -> dict[str, Any]:
    """Set a value (a JSON body is parsed, anything else is a string)."""
    check_kv(namespace, key)
    text = await read_text(request)
    if not text:
        raise bad("the body is empty: send the value (JSON, or text for a string)")
    try:
        value: Any = json.loads(text)
    except ValueError:
        value = text
    ttl_s = None
    if ttl:
        ttl_s = parse_seconds(ttl, "ttl", "PT1H")
        if ttl_s <= 0:
            raise bad("ttl must be positive")
    await JetStreamKV(deps(request).store).set(namespace, key, value, ttl_s)
    return {"key": key, "type": kv_type(value), "value": value}


@delete("/namespaces/{namespace:str}/kv/{key:str}", tags=["KV"])
async def kv_delete(request: Request[Any, Any, Any], namespace: FromPath[str], key: FromPath[str]) -> None:
    check_kv(namespace, key)
    if not await JetStreamKV(deps(request).store).delete(namespace, key):
        raise not_found(f"no key {key!r} in namespace {namespace!r}")


ROUTES = [
    kv_list,
    kv_get,
    kv_set,
    kv_delete,
]
