"""The DuckDB file of the projection: its schema version, one write transaction at a time, reads on
per-thread cursors, and compaction (a checkpoint and a reopen) that readers wait out.

Table ``meta`` holds the last applied sequence of each source stream, written in the same
transaction as the rows, so a restart neither loses nor doubles a row.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from eventstore.indexer.sql import Statement, add, merge

log = logging.getLogger(__name__)

T = TypeVar("T")
Run = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]  # rows of one statement

SCHEMA_VERSION = 4  # bump when a table or a document changes: older files are rebuilt from the log
SCHEMA_KEY = "__schema__"  # its row in meta
META = """
CREATE TABLE IF NOT EXISTS meta (stream VARCHAR PRIMARY KEY, seq BIGINT NOT NULL);
"""
UPSERT_META = merge("meta", ["stream", "seq"], ["stream"])


def meta_statement(meta: dict[str, int], out: list[Statement]) -> None:
    """The last sequence of each stream in the batch: in its transaction, after its rows."""
    add(out, UPSERT_META, meta.items(), 2)


class Database:
    """One DuckDB file: ``write`` runs one transaction at a time, ``query`` reads committed data."""

    def __init__(self, path: Path, schema: str) -> None:
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = duckdb.connect(str(self.path))
        self._migrate(schema)
        self._local = threading.local()
        self.write_lock = threading.Lock()
        self._gen = 0  # bumped by compact(): thread-local cursors of an older connection are stale
        self._users = 0  # queries and writes in progress (compact waits for none)
        self._exclusive = False
        self._gate = threading.Condition()
        self.compactions = 0
        self.version = 0  # committed writes so far: what a remembered result was computed on

    def _migrate(self, schema: str) -> None:
        """Create the tables; a file of another schema version is emptied and rebuilt from the log."""
        tables = {
            r[0] for r in self.conn.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }
        version = None
        if "meta" in tables:
            rows = self.conn.execute("SELECT seq FROM meta WHERE stream = ?", [SCHEMA_KEY]).fetchall()
            version = rows[0][0] if rows else None
        if tables and version != SCHEMA_VERSION:
            log.warning(
                "indexer: %s has schema %s, not %s: rebuilding it from the log",
                self.path,
                version,
                SCHEMA_VERSION,
            )
            for table in tables:
                self.conn.execute(f'DROP TABLE IF EXISTS "{table}"')
        self.conn.execute(META + schema)
        self.conn.execute(
            "INSERT INTO meta VALUES (?, ?) ON CONFLICT (stream) DO UPDATE SET seq = excluded.seq",
            [SCHEMA_KEY, SCHEMA_VERSION],
        )

    def stored_seqs(self) -> dict[str, int]:
        """The last applied sequence of each source stream."""
        rows = self.query("SELECT stream, seq FROM meta WHERE stream <> ?", [SCHEMA_KEY])
        return {str(s): int(q) for s, q in rows}

    def write(self, statements: list[Statement]) -> None:
        """One transaction running ``statements`` (built on the event loop, run in a thread).

        This thread does nothing else: every Python step it takes needs the GIL, which the event
        loop (executor, worker) holds most of the time under load, and every ``execute`` hands the
        GIL back and waits for it again once DuckDB is done.
        """
        with self.write_lock, self._shared():
            cur = self._cursor()
            cur.execute("BEGIN TRANSACTION")
            try:
                for sql, params in statements:
                    cur.execute(sql, params)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            self.version += 1

    def checkpoint(self) -> None:
        """Fold DuckDB's write-ahead log into the table files (reads get faster)."""
        with self.write_lock, self._shared():
            self._cursor().execute("FORCE CHECKPOINT")

    def compact(self) -> None:
        """Checkpoint and reopen the file: scans no longer pay for the version data of bulk inserts.

        Waits for the queries in progress; new ones wait (a few ms) until the file is open again.
        """
        with self.write_lock:
            with self._gate:
                self._exclusive = True
                while self._users:
                    self._gate.wait()
            try:
                self.conn.execute("FORCE CHECKPOINT")
                self.conn.close()  # closes every cursor of this connection too
                self.conn = duckdb.connect(str(self.path))
                self._gen += 1
                self.compactions += 1
            finally:
                with self._gate:
                    self._exclusive = False
                    self._gate.notify_all()

    @contextlib.contextmanager
    def _shared(self) -> Iterator[None]:
        with self._gate:
            while self._exclusive:
                self._gate.wait()
            self._users += 1
        try:
            yield
        finally:
            with self._gate:
                self._users -= 1
                if not self._users:
                    self._gate.notify_all()

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        cur: duckdb.DuckDBPyConnection | None = getattr(self._local, "cur", None)
        if cur is None or getattr(self._local, "gen", -1) != self._gen:
            cur = self.conn.cursor()
            self._local.cur, self._local.gen = cur, self._gen
        return cur

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """Rows of one read-only statement, on this thread's cursor (committed data only)."""
        with self._shared():
            return self._cursor().execute(sql, list(params or [])).fetchall()

    def read(self, steps: Callable[[Run], T]) -> T:
        """``steps(run)``: statements whose parameters depend on earlier rows, run on this thread's
        cursor in one read transaction, so that they all see the same committed data."""

        def run(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
            return cur.execute(sql, list(params)).fetchall()

        with self._shared():
            cur = self._cursor()
            cur.execute("BEGIN TRANSACTION")
            try:
                return steps(run)
            finally:
                cur.execute("ROLLBACK")  # it wrote nothing; ends a failed transaction as well

    def close(self) -> None:
        with contextlib.suppress(duckdb.Error):
            self.conn.close()
