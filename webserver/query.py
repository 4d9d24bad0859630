"""Query parameters turned into SQL over the DuckDB projection, and the reads several routes share.

A parameter the caller got wrong is a 400 naming it and showing a valid value.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.clock import utcnow
from engine.core import events as ev
from engine.core.durations import parse_duration
from engine.core.errors import EngineError
from engine.core.shape import execution_json
from engine.core.states import State
from eventstore import subjects as S
from eventstore.indexer import LABEL_SEP, TERMINAL
from eventstore.indexer.db import Run
from eventstore.reader import read_execution
from webserver.http import Deps, bad, conflict, not_found, page_params


def parse_date(value: str | None, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise bad(f"{name}: {value!r} is not an ISO-8601 date-time, e.g. 2026-01-31T12:00:00Z") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def parse_labels(values: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition(LABEL_SEP)
        if not sep or not key:
            raise bad(f"labels: {item!r} is not key:value (e.g. labels=team:data)")
        out[key] = value
    return out


def parse_states(values: list[str] | None) -> list[str]:
    out = []
    for v in values or []:
        try:
            out.append(State(v.upper()).value)
        except ValueError:
            raise bad(
                f"state: {v!r} is not a state; use one of {', '.join(s.value for s in State)}"
            ) from None
    return out


def parse_seconds(value: str, name: str, example: str) -> float:
    """An ISO-8601 duration in seconds (400 naming the parameter when it is not one)."""
    try:
        return parse_duration(value)
    except (EngineError, ValueError):
        raise bad(f"{name}: {value!r} is not an ISO-8601 duration, e.g. {example}") from None


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.isoformat(timespec="milliseconds") + "Z"


class Where:
    """SQL conditions joined by AND, with their parameters in order."""

    def __init__(self, *conditions: str) -> None:
        self.conditions = list(conditions)
        self.params: list[Any] = []

    def add(self, condition: str, *params: Any) -> None:
        self.conditions.append(condition)
        self.params += params

    def namespace(self, namespace: str | None, column: str = "namespace") -> None:
        """This namespace and the ones below it."""
        if namespace:
            self.add(f"({column} = ? OR starts_with({column}, ?))", namespace, namespace + ".")

    def labels(self, labels: list[str] | None) -> None:
        for k, v in parse_labels(labels).items():
            self.add("list_contains(labels, ?)", f"{k}{LABEL_SEP}{v}")

    @property
    def sql(self) -> str:
        return " AND ".join(self.conditions) or "true"


def execution_filters(
    namespace: str | None,
    flow_id: str | None,
    state: list[str] | None,
    labels: list[str] | None,
    start_date: str | None,
    end_date: str | None,
    time_range: str | None,
    q: str | None,
    parent_id: str | None = None,
) -> tuple[str, list[Any]]:
    where = Where()
    where.namespace(namespace)
    if flow_id:
        where.add("flow_id = ?", flow_id)
    states = parse_states(state)
    if states:
        where.add("list_contains(?, state)", states)
    where.labels(labels)
    start = parse_date(start_date, "startDate")
    end = parse_date(end_date, "endDate")
    if time_range:
        seconds = parse_seconds(time_range, "timeRange", "PT24H or P7D")
        start = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=seconds)
    if start is not None:
        where.add("start_date >= ?", start)
    if end is not None:
        where.add("start_date <= ?", end)
    if q:
        where.add("contains(search, ?)", q.lower())  # id, namespace, flow id and labels, lower-cased
    if parent_id:
        where.add("parent_id = ?", parent_id)
    return where.sql, where.params


async def paged(
    d: Deps,
    columns: str,
    source: str,
    where: str,
    params: list[Any],
    order: str,
    page: int,
    size: int,
    *,
    key: str | None = None,
) -> tuple[int, list[tuple[Any, ...]]]:
    """(total, the rows of one page) of ``SELECT columns FROM source WHERE where ORDER BY order``.

    ``key``: the primary key of ``source`` (one table). The page is then chosen on the columns the
    filter and the order need, and its ``columns`` fetched by key through the index afterwards:
    DuckDB's own late fetch scans the wide columns (a document per execution) of every row group
    for the page's row ids, 4x slower on rows still in memory after a bulk load.
    """
    limit, offset = page_params(page, size)
    select = f"FROM {source} WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?"
    if key is None:
        rows_read = d.indexer.aquery(f"SELECT {columns} {select}", [*params, limit, offset])
    else:
        rows_read = d.indexer.aread(
            functools.partial(by_key, columns, source, key, select, params, limit, offset)
        )
    total, rows = await asyncio.gather(  # two cursors, in parallel
        d.indexer.count(f"SELECT count(*) FROM {source} WHERE {where}", params), rows_read
    )
    return total, rows


def by_key(
    columns: str, table: str, key: str, select: str, params: list[Any], limit: int, offset: int, run: Run
) -> list[tuple[Any, ...]]:
    """The rows of one page: the keys of ``SELECT key select``, then their ``columns``, in that order
    (both statements in one read transaction: the same snapshot)."""
    keys = [r[0] for r in run(f"SELECT {key} {select}", [*params, limit, offset])]
    if not keys:
        return []
    # Placeholders, not a list parameter: DuckDB plans an index scan for IN (constants) only.
    marks = ", ".join("?" * len(keys))
    found = {r[0]: r[1:] for r in run(f"SELECT {key}, {columns} FROM {table} WHERE {key} IN ({marks})", keys)}
    return [found[k] for k in keys]


async def execution_row(d: Deps, execution_id: str) -> tuple[Any, ...]:
    """(doc, state, namespace, flow id) of an execution; 404 when there is none.

    The projection answers; an execution it has not indexed yet (just created, the indexer a
    moment behind) is folded from the event log, so a client reads what it just wrote.
    """
    rows = await d.indexer.aquery(
        "SELECT doc, state, namespace, flow_id FROM executions WHERE id = ?", [execution_id]
    )
    if rows and rows[0][1] in TERMINAL:
        return rows[0]
    if rows:
        # Still open in the projection: the log may already have it ended (a client that saw it end,
        # from the log, must not read it running again, nor its outputs missing).
        state = (await read_execution(d.store, execution_id, leader=False)).state
        if state is None or not state.is_terminal:
            return rows[0]
        doc = json.dumps(execution_json(state), separators=(",", ":"), default=str)
        return doc, state.state, state.namespace, state.flow_id
    state = None
    # An id is a token of the execution's subjects: an empty part (a..b, .a) is no subject at all.
    if S.valid_name(execution_id) and "" not in execution_id.split("."):
        state = (await read_execution(d.store, execution_id, leader=False)).state
    if (
        state is None
        or state.deleted
        or await d.indexer.aquery("SELECT 1 FROM deleted_executions WHERE id = ?", [execution_id])
    ):
        raise not_found(f"execution {execution_id} not found")
    doc = json.dumps(execution_json(state), separators=(",", ":"), default=str)
    return doc, state.state, state.namespace, state.flow_id


async def wait_recorded(d: Deps, execution_id: str, send: Callable[[], Awaitable[None]]) -> bool:
    """``send()`` a creation, then wait (bounded) until an executor has written the execution's first
    step to the log, so that the next read finds it; False when none did in time (no executor)."""
    recorded = asyncio.Event()

    async def on_events(events: list[Any]) -> None:
        recorded.set()

    sub = await d.store.watch_events(execution_id, on_events)
    try:
        await send()
        if await d.store.last_seq(execution_id) > 0:
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(recorded.wait(), RECORD_TIMEOUT_S)
        return recorded.is_set()
    finally:
        await sub.unsubscribe()


# How long a POST of an execution waits for an executor to record it before answering anyway.
RECORD_TIMEOUT_S = 10.0


async def request_kill(d: Deps, execution_id: str) -> tuple[Any, ...]:
    """Ask a running execution to stop (409 when it has ended): its row as it was when asked."""
    row = await execution_row(d, execution_id)
    if row[1] in TERMINAL:
        raise conflict(f"execution {execution_id} already ended {row[1]}: nothing to kill")
    await d.store.send_input(execution_id, ev.KillRequested(date=utcnow(), reason="killed through the API"))
    return row


async def flow_deployed(d: Deps, namespace: str, flow_id: str) -> None:
    """404 unless the flow is deployed (not deleted)."""
    rows = await d.indexer.aquery(
        "SELECT 1 FROM flows WHERE namespace = ? AND flow_id = ? AND NOT deleted", [namespace, flow_id]
    )
    # The projection may lag a save that just returned (a busy indexer): the log decides.
    if not rows and await d.store.get_flow(namespace, flow_id) is None:
        raise not_found(f"flow {namespace}.{flow_id} is not deployed")
