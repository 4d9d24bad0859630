"""``io.kestra.plugin.jdbc.duckdb.Query``: SQL on an embedded DuckDB, as Kestra's plugin-jdbc-duckdb.

- ``url`` ``jdbc:duckdb:`` (the default): a fresh database file in the task's working directory, as
  Kestra does (DuckDB spills to disk rather than holding a large table in memory);
  ``jdbc:duckdb:/abs/file.db``: that file, and its directory is the working directory (Kestra's rule);
  a relative path is taken inside the working directory. ``databaseUri`` (a ``kestra://`` DuckDB file)
  is downloaded and opened; ``outputDbFile`` uploads the database file afterwards (``databaseUri``).
- ``inputFiles`` are written into the working directory, which is DuckDB's ``file_search_path`` (so
  ``read_csv_auto('in.csv')`` works) and ``{{ workingDir }}`` in the SQL; ``outputFiles`` names files
  the SQL writes (``COPY ... TO '{{ outputFiles.out }}'``), uploaded after (``outputFiles`` output).
- DuckDB's ``memory_limit`` is ``ENGINE_DUCKDB_MEMORY`` (128MB by default; DuckDB's own default is 80%
  of the machine, inside the worker's process); the SQL can raise it (``SET memory_limit = '2GB';``).
- ``communityExtensions`` would download extensions from the internet: refused unless empty.
- A task timeout or a kill interrupts the running query (``Connection.interrupt``).
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from engine.core.errors import TaskFailed
from engine.settings import settings
from plugins.api import RunContext, TaskResult, runnable
from plugins.files import put_task_file
from plugins.jdbc.common import Fetched, QueryProps, bind_parameters, fetch_result, fetch_type, interruptible
from plugins.jdbc.common import store_result as store_uri
from plugins.jdbc.embedded import (
    make_output_files,
    outputs_of,
    render_props,
    render_sql,
    strip_prefix,
    upload_output_files,
)
from plugins.scripts.common import write_input_files

TYPE = "io.kestra.plugin.jdbc.duckdb.Query"
PREFIXES = ("jdbc:duckdb:",)


class DuckDbQuery(QueryProps, frozen=True, kw_only=True):
    inputFiles: dict[str, Any] | str | None = None
    databaseUri: str | None = None
    outputDbFile: bool = False
    communityExtensions: list[str] | None = None


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _database(props: DuckDbQuery, workdir: Path) -> tuple[Path, Path]:
    """(database file, working directory) as Kestra's DuckDB Query picks them."""
    path = strip_prefix(props.url, PREFIXES, "DuckDB")
    if path.startswith("md:") or path.startswith("motherduck:"):
        raise TaskFailed("url: MotherDuck is not supported (no network service is reached)", retryable=False)
    if path in ("", ":memory:"):
        return workdir / f"{uuid.uuid4().int % 10**19}.db", workdir
    db = Path(path)
    if db.is_absolute():
        db.parent.mkdir(parents=True, exist_ok=True)
        return db, db.parent
    return workdir / db, workdir


def _temporary(props: DuckDbQuery) -> bool:
    """The database is this run's own (the default URL, no database file in or out)."""
    path = strip_prefix(props.url, PREFIXES, "DuckDB")
    return path in ("", ":memory:") and not props.databaseUri and not props.outputDbFile


async def run(props: DuckDbQuery, ctx: RunContext) -> TaskResult:
    import duckdb

    props = await render_props(props, ctx)
    if props.communityExtensions:
        raise TaskFailed(
            f"communityExtensions ({props.communityExtensions}) is not supported: extensions are not "
            "downloaded — use the extensions the duckdb package bundles (parquet, json, icu...)",
            retryable=False,
        )
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    db_file, workdir = _database(props, ctx.workdir)
    await write_input_files(workdir, props.inputFiles, ctx.storage)
    if props.databaseUri:
        db_file = workdir / f"{uuid.uuid4().hex}.db"
        await ctx.storage.download(props.databaseUri.strip(), db_file)
    out_files = make_output_files(workdir, props.outputFiles)
    sql = await render_sql(ctx, props.sql, workdir, out_files) or ""
    after = await render_sql(ctx, props.afterSQL, workdir, out_files)
    sql, params = bind_parameters(sql, props.parameters, "?")
    after_sql, after_params = bind_parameters(after, props.parameters, "?") if after else (None, [])
    mode = fetch_type(props)
    memory = settings().duckdb_memory
    conn = duckdb.connect(str(db_file))
    scratch = Path(tempfile.mkdtemp(prefix=".engine-tmp-", dir=ctx.workdir))

    def work() -> Fetched:
        conn.execute(f"SET file_search_path = {_literal(str(workdir))}")
        # DuckDB's own default is 80% of the machine's memory, in the worker's process: a bounded
        # default keeps one query from starving the worker (DuckDB spills to disk past it); the SQL
        # can raise it (SET memory_limit = '2GB').
        conn.execute(f"SET memory_limit = {_literal(memory)}")
        if props.timeZoneId:
            conn.execute(f"SET TimeZone = {_literal(props.timeZoneId)}")
        if after_sql is not None:
            conn.execute("BEGIN TRANSACTION")
        cursor = conn.execute(sql, params) if params else conn.execute(sql)
        fetched = fetch_result(cursor, mode, props.fetchSize, scratch)
        if after_sql is not None:
            conn.execute(after_sql, after_params) if after_params else conn.execute(after_sql)
            conn.execute("COMMIT")
        return fetched

    try:
        try:
            fetched = await interruptible(work, conn.interrupt, "duckdb-query")
        except duckdb.Error as exc:
            hint = ""
            if isinstance(exc, duckdb.OutOfMemoryException):
                hint = (
                    f" — the query may use {memory} (ENGINE_DUCKDB_MEMORY): raise it for this query "
                    "with SET memory_limit = '1GB'; before it, or for every query with ENGINE_DUCKDB_MEMORY"
                )
            raise TaskFailed(f"DuckDB: {exc}{hint}", retryable=False) from None
        finally:
            conn.close()
        outputs = await store_uri(ctx, fetched)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if _temporary(props):  # inside a WorkingDirectory, the next tasks' globs would see it
            for leftover in (db_file, db_file.with_name(db_file.name + ".wal")):
                leftover.unlink(missing_ok=True)
    outputs.update(outputs_of(await upload_output_files(ctx, out_files)))
    if props.outputDbFile:
        outputs["databaseUri"] = await put_task_file(ctx, db_file)

    if mode != "NONE":
        ctx.log("DEBUG", f"{mode}: {outputs.get('size', 0)} rows")
    return TaskResult(outputs=outputs)


SPECS = [
    runnable(
        TYPE,
        DuckDbQuery,
        run,
        "Run SQL on an embedded DuckDB (`inputFiles`, `{{ workingDir }}`, `outputFiles`); `fetchType` "
        "NONE/FETCH_ONE/FETCH/STORE → outputs `row`, `rows`, `uri` (ION), `size`.",
        render=False,
    ),
]
