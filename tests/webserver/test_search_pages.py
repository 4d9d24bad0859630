"""The executions search pages by key (ids first, documents by id afterwards) and seeks deep pages
(the rows before a boundary skipped): every sort, direction, filter and page gives what the plain
``SELECT doc ... ORDER BY ... LIMIT ... OFFSET`` gives, ties and NULLs included."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.core import events as ev
from eventstore.indexer import Indexer, Msg
from webserver import query
from webserver.app import Auth, create_app
from webserver.routes.executions import SORTS

pytestmark = pytest.mark.anyio

STATES = ["SUCCESS", "FAILED", "RUNNING", "WARNING"]


def _msgs(n: int) -> list[Msg]:
    out = []
    for i in range(n):
        eid = f"P{(i * 37) % n:05d}x{i:016d}"  # ids not in insertion order
        start = f"2026-01-0{1 + i % 3}T00:00:0{i % 2}Z"  # few distinct dates: many ties
        events: list[Any] = [
            ev.ExecutionCreated(
                date=start,
                execution_id=eid,
                namespace=f"pages.team{i % 4}" + (".sub" if i % 5 == 0 else ""),
                flow_id=f"flow{i % 3}",
                flow_revision=1,
                labels={"env": "prod" if i % 2 else "dev"},
            ),
            ev.ExecutionStateChanged(date=start, state="RUNNING"),
        ]
        state = STATES[i % len(STATES)]
        if state != "RUNNING":  # no end date, no duration: NULLS LAST
            events.append(ev.ExecutionStateChanged(date=f"2026-01-04T00:00:{i % 7:02d}Z", state=state))
        out.append(Msg("EVENTS_0", i + 1, f"ev.0.{eid}", ev.encode(events)))
    return out


@pytest.fixture
async def indexed(tmp_path: Path) -> AsyncIterator[tuple[Indexer, httpx.AsyncClient]]:
    ix = Indexer(None, tmp_path / "pages.duckdb")  # type: ignore[arg-type]  # batch path only
    msgs = _msgs(90)
    await ix.apply(msgs[:50])
    await ix.apply(msgs[50:])
    app: Any = create_app(None, ix, Auth())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as c:
        yield ix, c
    ix.close()


FILTERS: list[tuple[dict[str, Any], str, list[Any]]] = [
    ({}, "true", []),
    (
        {"namespace": "pages.team1"},
        "(namespace = ? OR starts_with(namespace, ?))",
        ["pages.team1", "pages.team1."],
    ),
    ({"state": ["FAILED", "RUNNING"]}, "state IN ('FAILED', 'RUNNING')", []),
    ({"q": "team2"}, "contains(search, 'team2')", []),
    (
        {"labels": "env:prod", "flowId": "flow2"},
        "list_contains(labels, 'env:prod') AND flow_id = 'flow2'",
        [],
    ),
]


# 7: every page but the first seeks; "" as the sample: the boundary is the exact quantile, so the
# seek skips rows on every deep page (a sample of a few rows misses and falls back as often)
SEEKS = [(query.SEEK_FROM, query.SEEK_SAMPLE), (7, query.SEEK_SAMPLE), (7, "")]


@pytest.mark.parametrize(("seek_from", "sample"), SEEKS)
@pytest.mark.parametrize("field", sorted(SORTS))
async def test_every_page_is_the_plain_querys_page(
    indexed: tuple[Indexer, httpx.AsyncClient],
    field: str,
    seek_from: int,
    sample: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(query, "SEEK_FROM", seek_from)
    monkeypatch.setattr(query, "SEEK_SAMPLE", sample)
    ix, c = indexed
    column = SORTS[field]
    for direction in ("asc", "desc"):
        for params, where, args in FILTERS:
            order = f"{column} {direction.upper()} NULLS LAST, id"
            total = ix.query(f"SELECT count(*) FROM executions WHERE {where}", args)[0][0]
            assert total > 7, params  # several pages
            for page in range(1, total // 7 + 3):  # and one past the end
                expected = [
                    json.loads(r[0])
                    for r in ix.query(
                        f"SELECT doc FROM executions WHERE {where} ORDER BY {order} LIMIT 7 OFFSET ?",
                        [*args, (page - 1) * 7],
                    )
                ]
                r = await c.get(
                    "/api/v1/executions/search",
                    params={**params, "sort": f"{field}:{direction}", "page": page, "size": 7},
                )
                assert r.status_code == 200, r.text
                assert r.json() == {"results": expected, "total": total}, (params, field, direction, page)


@pytest.mark.parametrize(("column", "descending"), [("start_date", True), ("end_date", False), ("id", True)])
async def test_a_deep_page_skips_the_rows_before_its_boundary(
    indexed: tuple[Indexer, httpx.AsyncClient], column: str, descending: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(query, "SEEK_SAMPLE", "")  # the exact quantile: no miss on 90 rows
    ix, _ = indexed
    order = f"{column} {'DESC' if descending else 'ASC'} NULLS LAST, id"
    page = query.KeyedPage("executions", "id", "doc", "true", [], order, 7, 63)
    skipped = ix.db.read(lambda run: page.skip(run, column, descending, 90))
    assert skipped is not None and 0 < skipped[2] <= 63, skipped
