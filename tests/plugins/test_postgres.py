"""io.kestra.plugin.jdbc.postgresql.Query against a real PostgreSQL that this module starts (pg_server)."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_server import PASSWORD, USER, PgServer
from sql_harness import RenderingContext, run_task

from engine.core.errors import TaskFailed
from plugins.serdes.ion import read_values

pytestmark = pytest.mark.anyio
PG = "io.kestra.plugin.jdbc.postgresql.Query"
BINDIR, WHY = PgServer.find()


@pytest.fixture(scope="module")
def pg() -> Iterator[PgServer]:
    if BINDIR is None:
        pytest.fail(f"{WHY} (.ci/deps installs postgresql)")
    server = PgServer(BINDIR)
    try:
        server.start()
        yield server
    finally:
        server.stop()
    assert server.proc is not None and server.proc.poll() is not None


@pytest.fixture
def rctx(tmp_path: Path) -> RenderingContext:
    work = tmp_path / "work"
    work.mkdir()
    return RenderingContext(work)


def props(pg: PgServer, sql: str, **more: object) -> dict[str, object]:
    return {"url": pg.url, "username": USER, "password": PASSWORD, "sql": sql, **more}


async def test_fetch_one_and_fetch_with_postgres_types(pg: PgServer, rctx: RenderingContext) -> None:
    sql = (
        "SELECT 1::int AS i, 2.50::numeric AS n, 'Ada'::text AS t, "
        "TIMESTAMPTZ '2024-01-31 10:00:00+00' AS ts, "
        "DATE '2024-02-01' AS d, '{\"a\": [1, 2]}'::jsonb AS j, ARRAY[1,2] AS arr, "
        "'00000000-0000-0000-0000-000000000001'::uuid AS u, '\\x6869'::bytea AS b, NULL AS z"
    )
    one = await run_task(PG, props(pg, sql, fetchType="FETCH_ONE", timeZoneId="UTC"), rctx)
    assert one.outputs["size"] == 1
    assert one.outputs["row"] == {
        "i": 1, "n": 2.5, "t": "Ada", "ts": "2024-01-31T10:00:00+00:00", "d": "2024-02-01",
        "j": {"a": [1, 2]}, "arr": [1, 2], "u": "00000000-0000-0000-0000-000000000001", "b": "aGk=",
        "z": None,
    }  # fmt: skip
    many = await run_task(PG, props(pg, "SELECT g FROM generate_series(1, 3) g", fetchType="FETCH"), rctx)
    assert many.outputs == {"rows": [{"g": 1}, {"g": 2}, {"g": 3}], "size": 3}


async def test_store_streams_a_large_result_through_a_server_cursor(
    pg: PgServer, rctx: RenderingContext
) -> None:
    sql = "SELECT g AS id, md5(g::text) AS h, (g % 7)::numeric / 4 AS q FROM generate_series(1, 50000) g"
    result = await run_task(PG, props(pg, sql, fetchType="STORE", fetchSize=1000), rctx)
    assert result.outputs["size"] == 50000
    data = (await rctx.files.get(result.outputs["uri"])).decode()
    rows = list(read_values(io.StringIO(data)))
    assert len(rows) == 50000
    assert rows[-1]["id"] == 50000 and len(rows[-1]["h"]) == 32
    assert (
        data.splitlines()[2] == '{"id":3,"h":"eccbc87e4b5ce2fe28308fd9f2a7baf3","q":0.75000000000000000000}'
    )


async def test_statements_parameters_and_after_sql(pg: PgServer, rctx: RenderingContext) -> None:
    await run_task(
        PG, props(pg, "DROP TABLE IF EXISTS jobs; CREATE TABLE jobs(id int, name text, done bool)"), rctx
    )
    insert = "INSERT INTO jobs VALUES (1, 'a%b', false), (2, :name, false)"
    await run_task(PG, props(pg, insert, parameters={"name": "it's"}), rctx)
    pick = props(
        pg,
        "SELECT id, name FROM jobs WHERE name LIKE '%' || :frag || '%' AND NOT done ORDER BY id",
        afterSQL="UPDATE jobs SET done = true WHERE id = :id",
        fetchType="FETCH",
    )
    pick["parameters"] = {"frag": "a%", "id": 1}
    first = await run_task(PG, pick, rctx)
    assert first.outputs["rows"] == [{"id": 1, "name": "a%b"}]
    left = await run_task(PG, props(pg, "SELECT id FROM jobs WHERE NOT done", fetchType="FETCH"), rctx)
    assert left.outputs["rows"] == [{"id": 2}]


async def test_wrong_password_and_bad_url_fail_clearly(pg: PgServer, rctx: RenderingContext) -> None:
    with pytest.raises(TaskFailed, match="password authentication failed"):
        await run_task(PG, {**props(pg, "SELECT 1"), "password": "wrong"}, rctx)
    with pytest.raises(TaskFailed, match="not a PostgreSQL JDBC URL"):
        await run_task(PG, {**props(pg, "SELECT 1"), "url": "postgres://x"}, rctx)
    with pytest.raises(TaskFailed, match="'foo' is not supported"):
        await run_task(PG, {**props(pg, "SELECT 1"), "url": pg.url + "?foo=1"}, rctx)


async def test_timeout_cancels_the_query_on_the_server(pg: PgServer, rctx: RenderingContext) -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):
            await run_task(PG, props(pg, "SELECT pg_sleep(60), 'engine-sleeper'"), rctx)
    assert time.monotonic() - started < 10
    busy = (
        "SELECT count(*) AS n FROM pg_stat_activity "
        "WHERE query LIKE '%engine-sleeper%' AND pid <> pg_backend_pid()"
    )
    for _ in range(50):
        left = await run_task(PG, props(pg, busy, fetchType="FETCH_ONE"), rctx)
        if left.outputs["row"] == {"n": 0}:
            break
        await asyncio.sleep(0.1)
    assert left.outputs["row"] == {"n": 0}
