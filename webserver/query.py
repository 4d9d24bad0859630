"""Query parameters turned into SQL over the DuckDB projection, and the reads several routes share.

A parameter the caller got wrong is a 400 naming it and showing a valid value.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
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
    seek: tuple[str, bool] | None = None,
) -> tuple[int, list[tuple[Any, ...]]]:
    """(total, the rows of one page) of ``SELECT columns FROM source WHERE where ORDER BY order``.

    ``key``: the primary key of ``source`` (one table). The page is then chosen on the columns the
    filter and the order need, and its ``columns`` fetched by key through the index afterwards:
    DuckDB's own late fetch scans the wide columns (a document per execution) of every row group
    for the page's row ids, 4x slower on rows still in memory after a bulk load.

    ``seek``: (column, descending) when ``order`` is ``column ASC|DESC NULLS LAST, key``: a deep page
    (``KeyedPage.seek``) skips the rows before a boundary instead of sorting them.
    """
    limit, offset = page_params(page, size)
    count = d.indexer.count(f"SELECT count(*) FROM {source} WHERE {where}", params)
    if key is None:
        sql = f"SELECT {columns} FROM {source} WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?"
        total, rows = await asyncio.gather(count, d.indexer.aquery(sql, [*params, limit, offset]))
        return total, rows  # two cursors, in parallel
    keyed = KeyedPage(source, key, columns, where, params, order, limit, offset)
    if seek is None or offset < SEEK_FROM:
        total, rows = await asyncio.gather(count, d.indexer.aread(keyed))
        return total, rows
    total = await count  # the boundary is guessed from it
    return total, await d.indexer.aread(dataclasses.replace(keyed, seek=(*seek, total)))


# The offset from which a page seeks. A seek scans the filtered rows twice more (a sample, a count):
# on 100,000 executions it won from offset 1,000 unfiltered, but lost at 2,475 with a label filter
# (9.5 -> 12.5 ms) and broke even at 4,975 with a text filter; sorting 4,000 rows costs ~5 ms.
SEEK_FROM = 4000
SEEK_AHEAD = 0.8  # the share of the offset a seek's boundary aims to skip (ties, sampling: margin)
# The boundary is a quantile of a row sample (a quarter of the cost of all rows'); repeatable, so
# the same data gives the same statements. A bad guess costs time, never rows.
SEEK_SAMPLE = "TABLESAMPLE bernoulli(10%) REPEATABLE (7)"


@dataclasses.dataclass(frozen=True)
class KeyedPage:
    """The rows of one page of ``table``: the keys of the page, then their ``columns`` by key, in
    that order; called with ``run`` (``Database.read``: one read transaction, one snapshot)."""

    table: str
    key: str
    columns: str
    where: str
    params: list[Any]
    order: str
    limit: int
    offset: int
    seek: tuple[str, bool, int] | None = None  # (sort column, descending, total)

    def __call__(self, run: Run) -> list[tuple[Any, ...]]:
        where, params, skipped = self.where, self.params, 0
        if self.seek is not None:
            where, params, skipped = self.skip(run, *self.seek) or (where, params, 0)
        keys = [
            r[0]
            for r in run(
                f"SELECT {self.key} FROM {self.table} WHERE {where} ORDER BY {self.order} LIMIT ? OFFSET ?",
                [*params, self.limit, self.offset - skipped],
            )
        ]
        if not keys:
            return []
        # Placeholders, not a list parameter: DuckDB plans an index scan for IN (constants) only.
        marks = ", ".join("?" * len(keys))
        sql = f"SELECT {self.key}, {self.columns} FROM {self.table} WHERE {self.key} IN ({marks})"
        found = {r[0]: r[1:] for r in run(sql, keys)}
        return [found[k] for k in keys]

    def skip(self, run: Run, column: str, descending: bool, total: int) -> tuple[str, list[Any], int] | None:
        """(where, params, rows skipped): the rows of a deep page without the rows sorted before a
        boundary value of ``column``; None when no boundary helps.

        DuckDB sorts the first offset + limit rows to drop offset of them (8 ms for page 200 of
        100,000 executions). A quantile of the column in a sample guesses a boundary about
        SEEK_AHEAD x offset rows in; the rows strictly before it (greater when descending, smaller
        when ascending: NULLs sort last either way) are counted, and the page is the rest's, from
        offset minus that count: the same rows whatever the guess, as long as it does not skip
        more than offset rows (then there is no seek).
        """
        ahead = SEEK_AHEAD * self.offset / total if total else 1.0
        if ahead >= 1.0:
            return None
        fraction = 1.0 - ahead if descending else ahead
        bound = run(
            f"SELECT quantile_disc({column}, {fraction!r}) FROM {self.table} {SEEK_SAMPLE} "
            f"WHERE {self.where}",
            self.params,
        )[0][0]
        if bound is None:
            return None
        before = f"{column} {'>' if descending else '<'} ?"
        params = [*self.params, bound]
        skipped = int(run(f"SELECT count(*) FROM {self.table} WHERE {self.where} AND {before}", params)[0][0])
        if skipped > self.offset:
            return None
        return f"{self.where} AND ({before}) IS NOT TRUE", params, skipped


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
