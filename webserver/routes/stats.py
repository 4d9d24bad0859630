"""``/api/v1/stats``: execution counts and durations per day (Kestra's DailyExecutionStatistics)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from litestar import Request, post
from litestar.params import JSONBody

from engine.core.states import State
from webserver.http import bad, deps
from webserver.query import execution_filters, parse_date


class DailyQuery(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    namespace: str | None = None
    flow_id: str | None = None
    start_date: str | None = None
    end_date: str | None = None


def empty_days(start: datetime, end: datetime) -> dict[str, dict[str, Any]]:
    """One item per day of the range, every count zero."""
    days: dict[str, dict[str, Any]] = {}
    day = start.date()
    while day <= end.date():
        days[day.isoformat()] = {
            "startDate": day.isoformat(),
            "executionCounts": {s.value: 0 for s in State},
            "duration": {"count": 0, "sum": 0.0, "min": None, "max": None, "avg": None},
        }
        day += timedelta(days=1)
    return days


@post("/stats/executions/daily", status_code=200, tags=["Stats"])
async def daily_stats(request: Request[Any, Any, Any], data: JSONBody[DailyQuery]) -> list[dict[str, Any]]:
    """Executions per day and state, with durations (ms): Kestra's DailyExecutionStatistics."""
    start = parse_date(data.start_date, "startDate") or (
        datetime.now(UTC).replace(tzinfo=None) - timedelta(days=30)
    )
    end = parse_date(data.end_date, "endDate") or datetime.now(UTC).replace(tzinfo=None)
    if end < start:
        raise bad("endDate is before startDate")
    if end - start > timedelta(days=3660):
        raise bad("the range is longer than 10 years: narrow startDate/endDate")
    where, params = execution_filters(
        data.namespace, data.flow_id, None, None, start.isoformat(), end.isoformat(), None, None
    )
    rows = await deps(request).indexer.aquery(
        f"SELECT CAST(start_date AS DATE) AS day, state, count(*), avg(duration_ms), min(duration_ms), "
        f"max(duration_ms), sum(duration_ms) FROM executions WHERE {where} GROUP BY ALL ORDER BY day",
        params,
    )
    days = empty_days(start, end)
    for d_, state, n, _avg, lo, hi, total in rows:
        item = days.get(d_.isoformat())
        if item is None:
            continue
        item["executionCounts"][state] = n
        dur = item["duration"]
        if total is not None:
            dur["sum"] += total
            dur["count"] += n
            dur["min"] = lo if dur["min"] is None else min(dur["min"], lo)
            dur["max"] = hi if dur["max"] is None else max(dur["max"], hi)
    for item in days.values():
        dur = item["duration"]
        # Durations are in whole milliseconds: round so that the order a sum is taken in (which a
        # rebuilt projection may change) never shows in the answer.
        dur["sum"] = round(dur["sum"], 3)
        dur["avg"] = round(dur["sum"] / dur["count"], 3) if dur["count"] else None
    return list(days.values())


ROUTES = [daily_stats]
