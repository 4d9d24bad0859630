"""``/api/v1/namespaces/{namespace}/kv``: Kestra's KV store (typed values, optional time to live)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Request, delete, get, put
from litestar.params import FromPath, HeaderParameter

from eventstore.store import JetStreamKV, KVEntry
from webserver.filters import KV, filter_sql
from webserver.http import (
    Page,
    Size,
    bad,
    check_kv,
    deps,
    json_body,
    not_found,
    page_of,
    read_text,
    with_body,
)
from webserver.query import parse_seconds


def kv_type(value: Any) -> str:
    """Kestra's type of a KV value: a list or a map is JSON."""
    if isinstance(value, bool):  # before int: True is an int too
        return "BOOLEAN"
    if isinstance(value, int | float):
        return "NUMBER"
    return "STRING" if isinstance(value, str) else "JSON"


def entry_json(e: KVEntry) -> dict[str, Any]:
    """Kestra's KVEntry (no description: this store keeps none)."""
    return {
        "namespace": e.namespace,
        "key": e.key,
        "revision": e.revision,
        "description": None,
        "creationDate": iso_date(e.updated),
        "updateDate": iso_date(e.updated),
        "expirationDate": iso_date(e.expires),
    }


def naive_utc(moment: datetime | None) -> datetime | None:
    """A UTC date without zone, as the filters compare them."""
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def iso_date(moment: datetime | None) -> str | None:
    utc = naive_utc(moment)
    return None if utc is None else utc.isoformat(timespec="milliseconds") + "Z"


@get("/namespaces/{namespace:str}/kv", tags=["KV"])
async def kv_list(request: Request[Any, Any, Any], namespace: FromPath[str]) -> list[dict[str, Any]]:
    """The keys of a namespace (Kestra's KVEntry: key, revision, dates)."""
    check_kv(namespace)
    return [entry_json(e) for e in await JetStreamKV(deps(request).store).entries(namespace)]


@get("/namespaces/{namespace:str}/kv/inheritance", tags=["KV"])
async def kv_inherited(request: Request[Any, Any, Any], namespace: FromPath[str]) -> list[dict[str, Any]]:
    """The keys the namespace's parents give it (``company`` for ``company.team``), a nearer
    namespace's key hiding a farther one's, as ``kv()`` reads them."""
    check_kv(namespace)
    store = JetStreamKV(deps(request).store)
    parts = namespace.split(".")
    seen: dict[str, KVEntry] = {}
    for depth in range(len(parts) - 1, 0, -1):
        for e in await store.entries(".".join(parts[:depth])):
            seen.setdefault(e.key, e)
    return [entry_json(e) for e in sorted(seen.values(), key=lambda e: e.key)]


@get("/kv", tags=["KV"])
async def kv_all(request: Request[Any, Any, Any], page: Page = 1, size: Size = 25) -> dict[str, Any]:
    """Every key of every namespace, filtered by Kestra's ``filters[namespace|q|updated][OP]``,
    paged: ``{results, total}``."""
    d = deps(request)
    where, params = filter_sql(request, KV)
    entries = await JetStreamKV(d.store).entries()
    if where != "true" and entries:
        rows = await d.indexer.aquery(
            "SELECT i FROM (SELECT unnest(?::VARCHAR[]) AS namespace, unnest(?::VARCHAR[]) AS key, "
            f"unnest(?::TIMESTAMP[]) AS updated, unnest(?::INTEGER[]) AS i) WHERE {where} ORDER BY i",
            [
                [e.namespace for e in entries],
                [e.key for e in entries],
                [naive_utc(e.updated) for e in entries],
                list(range(len(entries))),
                *params,
            ],
        )
        entries = [entries[r[0]] for r in rows]
    return {"results": [entry_json(e) for e in page_of(entries, page, size)], "total": len(entries)}


@get("/namespaces/{namespace:str}/kv/{key:str}", tags=["KV"])
async def kv_get(
    request: Request[Any, Any, Any], namespace: FromPath[str], key: FromPath[str]
) -> dict[str, Any]:
    """One value, with its type, revision and date: ``{type, value, revision, updated}``."""
    check_kv(namespace, key)
    found = await JetStreamKV(deps(request).store).entry(namespace, key)
    if found is None:
        raise not_found(f"no key {key!r} in namespace {namespace!r}")
    return {
        "type": kv_type(found.value),
        "value": found.value,
        "revision": found.revision,
        "updated": iso_date(found.updated),
    }


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


@delete("/namespaces/{namespace:str}/kv/{key:str}", status_code=200, tags=["KV"])
async def kv_delete(request: Request[Any, Any, Any], namespace: FromPath[str], key: FromPath[str]) -> bool:
    """Delete a key: ``true``, or ``false`` when there was no such key (Kestra's answer)."""
    check_kv(namespace, key)
    return await JetStreamKV(deps(request).store).delete(namespace, key)


ROUTES = [
    kv_all,
    kv_list,
    kv_inherited,
    kv_get,
    kv_set,
    kv_delete,
]
