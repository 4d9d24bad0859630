"""The SQL tasks (DuckDB, SQLite) run for real on a rendering context: fetch modes, files, parameters,
interruption; and what the loader refuses of them."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path

import pytest
from sql_harness import RenderingContext, registry, run_task

from engine.core.errors import FlowValidationError, TaskFailed
from engine.loader.loader import load_flow
from plugins.serdes.ion import read_values

pytestmark = pytest.mark.anyio
DUCK = "io.kestra.plugin.jdbc.duckdb.Query"
LITE = "io.kestra.plugin.jdbc.sqlite.Query"
CSV = "id,name,amount\n1,Ada,10.5\n2,Bob,20\n3,Cy,7\n"


@pytest.fixture
def rctx(tmp_path: Path) -> RenderingContext:
    work = tmp_path / "work"
    work.mkdir()
    return RenderingContext(work)


async def ion_rows(ctx: RenderingContext, uri: str) -> list[object]:
    return list(read_values(io.StringIO((await ctx.files.get(uri)).decode())))


async def test_duckdb_fetch_one_over_an_input_file(rctx: RenderingContext) -> None:
    sql = "SELECT name, amount FROM read_csv_auto('{{ workingDir }}/in.csv') ORDER BY amount DESC"
    result = await run_task(DUCK, {"sql": sql, "inputFiles": {"in.csv": CSV}, "fetchType": "FETCH_ONE"}, rctx)
    assert result.outputs == {"row": {"name": "Bob", "amount": 20.0}, "size": 1}


async def test_duckdb_input_file_from_storage_and_relative_path(rctx: RenderingContext) -> None:
    uri = await rctx.files.put("kestra:///company/team/flow1/executions/e0/in.csv", CSV)
    props = {"sql": "SELECT count(*) AS n FROM 'data.csv'", "inputFiles": {"data.csv": uri}, "fetchOne": True}
    assert (await run_task(DUCK, props, rctx)).outputs["row"] == {"n": 3}


async def test_duckdb_fetch_and_store(rctx: RenderingContext) -> None:
    sql = (
        "SELECT i, i * 1.5::DECIMAL(10,2) AS d, TIMESTAMPTZ '2024-01-31 10:00:00+00' AS t, 'x' || i AS s "
        "FROM range(3) r(i)"
    )
    fetched = await run_task(DUCK, {"sql": sql, "fetchType": "FETCH"}, rctx)
    assert fetched.outputs["size"] == 3
    assert fetched.outputs["rows"][1] == {"i": 1, "d": 1.5, "t": "2024-01-31T10:00:00+00:00", "s": "x1"}
    stored = await run_task(DUCK, {"sql": sql, "fetchType": "STORE", "fetchSize": 2}, rctx)
    assert stored.outputs["size"] == 3 and stored.outputs["uri"].endswith(".ion")
    text = (await rctx.files.get(stored.outputs["uri"])).decode().splitlines()
    assert text[2] == '{"i":2,"d":3.00,"t":2024-01-31T10:00:00Z,"s":"x2"}'
    rows = await ion_rows(rctx, stored.outputs["uri"])
    assert [r["s"] for r in rows] == ["x0", "x1", "x2"]  # type: ignore[index]


async def test_duckdb_none_returns_no_rows(rctx: RenderingContext) -> None:
    result = await run_task(DUCK, {"sql": "SELECT 1"}, rctx)
    assert result.outputs == {}


async def test_duckdb_output_files_and_database_file(rctx: RenderingContext) -> None:
    sql = (
        "CREATE TABLE t AS SELECT * FROM read_csv_auto('in.csv');"
        "COPY (SELECT name FROM t WHERE amount > 8 ORDER BY id) "
        "TO '{{ outputFiles.out }}' (HEADER, DELIMITER ',')"
    )
    props = {"sql": sql, "inputFiles": {"in.csv": CSV}, "outputFiles": ["out"], "outputDbFile": True}
    result = await run_task(DUCK, props, rctx)
    out_uri = result.outputs["outputFiles"]["out"]
    assert (await rctx.files.get(out_uri)).decode().split() == ["name", "Ada", "Bob"]
    again = await run_task(
        DUCK,
        {
            "sql": "SELECT count(*) AS n FROM t",
            "databaseUri": result.outputs["databaseUri"],
            "fetchType": "FETCH_ONE",
        },
        rctx,
    )
    assert again.outputs["row"] == {"n": 3}


async def test_duckdb_named_parameters_leave_casts_alone(rctx: RenderingContext) -> None:
    props = {
        "sql": "SELECT :a::INTEGER + 1 AS x, :b AS y, '10'::INTEGER AS z",
        "parameters": {"a": "41", "b": "it's"},
        "fetchType": "FETCH_ONE",
    }
    assert (await run_task(DUCK, props, rctx)).outputs["row"] == {"x": 42, "y": "it's", "z": 10}
    with pytest.raises(TaskFailed, match="parameters has no 'c'"):
        await run_task(DUCK, {"sql": "SELECT :c", "parameters": {"a": 1}}, rctx)


async def test_duckdb_sql_error_fails_with_the_message(rctx: RenderingContext) -> None:
    with pytest.raises(TaskFailed, match=r"DuckDB: .*nope"):
        await run_task(DUCK, {"sql": "SELECT * FROM nope"}, rctx)


async def test_duckdb_refuses_network_urls_and_extensions(rctx: RenderingContext) -> None:
    with pytest.raises(TaskFailed, match="MotherDuck is not supported"):
        await run_task(DUCK, {"sql": "SELECT 1", "url": "jdbc:duckdb:md:db"}, rctx)
    with pytest.raises(TaskFailed, match="communityExtensions"):
        await run_task(DUCK, {"sql": "SELECT 1", "communityExtensions": ["h3"]}, rctx)


async def test_duckdb_long_query_is_interrupted_by_a_timeout(rctx: RenderingContext) -> None:
    sql = "SELECT sum(hash(a.range * b.range)) FROM range(1000000) a, range(1000000) b"
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):
            await run_task(DUCK, {"sql": sql, "fetchType": "FETCH_ONE"}, rctx)
    assert time.monotonic() - started < 10


async def test_sqlite_statements_fetch_and_database_round_trip(rctx: RenderingContext) -> None:
    sql = "CREATE TABLE t(a INTEGER, b TEXT); INSERT INTO t VALUES (1, 'x;y'), (2, 'z');"
    sql += "SELECT * FROM t ORDER BY a"
    first = await run_task(LITE, {"sql": sql, "fetchType": "FETCH", "outputDbFile": True}, rctx)
    assert first.outputs["rows"] == [{"a": 1, "b": "x;y"}, {"a": 2, "b": "z"}]
    db = first.outputs["databaseUri"]
    props = {
        "sql": "SELECT b FROM t WHERE a = :a",
        "sqliteFile": db,
        "parameters": {"a": 2},
        "fetchOne": True,
    }
    assert (await run_task(LITE, props, rctx)).outputs["row"] == {"b": "z"}
    stored = await run_task(LITE, {"sql": "SELECT * FROM t", "sqliteFile": db, "fetchType": "STORE"}, rctx)
    assert await ion_rows(rctx, stored.outputs["uri"]) == [{"a": 1, "b": "x;y"}, {"a": 2, "b": "z"}]


async def test_sqlite_after_sql_in_the_same_transaction(rctx: RenderingContext) -> None:
    props = {
        "sql": "CREATE TABLE q(id INTEGER, done INTEGER); INSERT INTO q VALUES (1, 0); SELECT id FROM q",
        "afterSQL": "UPDATE q SET done = 1",
        "url": "jdbc:sqlite:q.db",
        "fetchType": "FETCH",
    }
    assert (await run_task(LITE, props, rctx)).outputs["rows"] == [{"id": 1}]
    check = await run_task(
        LITE, {"sql": "SELECT done FROM q", "url": "jdbc:sqlite:q.db", "fetchOne": True}, rctx
    )
    assert check.outputs["row"] == {"done": 1}


async def test_sqlite_endless_query_is_interrupted(rctx: RenderingContext) -> None:
    sql = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) FROM c"
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await run_task(LITE, {"sql": sql, "fetchType": "FETCH_ONE"}, rctx)
    assert time.monotonic() - started < 5


def _flow(task: str) -> str:
    return "id: f\nnamespace: company.team\ntasks:\n  - id: q\n" + task


def test_loader_refuses_bad_values_unknown_and_unsupported_properties() -> None:
    reg = registry()
    with pytest.raises(FlowValidationError) as bad:
        load_flow(
            _flow(f"    type: {DUCK}\n    sql: SELECT 1\n    fetchType: ALL\n    autoCommt: true\n"),
            registry=reg,
        )
    text = str(bad.value)
    assert "fetchType" in text and "'STORE'" in text and "autoCommt" in text
    with pytest.raises(FlowValidationError, match=r"'outputFiles'.*not supported"):
        load_flow(
            _flow(
                "    type: io.kestra.plugin.jdbc.postgresql.Query\n    url: jdbc:postgresql://h/db\n"
                "    sql: SELECT 1\n    outputFiles: [out]\n"
            ),
            registry=reg,
        )
    flow = load_flow(
        _flow(f"    type: {DUCK}\n    sql: \"SELECT '{{{{ workingDir }}}}'\"\n    fetchType: STORE\n"),
        registry=reg,
    )
    assert flow.tasks[0].props["fetchType"] == "STORE"


async def test_fetch_is_bounded_and_the_temporary_database_removed(rctx: RenderingContext) -> None:
    with pytest.raises(TaskFailed, match="use fetchType: STORE"):
        await run_task(
            DUCK, {"sql": "SELECT repeat('x', 1000) AS s FROM range(5000)", "fetchType": "FETCH"}, rctx
        )
    await run_task(DUCK, {"sql": "CREATE TABLE t AS SELECT 1 AS a"}, rctx)
    assert not list(rctx.workdir.glob("*.db*"))


async def test_duckdb_memory_limit_is_bounded_and_can_be_raised(
    rctx: RenderingContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit = "SELECT current_setting('memory_limit') AS m"
    assert (await run_task(DUCK, {"sql": limit, "fetchOne": True}, rctx)).outputs["row"]["m"] in (
        "122.0 MiB",
        "128.0 MB",
    )
    monkeypatch.setenv("ENGINE_DUCKDB_MEMORY", "1GB")
    raised = await run_task(DUCK, {"sql": limit, "fetchOne": True}, rctx)
    assert raised.outputs["row"]["m"] in ("953.6 MiB", "1000.0 MB")
    monkeypatch.setenv("ENGINE_DUCKDB_MEMORY", "32MB")
    with pytest.raises(TaskFailed, match="ENGINE_DUCKDB_MEMORY"):
        await run_task(DUCK, {"sql": "SELECT list(range) FROM range(20000000)", "fetchOne": True}, rctx)


def test_a_bad_duckdb_memory_setting_names_the_variable() -> None:
    from engine.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match="ENGINE_DUCKDB_MEMORY='lots'"):
        Settings.from_env({"ENGINE_DUCKDB_MEMORY": "lots"})
    assert Settings.from_env({"ENGINE_DUCKDB_MEMORY": "2GB"}).duckdb_memory == "2GB"
