"""Table ``deleted_executions``: executions deleted through the API (stream ``TOMBSTONES``).

The log keeps a deleted execution's events; its tombstone makes the projection drop its rows and
keep them dropped, through later messages and rebuilds alike.
"""

from __future__ import annotations

import msgspec
from nats.js import api as jsapi
from nats.js.errors import APIError

from eventstore.indexer.batch import Batch, Msg
from eventstore.indexer.db import Database
from eventstore.indexer.sql import Statement
from eventstore.store import Store

TOMBSTONES = "TOMBSTONES"  # tomb.exec.<execution>: an execution deleted through the API
SCHEMA = """
CREATE TABLE IF NOT EXISTS deleted_executions (id VARCHAR PRIMARY KEY, seq BIGINT NOT NULL);
"""


async def ensure_streams(store: Store) -> None:
    """The TOMBSTONES stream (one message per execution deleted through the API)."""
    cfg = jsapi.StreamConfig(
        name=TOMBSTONES,
        subjects=["tomb.>"],
        storage=jsapi.StorageType.FILE,
        num_replicas=store.replicas,
        allow_direct=True,
        duplicate_window=120,
    )
    try:
        await store.js.add_stream(cfg)
    except APIError as exc:
        if exc.err_code != 10058:
            raise
        await store.js.update_stream(cfg)


async def delete_execution(store: Store, execution_id: str, delete_logs: bool = True) -> None:
    """Record that an execution is deleted: the projection drops its rows (and keeps them dropped)."""
    body = msgspec.json.encode({"execution_id": execution_id, "delete_logs": delete_logs})
    await store.js.publish(
        f"tomb.exec.{execution_id}", body, headers={"Nats-Msg-Id": f"{execution_id}:deleted"}, timeout=10
    )


def load(db: Database) -> set[str]:
    """The executions deleted so far (messages about them are skipped before any row is built)."""
    return {r[0] for r in db.query("SELECT id FROM deleted_executions")}


def apply(batch: Batch, m: Msg, deleted: set[str]) -> None:
    try:
        body = msgspec.json.decode(m.data)
        execution_id = str(body["execution_id"])
        delete_logs = bool(body.get("delete_logs", True))
    except (msgspec.DecodeError, KeyError, TypeError):
        return
    deleted.add(execution_id)
    batch.deleted[execution_id] = (m.seq, delete_logs)
    batch.states.pop(execution_id, None)
    batch.touched.pop(execution_id, None)
    if delete_logs:
        batch.logs = [row for row in batch.logs if row[1] != execution_id]


def statements(batch: Batch, out: list[Statement]) -> None:
    """First in the transaction: the rows of earlier batches go; this batch has none of them."""
    for execution_id, (seq, delete_logs) in batch.deleted.items():
        out.append(("DELETE FROM executions WHERE id = ?", [execution_id]))
        out.append(("DELETE FROM taskruns WHERE execution_id = ?", [execution_id]))
        if delete_logs:
            out.append(("DELETE FROM logs WHERE execution_id = ?", [execution_id]))
        out.append(("INSERT OR IGNORE INTO deleted_executions VALUES (?, ?)", [execution_id, seq]))
