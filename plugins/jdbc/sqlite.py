"""``io.kestra.plugin.jdbc.sqlite.Query``: SQL on SQLite (the standard library's ``sqlite3``).

``url`` ``jdbc:sqlite:`` is an in-memory database; ``jdbc:sqlite:file.db`` a file (a relative path is
inside the working directory). ``sqliteFile`` (a ``kestra://`` database file) is downloaded under the
URL's file name and used; ``outputDbFile`` uploads the database file used (``databaseUri``), an
in-memory URL then becoming a file, as in Kestra. ``outputFiles`` and ``{{ workingDir }}`` as DuckDB.
Several statements run in order; the last one's rows are fetched. A task timeout or a kill interrupts
the query (``Connection.interrupt``).
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.core.errors import TaskFailed
from plugins.api import RunContext, TaskResult, runnable
from plugins.files import inside, put_task_file
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

TYPE = "io.kestra.plugin.jdbc.sqlite.Query"
PREFIXES = ("jdbc:sqlite:",)


class SqliteQuery(QueryProps, frozen=True, kw_only=True):
    sqliteFile: str | None = None
    outputDbFile: bool = False


def statements(sql: str) -> Iterator[str]:
    """The complete statements of ``sql`` (SQLite's own tokenizer decides where one ends)."""
    current = ""
    for piece in sql.split(";"):
        current += piece + ";"
        if sqlite3.complete_statement(current):
            if current.strip(" \t\r\n;"):
                yield current.strip()
            current = ""
    if current.strip(" \t\r\n;"):
        yield current.rstrip(";").strip()


def _is_memory(path: str) -> bool:
    p = path.strip().lower()
    return p in ("", ":memory:") or p.startswith("file::memory:") or "mode=memory" in p


def _database(props: SqliteQuery, workdir: Path) -> str | Path:
    path = strip_prefix(props.url, PREFIXES, "SQLite")
    if props.sqliteFile or props.outputDbFile:
        name = f"{uuid.uuid4().int % 10**19}.sqlite" if _is_memory(path) else Path(path).name
        return inside(workdir, name, "url")
    if _is_memory(path):
        return ":memory:"
    return Path(path) if Path(path).is_absolute() else inside(workdir, path, "url")


async def run(props: SqliteQuery, ctx: RunContext) -> TaskResult:
    props = await render_props(props, ctx)
    workdir = ctx.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    database = _database(props, workdir)
    if props.sqliteFile:
        assert isinstance(database, Path)
        await ctx.storage.download(props.sqliteFile.strip(), database)
    out_files = make_output_files(workdir, props.outputFiles)
    sql = await render_sql(ctx, props.sql, workdir, out_files) or ""
    after = await render_sql(ctx, props.afterSQL, workdir, out_files)
    mode = fetch_type(props)
    parts = list(statements(sql))
    if not parts:
        raise TaskFailed("sql: no SQL statement to run", retryable=False)
    bound = [bind_parameters(p, props.parameters, "?") for p in parts]
    after_bound = [bind_parameters(p, props.parameters, "?") for p in statements(after or "")]
    conn = sqlite3.connect(str(database), check_same_thread=False, isolation_level=None)
    scratch = Path(tempfile.mkdtemp(prefix=".engine-tmp-", dir=workdir))

    def work() -> Fetched:
        if after_bound:
            conn.execute("BEGIN")
        cursor = conn.cursor()
        for text, params in bound:
            cursor = conn.execute(text, params)
        fetched = fetch_result(cursor, mode, props.fetchSize, scratch)
        for text, params in after_bound:
            conn.execute(text, params)
        if after_bound:
            conn.execute("COMMIT")
        return fetched

    try:
        try:
            fetched = await interruptible(work, conn.interrupt, "sqlite-query")
        except sqlite3.Error as exc:
            raise TaskFailed(f"SQLite: {exc}", retryable=False) from None
        finally:
            conn.close()
        outputs: dict[str, Any] = await store_uri(ctx, fetched)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    outputs.update(outputs_of(await upload_output_files(ctx, out_files)))
    if props.outputDbFile and isinstance(database, Path) and database.exists():
        outputs["databaseUri"] = await put_task_file(ctx, database)
    return TaskResult(outputs=outputs)


SPECS = [
    runnable(
        TYPE,
        SqliteQuery,
        run,
        "Run SQL on SQLite (`url`, `sqliteFile`, `outputDbFile`); `fetchType` NONE/FETCH_ONE/FETCH/STORE "
        "→ outputs `row`, `rows`, `uri` (ION), `size`.",
        render=False,
    ),
]
