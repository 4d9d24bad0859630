"""The DuckDB projection against a real nats-server and a running engine."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from engine.aio import stop_tasks
from engine.core import events as ev
from eventstore.indexer import SWITCH_INTERVAL, Indexer, Msg, delete_execution
from eventstore.store import Store

pytestmark = pytest.mark.anyio

TABLES = {
    "executions": "id",
    "taskruns": "id",
    "logs": "execution_id, seq",  # a line stored with its end has a seq unique in its execution
    "flow_revisions": "seq",
    "flows": "namespace, flow_id",
    "deleted_executions": "id",
    "meta": "stream",
}


def dump(ix: Indexer) -> dict[str, list[tuple[Any, ...]]]:
    return {t: ix.query(f"SELECT * FROM {t} ORDER BY {k}") for t, k in TABLES.items()}


@asynccontextmanager
async def engine(nats_url: str, home: Path) -> AsyncIterator[Any]:
    from engine.runtime import Runtime

    async with Runtime(nats_url=nats_url, home=home) as rt:
        roles = [asyncio.create_task(rt.executor().run()), asyncio.create_task(rt.worker().run())]
        try:
            yield rt
        finally:
            await stop_tasks(roles)


async def run_flow(rt: Any, source: str, inputs: dict[str, Any] | None = None) -> Any:
    from engine.ids import new_execution_id
    from engine.inputs import resolve_inputs

    flow = await rt.flows.deploy(source)
    eid = new_execution_id()
    resolved = resolve_inputs(flow, inputs or {})
    return await rt.wait_terminal(
        eid, on_start=lambda: rt.create_execution(flow, resolved, execution_id=eid), timeout=15
    )


def flow_source(ns: str, fid: str = "hello", n: int = 3, fail: bool = False) -> str:
    tasks = "".join(
        f"""
  - id: log{i}
    type: io.kestra.plugin.core.log.Log
    message: "line {i} of {{{{ flow.id }}}}"
"""
        for i in range(n)
    )
    if fail:
        tasks += """
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
"""
    return f"""id: {fid}
namespace: {ns}
labels:
  team: data
tasks:{tasks}"""


async def test_projection_survives_restart_and_rebuilds_identically(nats_url: str, tmp_path: Path) -> None:
    ns = f"ix.t{uuid.uuid4().hex[:8]}"
    db = tmp_path / "index.duckdb"
    store = await Store.connect(nats_url)
    try:
        async with engine(nats_url, tmp_path / "home") as rt:
            ix = Indexer(store, db)
            await ix.start()
            ok = await run_flow(rt, flow_source(ns, n=3))
            bad = await run_flow(rt, flow_source(ns, "broken", n=1, fail=True))
            assert await ix.wait_caught_up()
            (row,) = ix.query(
                "SELECT state, namespace, flow_id, labels FROM executions WHERE id = ?", [ok.id]
            )
            assert row[0] == "SUCCESS" and row[1] == ns and row[2] == "hello"
            assert "team:data" in row[3]
            assert ix.query("SELECT state FROM executions WHERE id = ?", [bad.id]) == [("FAILED",)]
            assert ix.query("SELECT count(*) FROM taskruns WHERE execution_id = ?", [ok.id]) == [(3,)]
            msgs = [
                r[0]
                for r in ix.query("SELECT message FROM logs WHERE execution_id = ? ORDER BY seq", [ok.id])
            ]
            assert [m for m in msgs if m.startswith("line")] == [
                "line 0 of hello",
                "line 1 of hello",
                "line 2 of hello",
            ]
            await ix.stop()

            # While the indexer is down: more executions, a new revision, a deleted flow.
            again = await run_flow(rt, flow_source(ns, n=2))
            await rt.flows.deploy(flow_source(ns, "gone", n=1))
            await store.delete_flow(ns, "gone")
            ix = Indexer(store, db)
            await ix.start()
            assert await ix.wait_caught_up()
            assert ix.query("SELECT state FROM executions WHERE id = ?", [again.id]) == [("SUCCESS",)]
            # no row doubled by the restart (a line is its execution's and its seq: one stored with
            # its attempt's end has a seq made from its step's, which only its execution's stream orders)
            assert (
                ix.query("SELECT count(*) FROM logs")[0][0]
                == ix.query("SELECT count(*) FROM (SELECT DISTINCT execution_id, seq FROM logs)")[0][0]
            )
            assert ix.query(
                "SELECT revision, deleted FROM flows WHERE namespace = ? AND flow_id = 'hello'", [ns]
            ) == [(2, False)]
            assert ix.query("SELECT deleted FROM flows WHERE namespace = ? AND flow_id = 'gone'", [ns]) == [
                (True,)
            ]
            assert ix.query(
                "SELECT revision, deleted FROM flow_revisions "
                "WHERE namespace = ? AND flow_id = 'gone' ORDER BY seq",
                [ns],
            ) == [(1, False), (2, True)]

            # A deleted execution disappears and stays deleted through a rebuild.
            await delete_execution(store, bad.id)
            assert await ix.wait_caught_up()
            assert ix.query("SELECT count(*) FROM executions WHERE id = ?", [bad.id]) == [(0,)]
            assert ix.query("SELECT count(*) FROM logs WHERE execution_id = ?", [bad.id]) == [(0,)]
        assert await ix.wait_caught_up()
        before = dump(ix)
        await ix.stop()

        db.unlink()
        rebuilt = Indexer(store, db)
        await rebuilt.start()
        assert await rebuilt.wait_caught_up(30)
        after = dump(rebuilt)
        await rebuilt.stop()
        for table in TABLES:
            assert before[table] == after[table], f"table {table} differs after the rebuild"
    finally:
        await store.close()


def _created(eid: str, date: str) -> ev.ExecutionCreated:
    return ev.ExecutionCreated(
        date=date, execution_id=eid, namespace="ix.batch", flow_id="f", flow_revision=1
    )


async def test_batch_path_skips_applied_messages_and_keeps_newer_rows(nats_url: str, tmp_path: Path) -> None:
    store = await Store.connect(nats_url)
    ix = Indexer(store, tmp_path / "b.duckdb")
    try:
        eid = "E" * 22
        subject = f"ev.0.{eid}"
        created = ev.encode([_created(eid, "2026-01-01T00:00:00Z")])
        running = ev.encode([ev.ExecutionStateChanged(date="2026-01-01T00:00:01Z", state="RUNNING")])
        done = ev.encode([ev.ExecutionStateChanged(date="2026-01-01T00:00:02Z", state="SUCCESS")])
        await ix.apply([Msg("EVENTS_0", 1, subject, created), Msg("EVENTS_0", 2, subject, running)])
        await ix.apply([Msg("EVENTS_0", 2, subject, running), Msg("EVENTS_0", 3, subject, done)])
        await ix.apply([Msg("EVENTS_0", 3, subject, done)])  # replayed: ignored
        assert ix.query("SELECT state, seq, duration_ms FROM executions WHERE id = ?", [eid]) == [
            ("SUCCESS", 3, 2000.0)
        ]
        assert ix.query("SELECT seq FROM meta WHERE stream = 'EVENTS_0'") == [(3,)]
        assert ix.applied["EVENTS_0"] == 3
        # logs and their cursor land in the same transaction
        from eventstore.store import LogLine, _log_enc

        data = _log_enc.encode(LogLine("2026-01-01T00:00:01Z", "INFO", "hi", "tr", "t", 1))
        await ix.apply([Msg("LOGS", 7, f"log.{eid}", data), Msg("LOGS", 7, f"log.{eid}", data)])
        assert ix.query("SELECT seq, level_num, message FROM logs") == [(7, 2, "hi")]
    finally:
        ix.close()
        await store.close()


async def test_lag_gauge_counts_unapplied_messages(nats_url: str, tmp_path: Path) -> None:
    from prometheus_client import generate_latest

    store = await Store.connect(nats_url)
    ix = Indexer(store, tmp_path / "lag.duckdb")
    try:
        await ix.start()
        assert await ix.wait_caught_up(30)
        text = generate_latest(ix.registry).decode()
        assert 'engine_indexer_lag_events{stream="LOGS"} 0.0' in text
        assert "engine_indexer_applied_messages_total" in text
    finally:
        await ix.stop()
        await store.close()


async def test_the_gil_switch_interval_is_short_while_an_indexer_runs(nats_url: str, tmp_path: Path) -> None:
    before = sys.getswitchinterval()
    assert before > SWITCH_INTERVAL  # Python's default (5 ms): the indexer lowers it
    store = await Store.connect(nats_url)
    ix = Indexer(store, tmp_path / "switch.duckdb")
    try:
        await ix.start()
        assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL)
    finally:
        await ix.stop()
        await store.close()
    assert sys.getswitchinterval() == before


async def test_lag_counts_messages_and_milliseconds_behind(nats_url: str, tmp_path: Path) -> None:
    import time

    from prometheus_client import generate_latest

    from eventstore.store import LogLine

    store = await Store.connect(nats_url)
    ix = Indexer(store, tmp_path / "lagms.duckdb")
    eid = "L" + uuid.uuid4().hex[:21]
    try:
        await ix.start()
        assert await ix.wait_caught_up(30)
        assert ix.lag() == (0, 0.0)
        # hold the writer: messages arrive, none is applied
        assert await asyncio.to_thread(ix.db.write_lock.acquire, True, 5)
        try:
            t0 = time.time()
            for i in range(5):
                store.post_log(eid, LogLine("2026-01-01T00:00:00Z", "INFO", f"line {i}"))
            deadline = time.monotonic() + 10
            while ix.lag()[0] < 5 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.3)
            events, ms = ix.lag()
            assert events >= 5
            assert 300 <= ms <= (time.time() - t0) * 1000 + 1000  # the oldest unapplied line's age
            ix.refresh_lag()
            text = generate_latest(ix.registry).decode()
            line = next(x for x in text.splitlines() if x.startswith('engine_indexer_lag_ms{stream="LOGS"}'))
            assert float(line.split()[-1]) >= 300
        finally:
            ix.db.write_lock.release()
        assert await ix.wait_caught_up(30)
        assert ix.lag() == (0, 0.0)
        assert ix.query("SELECT count(*) FROM logs WHERE execution_id = ?", [eid]) == [(5,)]
    finally:
        await ix.stop()
        await store.close()


async def test_compaction_reopens_the_file_without_losing_rows_or_failing_readers(tmp_path: Path) -> None:
    import threading

    ix = Indexer(None, tmp_path / "c.duckdb", compact_rows=40)  # type: ignore[arg-type]  # batch path only
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                ix.query("SELECT count(*) FROM executions")
            except BaseException as exc:  # a reader must never see a closed connection
                errors.append(exc)
                return

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for k in range(10):
            msgs = []
            for i in range(10):
                eid = f"C{k:03d}{i:018d}"
                msgs.append(
                    Msg(
                        "EVENTS_0",
                        k * 10 + i + 1,
                        f"ev.0.{eid}",
                        ev.encode([_created(eid, "2026-01-01T00:00:00Z")]),
                    )
                )
            await ix.apply(msgs)
        stop.set()
        for t in threads:
            t.join(10)
        assert not errors, errors
        assert ix.compactions >= 2  # 100 rows, every 40
        assert ix.query("SELECT count(*) FROM executions") == [(100,)]
        assert ix.query("SELECT seq FROM meta WHERE stream = 'EVENTS_0'") == [(100,)]
    finally:
        stop.set()
        ix.close()
    reopened = Indexer(None, tmp_path / "c.duckdb")  # type: ignore[arg-type]
    try:
        assert reopened.query("SELECT count(*) FROM executions") == [(100,)]
        assert reopened.applied["EVENTS_0"] == 100
    finally:
        reopened.close()


# ---- each projection through the batch path (no server) ---------------------------------------


def _batch_only(tmp_path: Path, name: str) -> Indexer:
    return Indexer(None, tmp_path / name)  # type: ignore[arg-type]  # batch path only


def _flow_msg(seq: int, revision: int, source: str = "", deleted: bool = False) -> Msg:
    headers = {"Engine-Revision": str(revision), **({"Engine-Deleted": "1"} if deleted else {})}
    return Msg("FLOWS", seq, "flow.ix:flows.f:1", source.encode(), headers)


async def test_a_flow_saved_then_deleted_in_one_batch_keeps_its_source_marked_deleted(tmp_path: Path) -> None:
    ix = _batch_only(tmp_path, "f.duckdb")
    try:
        source = "id: f.1\nnamespace: ix.flows\ndescription: d\nlabels:\n  - key: team\n    value: data\n"
        await ix.apply([_flow_msg(1, 1, source), _flow_msg(2, 2, deleted=True)])
        assert ix.query(
            "SELECT namespace, flow_id, revision, source, deleted, description, labels FROM flows"
        ) == [("ix.flows", "f.1", 2, source, True, "d", ["team:data"])]
        assert ix.query("SELECT revision, deleted FROM flow_revisions ORDER BY seq") == [
            (1, False),
            (2, True),
        ]
        await ix.apply([_flow_msg(3, 3, "not: [yaml")])  # saved again, with a source YAML refuses
        assert ix.query("SELECT revision, deleted, description, labels FROM flows") == [(3, False, None, [])]
    finally:
        ix.close()


async def test_a_tombstone_drops_the_rows_of_its_batch_and_of_later_ones(tmp_path: Path) -> None:
    from eventstore.store import LogLine, _log_enc

    ix = _batch_only(tmp_path, "t.duckdb")
    eid = "T" * 22
    line = _log_enc.encode(LogLine("2026-01-01T00:00:01Z", "WARN", "x"))
    tomb = b'{"execution_id": "%s", "delete_logs": true}' % eid.encode()
    try:
        await ix.apply(
            [
                Msg("EVENTS_0", 1, f"ev.0.{eid}", ev.encode([_created(eid, "2026-01-01T00:00:00Z")])),
                Msg("LOGS", 1, f"log.{eid}", line),
                Msg("LOGS", 2, "log.other", line),
            ]
        )
        assert ix.query("SELECT count(*) FROM executions") == [(1,)]
        await ix.apply([Msg("LOGS", 3, f"log.{eid}", line), Msg("TOMBSTONES", 1, f"tomb.exec.{eid}", tomb)])
        await ix.apply([Msg("LOGS", 4, f"log.{eid}", line), Msg("TOMBSTONES", 2, "tomb.exec.x", b"{}")])
        assert ix.query("SELECT count(*) FROM executions") == [(0,)]
        assert ix.query("SELECT execution_id, level_num FROM logs") == [("other", 3)]
        assert ix.query("SELECT id, seq FROM deleted_executions") == [(eid, 1)]
        assert ix.applied == {"EVENTS_0": 1, "LOGS": 4, "TOMBSTONES": 2}
    finally:
        ix.close()


async def test_a_restart_drops_the_taskruns_it_removes(tmp_path: Path) -> None:
    ix = _batch_only(tmp_path, "r.duckdb")
    eid = "R" * 22
    subject = f"ev.0.{eid}"
    t = "2026-01-01T00:00:00Z"
    steps: list[list[ev.Event]] = [
        [_created(eid, t), ev.TaskRunCreated(date=t, taskrun_id="a", task_id="a")],
        [ev.TaskRunCreated(date=t, taskrun_id="b", task_id="b", branch="errors")],
        [
            ev.TaskRunStateChanged(date=t, taskrun_id="a", state="FAILED"),
            ev.ExecutionStateChanged(date="2026-01-01T00:00:03Z", state="FAILED"),
        ],
    ]
    try:
        await ix.apply([Msg("EVENTS_0", i + 1, subject, ev.encode(s)) for i, s in enumerate(steps)])
        assert ix.query("SELECT id, state, end_date IS NOT NULL FROM taskruns ORDER BY id") == [
            ("a", "FAILED", True),
            ("b", "CREATED", False),
        ]
        assert ix.query("SELECT state, duration_ms, taskrun_count FROM executions") == [("FAILED", 3000.0, 2)]
        restart = ev.ExecutionRestarted(date=t, states={"a": "RESTARTED"}, removed=["b"])
        await ix.apply([Msg("EVENTS_0", 4, subject, ev.encode([restart]))])
        assert ix.query("SELECT id, state, seq FROM taskruns") == [("a", "RESTARTED", 4)]
    finally:
        ix.close()


async def test_a_count_is_remembered_until_the_next_write_and_the_counts_are_bounded(tmp_path: Path) -> None:
    from eventstore.indexer.reads import COUNTS_KEPT

    ix = _batch_only(tmp_path, "n.duckdb")
    sql = "SELECT count(*) FROM executions WHERE namespace = ?"

    def created(seq: int) -> Msg:
        eid = f"N{seq:021d}"
        return Msg("EVENTS_0", seq, f"ev.0.{eid}", ev.encode([_created(eid, "2026-01-01T00:00:00Z")]))

    try:
        await ix.apply([created(1)])
        assert await ix.count(sql, ["ix.batch"]) == 1
        assert ix.counts[(sql, repr(["ix.batch"]))] == (ix.db.version, 1)
        assert await ix.count(sql, ["ix.batch"]) == 1  # remembered
        await ix.apply([created(2), created(3)])
        assert await ix.count(sql, ["ix.batch"]) == 3  # a write: counted again
        assert await ix.count(sql, ["ix.other"]) == 0
        for i in range(COUNTS_KEPT + 10):
            assert await ix.count(sql, [f"ns{i}"]) == 0
        assert len(ix.counts) == COUNTS_KEPT
        assert (sql, repr(["ix.batch"])) not in ix.counts  # the least recently used went first
    finally:
        ix.close()
