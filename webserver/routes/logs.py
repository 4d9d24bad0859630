"""``/api/v1/logs``: an execution's log lines, a search across executions, and a live tail (SSE)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator
from typing import Annotated, Any

from litestar import Request, Response, get
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from eventstore.admin import tail_logs
from eventstore.indexer import LEVELS, TERMINAL
from webserver.filters import LOGS, filter_sql
from webserver.http import ApiError, FlowIdParam, Page, Size, bad, deps, page_params
from webserver.query import Where, execution_row, iso, paged, parse_date


def level_num(min_level: str | None) -> int | None:
    if min_level is None:
        return None
    level = LEVELS.get(min_level.upper())
    if level is None:
        raise bad(f"minLevel: {min_level!r}; use one of TRACE, DEBUG, INFO, WARN, ERROR")
    return level


def log_json(row: tuple[Any, ...], namespace: str | None, flow_id: str | None) -> dict[str, Any]:
    seq, execution_id, date, level, message, taskrun_id, task_id, attempt = row
    return {
        "namespace": namespace,
        "flowId": flow_id,
        "executionId": execution_id,
        "taskId": task_id,
        "taskRunId": taskrun_id,
        "attemptNumber": attempt,
        "timestamp": date if isinstance(date, str) else iso(date),  # the live tail has it as text
        "level": level,
        "message": message,
        "index": seq,
    }


MinLevel = Annotated[str | None, QueryParameter(name="minLevel")]

LOG_SELECT = "SELECT seq, execution_id, date, level, message, taskrun_id, task_id, attempt FROM logs"
# A short attempt's lines are stored with its end, a long one's as they come (``workers.lines``):
# the date puts them in one order, the sequence keeps each source's own among equal dates.
LOG_ORDER = "date, seq"


MAX_LINES = 100_000  # one answer's bound: more is paged (page, size) or followed


def _log_where(
    execution_id: str,
    min_level: str | None,
    taskrun_id: str | None,
    task_id: str | None,
    attempt: int | None,
    q: str | None,
) -> Where:
    where = Where()
    where.add("execution_id = ?", execution_id)
    level = level_num(min_level)
    for cond, value in (
        ("level_num >= ?", level),
        ("taskrun_id = ?", taskrun_id),
        ("task_id = ?", task_id),
        ("attempt = ?", attempt),
    ):
        if value is not None:
            where.add(cond, value)
    if q:
        where.add("contains(lower(message), lower(?))", q)
    return where


async def read_logs(
    d: Any,
    execution_id: str,
    min_level: str | None,
    taskrun_id: str | None,
    task_id: str | None,
    attempt: int | None,
    page: int | None,
    size: int | None,
    q: str | None = None,
    *,
    count: bool = False,
) -> tuple[list[dict[str, Any]], int | None]:
    """An execution's log lines in order (a page of them when ``page`` or ``size`` is given), and
    how many match when ``count``."""
    ix = d.indexer
    where = _log_where(execution_id, min_level, taskrun_id, task_id, attempt, q)
    sql_where, params = where.sql, where.params
    limit, offset = page_params(page or 1, size or MAX_LINES)

    def read() -> tuple[Any, Any, int | None]:
        owner = ix.query("SELECT namespace, flow_id FROM executions WHERE id = ?", [execution_id])
        rows = ix.query(
            f"{LOG_SELECT} WHERE {sql_where} ORDER BY {LOG_ORDER} LIMIT ? OFFSET ?", [*params, limit, offset]
        )
        total = ix.query(f"SELECT count(*) FROM logs WHERE {sql_where}", params)[0][0] if count else None
        return owner, rows, total

    owner, rows, total = await asyncio.to_thread(read)
    if not owner and not rows and not total:
        # Not indexed yet (just created): the log knows it; unknown: 404.
        row = await execution_row(d, execution_id)
        owner = [(row[2], row[3])]
    ns, fid = owner[0] if owner else (None, None)
    return [log_json(r, ns, fid) for r in rows], total


TaskRunId = Annotated[str | None, QueryParameter(name="taskRunId")]
TaskId = Annotated[str | None, QueryParameter(name="taskId")]
Attempt = Annotated[int | None, QueryParameter(ge=0)]
OptionalPage = Annotated[int | None, QueryParameter(ge=1, le=1_000_000, description="1-based page")]
OptionalSize = Annotated[int | None, QueryParameter(ge=1, le=MAX_LINES, description="Lines per page")]


@get("/logs/{execution_id:str}", tags=["Logs"])
async def execution_logs(
    request: Request[Any, Any, Any],
    execution_id: FromPath[str],
    min_level: MinLevel = None,
    taskrun_id: TaskRunId = None,
    task_id: TaskId = None,
    attempt: Attempt = None,
    page: OptionalPage = None,
    size: OptionalSize = None,
) -> list[dict[str, Any]]:
    """An execution's log lines in order: a list, as Kestra (``page``/``size`` for a part of it)."""
    lines, _ = await read_logs(
        deps(request), execution_id, min_level, taskrun_id, task_id, attempt, page, size
    )
    return lines


@get("/logs/{execution_id:str}/paged", tags=["Logs"])
async def execution_logs_paged(
    request: Request[Any, Any, Any],
    execution_id: FromPath[str],
    page: Page = 1,
    size: Annotated[int, QueryParameter(ge=1, le=10_000)] = 1000,
    min_level: MinLevel = None,
    taskrun_id: TaskRunId = None,
    task_id: TaskId = None,
    attempt: Attempt = None,
    q: Annotated[str | None, QueryParameter(max_length=1000, description="Text in the message")] = None,
) -> dict[str, Any]:
    """A page of an execution's log lines in order, with how many match: ``{results, total}`` (the
    web UI's log view pages 100,000 lines through it)."""
    lines, total = await read_logs(
        deps(request), execution_id, min_level, taskrun_id, task_id, attempt, page, size, q, count=True
    )
    return {"results": lines, "total": total}


@get("/logs/{execution_id:str}/download", tags=["Logs"], media_type="text/plain")
async def download_logs(
    request: Request[Any, Any, Any],
    execution_id: FromPath[str],
    min_level: MinLevel = None,
    taskrun_id: TaskRunId = None,
    task_id: TaskId = None,
    attempt: Attempt = None,
) -> Response[str]:
    """An execution's log lines as text, one per line: ``timestamp level message`` (a download)."""
    lines, _ = await read_logs(
        deps(request), execution_id, min_level, taskrun_id, task_id, attempt, None, None
    )
    text = "".join(f"{x['timestamp']} {x['level']} {x['message']}\n" for x in lines)
    return Response(
        text,
        media_type="text/plain",
        headers={"Content-Disposition": f'attachment; filename="{execution_id}.log"'},
    )


@get("/logs/search", tags=["Logs"])
async def search_logs(
    request: Request[Any, Any, Any],
    page: Page = 1,
    size: Size = 100,
    namespace: FromQuery[str | None] = None,
    flow_id: FlowIdParam = None,
    min_level: MinLevel = None,
    q: Annotated[str | None, QueryParameter(description="Text in the message")] = None,
    start_date: Annotated[str | None, QueryParameter(name="startDate")] = None,
    end_date: Annotated[str | None, QueryParameter(name="endDate")] = None,
) -> dict[str, Any]:
    """Log lines across executions, newest first, filtered (the parameters and Kestra's
    ``filters[field][OPERATION]=value``) and paged: ``{results, total}``."""
    where = Where("true")
    where.namespace(namespace, "e.namespace")
    if flow_id:
        where.add("e.flow_id = ?", flow_id)
    level = level_num(min_level)
    if level is not None:
        where.add("l.level_num >= ?", level)
    if q:
        where.add("contains(lower(l.message), lower(?))", q)
    for cond, moment in (
        ("l.date >= ?", parse_date(start_date, "startDate")),
        ("l.date <= ?", parse_date(end_date, "endDate")),
    ):
        if moment is not None:
            where.add(cond, moment)
    filtered, more = filter_sql(request, LOGS)
    where.add(filtered, *more)
    total, rows = await paged(
        deps(request),
        "l.seq, l.execution_id, l.date, l.level, l.message, l.taskrun_id, l.task_id, l.attempt, "
        "e.namespace, e.flow_id",
        "logs l LEFT JOIN executions e ON e.id = l.execution_id",
        where.sql,
        where.params,
        "l.date DESC, l.seq DESC, l.execution_id DESC",  # a seq is unique within its execution
        page,
        size,
    )
    # Kestra's CursorOrOffsetPagedResults: this search pages by offset
    return {"results": [log_json(r[:8], r[8], r[9]) for r in rows], "total": total, "type": "OFFSET"}


@get("/logs/{execution_id:str}/follow", tags=["Logs"])
async def follow_logs(
    request: Request[Any, Any, Any],
    execution_id: FromPath[str],
    min_level: MinLevel = None,
) -> ServerSentEvent:
    """Server-Sent Events: every log line of the execution from the first, live, until it has ended."""
    d = deps(request)
    level = level_num(min_level) or 0
    # the log when the projection has not caught up yet (an execution just created or replayed)
    _, _, ns, fid = await execution_row(d, execution_id)

    async def ended() -> bool:
        try:  # the log when the projection lags: a just-started execution has not ended
            state = (await execution_row(d, execution_id))[1]
        except ApiError:  # deleted meanwhile
            return True
        return state in TERMINAL

    async def gen() -> AsyncGenerator[ServerSentEventMessage, None]:
        async with contextlib.aclosing(tail_logs(d.store, execution_id)) as tail:
            quiet = 0
            async for item in tail:
                if item is None:
                    quiet += 1
                    # ended, and nothing more came for a moment (lines are fire-and-forget)
                    if quiet >= 2 and await ended():
                        return
                    continue
                quiet = 0
                seq, line = item
                if LEVELS.get(line.level.upper(), 2) < level:
                    continue
                row = (
                    seq,
                    execution_id,
                    line.date,
                    line.level,
                    line.message,
                    line.taskrun_id,
                    line.task_id,
                    line.attempt,
                )
                yield ServerSentEventMessage(
                    data=json.dumps(log_json(row, ns, fid)), event="log", id=str(seq)
                )

    return ServerSentEvent(gen())


ROUTES = [
    execution_logs,
    execution_logs_paged,
    download_logs,
    search_logs,
    follow_logs,
]
