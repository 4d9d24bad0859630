"""The DuckDB projection: executions, taskruns, logs and flows, rebuilt from the log at will.

The indexer tails every ``EVENTS_<k>`` shard, ``LOGS``, ``FLOWS`` and ``TOMBSTONES`` with ordered
consumers that start at the sequence after the one DuckDB says was applied. Messages are
applied in batches (at most ``batch_max`` messages or ``batch_wait`` seconds per transaction);
one transaction writes the rows *and* the last applied sequence of each source stream (table
``meta``), so a restart neither loses nor doubles a row, and deleting the DuckDB file rebuilds
the same tables from the log.

Executions are folded with ``engine.execution.evolve``; the folded state of recently active
executions stays in a bounded LRU, and a miss reloads the execution from the log. Rows carry
the stream sequence of the step they show, and an upsert only replaces an older one.

Readers (the webserver) use ``query``/``aquery``, which run on their own DuckDB cursors in
threads and see committed transactions only.

Lag: ``lag()`` gives the messages of the streams not applied yet, and the age in milliseconds of
the oldest of them (now minus the time its stream stored it: the message right after the last
applied one; 0 when nothing is behind, so an idle indexer does not look late). ``/metrics`` shows
both per stream (``engine_indexer_lag_events``, ``engine_indexer_lag_ms``).

Compaction: rows inserted in a running DuckDB keep their in-memory version information even
after a checkpoint, and scans of a bulk-loaded table pay for it (search p95 55 ms right after
100,000 executions, 21 ms once reopened). After ``compact_rows`` rows, as soon as the indexer has
caught up, it checkpoints and reopens the file (``compact()``), which drops that state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import msgspec
from nats.js import api as jsapi
from nats.js.errors import APIError
from prometheus_client import CollectorRegistry, Counter, Gauge

from engine.core import events as ev
from engine.core.execution import Execution, evolve
from engine.core.shape import execution_json
from eventstore import subjects as S
from eventstore.store import Store

log = logging.getLogger(__name__)

TOMBSTONES = "TOMBSTONES"  # tomb.exec.<execution>: an execution deleted through the API
SCHEMA_VERSION = 2  # bump when a table changes: older files are rebuilt from the log
SCHEMA_KEY = "__schema__"  # its row in meta
LEVELS = {"TRACE": 0, "DEBUG": 1, "INFO": 2, "WARN": 3, "WARNING": 3, "ERROR": 4}
TERMINAL = frozenset({"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "SKIPPED", "RETRIED"})

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (stream VARCHAR PRIMARY KEY, seq BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS executions (
    id VARCHAR PRIMARY KEY,
    namespace VARCHAR NOT NULL,
    flow_id VARCHAR NOT NULL,
    flow_revision INTEGER,
    state VARCHAR NOT NULL,
    start_date TIMESTAMP,
    end_date TIMESTAMP,
    duration_ms DOUBLE,
    labels VARCHAR[],
    parent_id VARCHAR,
    original_id VARCHAR,
    taskrun_count INTEGER,
    search VARCHAR,
    doc VARCHAR NOT NULL,
    seq BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS taskruns (
    id VARCHAR PRIMARY KEY,
    execution_id VARCHAR NOT NULL,
    namespace VARCHAR NOT NULL,
    flow_id VARCHAR NOT NULL,
    task_id VARCHAR NOT NULL,
    parent_id VARCHAR,
    value VARCHAR,
    state VARCHAR NOT NULL,
    start_date TIMESTAMP,
    end_date TIMESTAMP,
    attempts INTEGER,
    seq BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS logs (
    seq BIGINT NOT NULL,
    execution_id VARCHAR NOT NULL,
    date TIMESTAMP,
    level VARCHAR,
    level_num TINYINT,
    message VARCHAR,
    taskrun_id VARCHAR,
    task_id VARCHAR,
    attempt INTEGER
);
CREATE TABLE IF NOT EXISTS flow_revisions (
    namespace VARCHAR NOT NULL,
    flow_id VARCHAR NOT NULL,
    revision INTEGER NOT NULL,
    source VARCHAR NOT NULL,
    deleted BOOLEAN NOT NULL,
    seq BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS flows (
    namespace VARCHAR NOT NULL,
    flow_id VARCHAR NOT NULL,
    revision INTEGER NOT NULL,
    source VARCHAR NOT NULL,
    deleted BOOLEAN NOT NULL,
    description VARCHAR,
    labels VARCHAR[],
    disabled BOOLEAN,
    seq BIGINT NOT NULL,
    PRIMARY KEY (namespace, flow_id)
);
CREATE TABLE IF NOT EXISTS deleted_executions (id VARCHAR PRIMARY KEY, seq BIGINT NOT NULL);
"""

EXEC_COLS = [
    "id",
    "namespace",
    "flow_id",
    "flow_revision",
    "state",
    "start_date",
    "end_date",
    "duration_ms",
    "labels",
    "parent_id",
    "original_id",
    "taskrun_count",
    "search",
    "doc",
    "seq",
]
TR_COLS = [
    "id",
    "execution_id",
    "namespace",
    "flow_id",
    "task_id",
    "parent_id",
    "value",
    "state",
    "start_date",
    "end_date",
    "attempts",
    "seq",
]
LOG_COLS = [
    "seq",
    "execution_id",
    "date",
    "level",
    "level_num",
    "message",
    "taskrun_id",
    "task_id",
    "attempt",
]
REV_COLS = [
    "namespace",
    "flow_id",
    "revision",
    "source",
    "deleted",
    "seq",
]
FLOW_COLS = [
    "namespace",
    "flow_id",
    "revision",
    "source",
    "deleted",
    "description",
    "labels",
    "disabled",
    "seq",
]
LABEL_SEP = ":"
# The GIL switch interval while an indexer runs (Python's default: 5 ms). The write thread waits
# for the GIL after each DuckDB statement, and the event loop (executor, worker) hands it over only
# at the end of an interval: under load a batch's 6 statements spent ~60 ms waiting, 3 times the
# write itself. Only the threads that ask for the GIL switch more often; see sys.setswitchinterval.
SWITCH_INTERVAL = 0.001


def _merge(table: str, cols: list[str], keys: list[str]) -> str:
    """An upsert from the columns given as lists ($1..$n): a row replaces the stored one only when
    its ``seq`` is newer. MERGE: cheaper than INSERT ... ON CONFLICT DO UPDATE in DuckDB."""
    source = ", ".join(f"unnest(${i + 1}) AS {c}" for i, c in enumerate(cols))
    on = " AND ".join(f"{table}.{k} = n.{k}" for k in keys)
    sets = ", ".join(f"{c} = n.{c}" for c in cols if c not in keys)
    return (
        f"MERGE INTO {table} USING (SELECT {source}) n ON {on} "
        f"WHEN MATCHED AND n.seq > {table}.seq THEN UPDATE SET {sets} "
        f"WHEN NOT MATCHED THEN INSERT ({', '.join(cols)}) VALUES ({', '.join('n.' + c for c in cols)})"
    )


def _append(table: str, cols: list[str]) -> str:
    source = ", ".join(f"unnest(${i + 1}) AS {c}" for i, c in enumerate(cols))
    return f"INSERT INTO {table} ({', '.join(cols)}) SELECT {source}"


UPSERT_EXECUTIONS = _merge("executions", EXEC_COLS, ["id"])
UPSERT_TASKRUNS = _merge("taskruns", TR_COLS, ["id"])
UPSERT_FLOWS = _merge("flows", FLOW_COLS, ["namespace", "flow_id"])
UPSERT_META = _merge("meta", ["stream", "seq"], ["stream"])
INSERT_LOGS = _append("logs", LOG_COLS)
INSERT_REVISIONS = _append("flow_revisions", REV_COLS)


def _add(out: list[tuple[str, list[Any]]], sql: str, rows: Iterable[Sequence[Any]], width: int) -> None:
    """One statement for all ``rows``, given column by column (none when there are no rows)."""
    cols = _columns(rows, width)
    if cols[0]:
        out.append((sql, cols))


def label_pairs(labels: dict[str, str]) -> list[str]:
    """Labels as searchable ``key:value`` strings."""
    return [f"{k}{LABEL_SEP}{v}" for k, v in labels.items()]


def event_streams() -> list[str]:
    return [f"{S.EVENTS}_{k}" for k in range(S.SHARDS)]


def source_streams() -> list[str]:
    return [*event_streams(), S.LOGS, S.FLOWS, TOMBSTONES]


def _filters(stream: str) -> list[str]:
    if stream.startswith(S.EVENTS + "_"):
        return [f"ev.{p}.>" for p in S.shard_partitions(int(stream.rsplit("_", 1)[1]))]
    return {S.LOGS: ["log.>"], S.FLOWS: ["flow.>"], TOMBSTONES: ["tomb.>"]}[stream]


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


@dataclass(frozen=True)
class Msg:
    """One message of a source stream, as the batch path takes it."""

    stream: str
    seq: int
    subject: str
    data: bytes
    headers: dict[str, str] | None = None
    pending: int = 0
    time: float = 0.0  # when the stream stored it (epoch seconds; 0: unknown)


@dataclass
class _Batch:
    executions: dict[str, list[Any]] = field(default_factory=dict)
    taskruns: dict[str, list[Any]] = field(default_factory=dict)
    logs: list[list[Any]] = field(default_factory=list)
    revisions: list[list[Any]] = field(default_factory=list)
    flows: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    deleted: dict[str, tuple[int, bool]] = field(default_factory=dict)
    removed_taskruns: dict[str, str] = field(default_factory=dict)  # taskrun id -> execution id
    reloaded: dict[str, list[str]] = field(default_factory=dict)  # execution id -> its taskrun ids
    meta: dict[str, int] = field(default_factory=dict)
    # executions folded in this batch and the taskruns that changed: their rows are built once, at
    # the end of the batch (an execution's last state), not after each of its steps
    states: dict[str, Execution] = field(default_factory=dict)
    touched: dict[str, dict[str, int]] = field(default_factory=dict)  # taskrun id -> seq of its step


def _ts(date: str | None) -> str | None:
    return date.replace("Z", "") if date else None


def _duration_ms(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    from datetime import datetime

    a = datetime.fromisoformat(start.replace("Z", "+00:00"))
    b = datetime.fromisoformat(end.replace("Z", "+00:00"))
    return (b - a).total_seconds() * 1000.0


def _columns(rows: Iterable[Sequence[Any]], width: int) -> list[list[Any]]:
    return [list(col) for col in zip(*rows, strict=True)] or [[] for _ in range(width)]


def _flow_fields(source: str) -> tuple[str | None, list[str], bool]:
    import yaml

    try:
        doc = yaml.safe_load(source)
    except yaml.YAMLError:
        return None, [], False
    if not isinstance(doc, dict):
        return None, [], False
    labels = doc.get("labels") or {}
    if isinstance(labels, list):  # Kestra also accepts [{key, value}]
        labels = {str(x.get("key")): str(x.get("value")) for x in labels if isinstance(x, dict)}
    pairs = label_pairs({str(k): str(v) for k, v in labels.items()}) if isinstance(labels, dict) else []
    desc = doc.get("description")
    return (str(desc) if desc is not None else None), pairs, bool(doc.get("disabled", False))


class Indexer:
    """Projects the log into DuckDB; ``run()`` tails it, ``apply()`` is the batch path."""

    def __init__(
        self,
        store: Store,
        path: str | Path,
        *,
        lru_size: int = 10_000,
        batch_max: int = 1000,
        batch_wait: float = 0.2,
        compact_rows: int = 50_000,
        switch_interval: float | None = SWITCH_INTERVAL,
    ) -> None:
        self.store = store
        self.path = Path(path)
        self.lru_size = lru_size
        self.batch_max = batch_max
        self.batch_wait = batch_wait
        self.compact_rows = compact_rows
        self.switch_interval = switch_interval
        self._switch_before: float | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = duckdb.connect(str(self.path))
        self._migrate()
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._gen = 0  # bumped by compact(): thread-local cursors of an older connection are stale
        self._users = 0  # queries and writes in progress (compact waits for none)
        self._exclusive = False
        self._gate = threading.Condition()
        self._rows_since_compact = 0
        self.compactions = 0
        self._known: dict[str, int] = {}  # last sequence known to exist, per stream
        self._unapplied: dict[str, deque[tuple[int, float]]] = {}  # received, not applied: (seq, time)
        self._open: OrderedDict[str, Execution] = OrderedDict()
        self._deleted: set[str] = {
            r[0] for r in self.db.execute("SELECT id FROM deleted_executions").fetchall()
        }
        self.applied: dict[str, int] = self._stored_seqs(self.db)
        self._changed = asyncio.Condition()
        self._queue: asyncio.Queue[Msg] = asyncio.Queue(maxsize=batch_max * 4)
        self._task: asyncio.Task[None] | None = None
        self._subs: list[Any] = []
        self.registry = CollectorRegistry()
        self.lag_gauge = Gauge(
            "engine_indexer_lag_events",
            "Messages of a source stream not yet applied to the projection",
            ["stream"],
            registry=self.registry,
        )
        self.lag_ms_gauge = Gauge(
            "engine_indexer_lag_ms",
            "Milliseconds since the last applied message of a stream was stored (0: caught up)",
            ["stream"],
            registry=self.registry,
        )
        self.applied_total = Counter(
            "engine_indexer_applied_messages", "Messages applied to the projection", registry=self.registry
        )
        self.batch_seconds = Gauge(
            "engine_indexer_last_batch_seconds", "Duration of the last applied batch", registry=self.registry
        )
        self.started = False
        self._stopping = False

    @staticmethod
    def _stored_seqs(cur: duckdb.DuckDBPyConnection) -> dict[str, int]:
        rows = cur.execute("SELECT stream, seq FROM meta WHERE stream <> ?", [SCHEMA_KEY]).fetchall()
        return {str(s): int(q) for s, q in rows}

    def _migrate(self) -> None:
        """Create the tables; a file of another schema version is emptied and rebuilt from the log."""
        tables = {
            r[0] for r in self.db.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }
        version = None
        if "meta" in tables:
            rows = self.db.execute("SELECT seq FROM meta WHERE stream = ?", [SCHEMA_KEY]).fetchall()
            version = rows[0][0] if rows else None
        if tables and version != SCHEMA_VERSION:
            log.warning(
                "indexer: %s has schema %s, not %s: rebuilding it from the log",
                self.path,
                version,
                SCHEMA_VERSION,
            )
            for table in tables:
                self.db.execute(f'DROP TABLE IF EXISTS "{table}"')
        self.db.execute(SCHEMA)
        self.db.execute(
            "INSERT INTO meta VALUES (?, ?) ON CONFLICT (stream) DO UPDATE SET seq = excluded.seq",
            [SCHEMA_KEY, SCHEMA_VERSION],
        )

    # ---- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Indexer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        await ensure_streams(self.store)
        if self.switch_interval is not None and sys.getswitchinterval() > self.switch_interval:
            self._switch_before = sys.getswitchinterval()
            sys.setswitchinterval(self.switch_interval)
        self._task = asyncio.create_task(self.run(), name="indexer")
        self.started = True

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            done, _ = await asyncio.wait({self._task}, timeout=2)
            if not done:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        if self._switch_before is not None and sys.getswitchinterval() == self.switch_interval:
            sys.setswitchinterval(self._switch_before)
        self._switch_before = None
        self.close()

    def close(self) -> None:
        with contextlib.suppress(duckdb.Error):
            self.db.close()

    async def run(self) -> None:
        """Tail every source stream until cancelled; a failed batch restarts from DuckDB's cursor."""
        while not self._stopping:
            try:
                await self._subscribe()
                await self._loop()
                await self._unsubscribe()
            except asyncio.CancelledError:
                await self._unsubscribe()
                raise
            except Exception:
                log.exception("indexer: batch failed; resuming from the stored sequences in 1 s")
                await self._unsubscribe()
                self._open.clear()
                rows = self.query("SELECT stream, seq FROM meta WHERE stream <> ?", [SCHEMA_KEY])
                self.applied = {str(stream): int(seq) for stream, seq in rows}
                self._queue = asyncio.Queue(maxsize=self.batch_max * 4)
                await asyncio.sleep(1)

    async def _subscribe(self) -> None:
        self._unapplied.clear()
        for stream in source_streams():
            start = self.applied.get(stream, 0) + 1
            filters = _filters(stream)
            config = jsapi.ConsumerConfig(
                deliver_policy=jsapi.DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=start,
                filter_subjects=filters,
            )

            async def on_msg(msg: Any, stream: str = stream) -> None:
                md = msg.metadata
                headers = dict(msg.headers) if msg.headers else None
                seq, pending = int(md.sequence.stream), int(md.num_pending)
                stored = md.timestamp.timestamp() if md.timestamp is not None else 0.0
                self._known[stream] = max(self._known.get(stream, 0), seq + pending)
                self._unapplied.setdefault(stream, deque()).append((seq, stored))
                await self._queue.put(Msg(stream, seq, msg.subject, msg.data, headers, pending, stored))

            sub = await self.store.js.subscribe(
                filters[0], stream=stream, ordered_consumer=True, config=config, cb=on_msg
            )
            self._subs.append(sub)
            await self._refresh_lag(stream)

    async def _refresh_lag(self, stream: str) -> None:
        try:
            info = await self.store.js.stream_info(stream)
        except Exception:  # lag is informative only
            return
        self._known[stream] = max(self._known.get(stream, 0), int(info.state.last_seq))
        self.refresh_lag()

    async def _unsubscribe(self) -> None:
        subs, self._subs = self._subs, []
        for sub in subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _loop(self) -> None:
        # Whatever has arrived goes in one transaction (at most batch_max messages); while one
        # batch is written the next accumulates, so batches grow with the load and an idle
        # indexer applies a message as soon as it arrives. batch_wait bounds a batch's age.
        while not self._stopping:
            try:
                batch = [await asyncio.wait_for(self._queue.get(), 0.25)]
            except TimeoutError:
                continue
            deadline = time.monotonic() + self.batch_wait
            while len(batch) < self.batch_max and time.monotonic() < deadline:
                try:
                    batch.append(self._queue.get_nowait())
                except asyncio.QueueEmpty:
                    break
            await self.apply(batch)

    # ---- the batch path ----------------------------------------------------------------------

    async def apply(self, msgs: Sequence[Msg]) -> None:
        """Fold and write ``msgs`` in one transaction (messages at or below the stored seq are skipped)."""
        t0 = time.perf_counter()
        batch = _Batch()
        for m in msgs:
            if m.seq <= self.applied.get(m.stream, 0) or m.seq <= batch.meta.get(m.stream, 0):
                continue
            batch.meta[m.stream] = m.seq
            if m.stream.startswith(S.EVENTS + "_"):
                await self._on_events(batch, m)
            elif m.stream == S.LOGS:
                self._on_log(batch, m)
            elif m.stream == S.FLOWS:
                self._on_flow(batch, m)
            elif m.stream == TOMBSTONES:
                self._on_tombstone(batch, m)
        if not batch.meta:
            return
        self._build_rows(batch)
        await asyncio.to_thread(self._write, self._statements(batch))
        rows = len(batch.executions) + len(batch.taskruns) + len(batch.logs) + len(batch.revisions)
        self.applied.update(batch.meta)
        for m in msgs:
            self._known[m.stream] = max(self._known.get(m.stream, 0), m.seq + m.pending)
        for stream, waiting in self._unapplied.items():
            done = self.applied.get(stream, 0)
            while waiting and waiting[0][0] <= done:
                waiting.popleft()
        caught_up = all(known <= self.applied.get(s, 0) for s, known in self._known.items())
        self.refresh_lag()
        self.applied_total.inc(len(msgs))
        self.batch_seconds.set(time.perf_counter() - t0)
        async with self._changed:
            self._changed.notify_all()
        self._rows_since_compact += rows
        if self._rows_since_compact >= self.compact_rows and caught_up and self._queue.empty():
            await asyncio.to_thread(self.compact)

    # ---- lag -----------------------------------------------------------------------------------

    def stream_lag(self, stream: str, now: float | None = None) -> tuple[int, float]:
        """(messages behind, age in ms of the oldest received message not applied yet) of one stream."""
        behind = max(0, self._known.get(stream, 0) - self.applied.get(stream, 0))
        waiting = self._unapplied.get(stream)
        if not behind or not waiting or not waiting[0][1]:
            return behind, 0.0
        now = time.time() if now is None else now
        return behind, max(0.0, (now - waiting[0][1]) * 1000.0)

    def lag(self, now: float | None = None) -> tuple[int, float]:
        """(messages behind, milliseconds behind) over every source stream: the sum, the max."""
        now = time.time() if now is None else now
        events, ms = 0, 0.0
        for stream in self._known:
            n, age = self.stream_lag(stream, now)
            events, ms = events + n, max(ms, age)
        return events, ms

    def refresh_lag(self) -> None:
        """Set the lag gauges (the API calls it before each /metrics answer)."""
        now = time.time()
        for stream in self._known:
            n, age = self.stream_lag(stream, now)
            self.lag_gauge.labels(stream=stream).set(n)
            self.lag_ms_gauge.labels(stream=stream).set(age)

    async def _state(self, execution_id: str, events: list[ev.Event]) -> tuple[Execution | None, bool]:
        """The open state of an execution, and whether it was reloaded from the log."""
        state = self._open.get(execution_id)
        if state is not None:
            self._open.move_to_end(execution_id)
            return state, False
        if events and isinstance(events[0], ev.ExecutionCreated):
            return None, False
        # A miss: fold the execution from the log (it may already be ahead of this message).
        for seq, step in await self.store.read(execution_id):
            for event in step:
                state = evolve(state, event)
            if state is not None:
                state.seq = seq
        return state, True

    def _remember(self, state: Execution) -> None:
        self._open[state.id] = state
        self._open.move_to_end(state.id)
        while len(self._open) > self.lru_size:
            self._open.popitem(last=False)

    async def _on_events(self, batch: _Batch, m: Msg) -> None:
        execution_id = m.subject.split(".", 2)[2]
        events = ev.decode(m.data)
        state, reloaded = await self._state(execution_id, events)
        touched: set[str] = set()
        if reloaded and state is not None:
            self._remember(state)
            touched.update(state.taskruns)  # written whole: the log may be ahead of this message
            batch.reloaded[state.id] = list(state.taskruns)
            if m.seq <= state.seq:
                self._rows(batch, state, touched)
                return
        if state is not None and m.seq <= state.seq:
            return  # already folded
        for event in events:
            state = evolve(state, event)
            trid = getattr(event, "taskrun_id", None)
            if isinstance(trid, str):
                touched.add(trid)
            elif isinstance(event, ev.ExecutionRestarted):
                touched.update(event.states)
                for removed in event.removed:
                    batch.removed_taskruns[removed] = execution_id
            elif isinstance(event, ev.TaskRunsCopied) and state is not None:
                touched.update(state.taskruns)
        if state is None:
            return
        state.seq = m.seq
        self._remember(state)
        self._rows(batch, state, touched)

    def _rows(self, batch: _Batch, state: Execution, touched: set[str]) -> None:
        batch.states[state.id] = state
        batch.touched.setdefault(state.id, {}).update(dict.fromkeys(touched, state.seq))

    def _build_rows(self, batch: _Batch) -> None:
        for execution_id, state in batch.states.items():
            if execution_id not in self._deleted:
                self._state_rows(batch, state, batch.touched.get(execution_id, {}))

    def _state_rows(self, batch: _Batch, state: Execution, touched: dict[str, int]) -> None:
        batch.executions[state.id] = self._execution_row(state)
        for trid, seq in touched.items():
            tr = state.taskruns.get(trid)
            if tr is None:
                continue
            end = tr.histories[-1].date if tr.state in TERMINAL else None
            batch.taskruns[trid] = [
                tr.id,
                state.id,
                state.namespace,
                state.flow_id,
                tr.task_id,
                tr.parent_id,
                tr.value,
                tr.state,
                _ts(tr.histories[0].date),
                _ts(end),
                len(tr.attempts),
                seq,  # the step that last changed it: the same whatever the batches
            ]

    @staticmethod
    def _execution_row(state: Execution) -> list[Any]:
        start = state.histories[0].date if state.histories else None
        end = state.histories[-1].date if state.state in TERMINAL else None
        return [
            state.id,
            state.namespace,
            state.flow_id,
            state.flow_revision,
            state.state,
            _ts(start),
            _ts(end),
            _duration_ms(start, end),
            label_pairs(state.labels),
            (state.parent or {}).get("execution_id"),
            state.original_id,
            len(state.taskruns),
            " ".join([state.id, state.namespace, state.flow_id, *label_pairs(state.labels)]).lower(),
            json.dumps(execution_json(state), separators=(",", ":"), default=str),
            state.seq,
        ]

    def _on_log(self, batch: _Batch, m: Msg) -> None:
        execution_id = m.subject[len("log.") :]
        if execution_id in self._deleted:
            return
        try:
            line = Store.decode_log(m.data)
        except msgspec.DecodeError:
            log.warning("indexer: undecodable log line %s seq %d skipped", m.subject, m.seq)
            return
        batch.logs.append(
            [
                m.seq,
                execution_id,
                _ts(line.date),
                line.level,
                LEVELS.get(line.level.upper(), 2),
                line.message,
                line.taskrun_id,
                line.task_id,
                line.attempt,
            ]
        )

    def _on_flow(self, batch: _Batch, m: Msg) -> None:
        namespace, flow_id = S.parse_flow(m.subject)
        headers = m.headers or {}
        revision = int(headers.get("Engine-Revision", "1"))
        deleted = headers.get("Engine-Deleted") == "1"
        source = m.data.decode(errors="replace")
        batch.revisions.append([namespace, flow_id, revision, source, deleted, m.seq])
        key = (namespace, flow_id)
        if deleted:
            prev = batch.flows.get(key)
            if prev is not None and prev[3] is not None:  # saved then deleted in this batch
                batch.flows[key] = [*prev[:2], revision, prev[3], True, *prev[5:8], m.seq]
            else:  # marks the stored row deleted (it keeps its last source, for revisions)
                batch.flows[key] = [namespace, flow_id, revision, None, True, None, [], False, m.seq]
        else:
            desc, labels, disabled = _flow_fields(source)
            batch.flows[key] = [namespace, flow_id, revision, source, False, desc, labels, disabled, m.seq]

    def _on_tombstone(self, batch: _Batch, m: Msg) -> None:
        try:
            body = msgspec.json.decode(m.data)
            execution_id = str(body["execution_id"])
            delete_logs = bool(body.get("delete_logs", True))
        except (msgspec.DecodeError, KeyError, TypeError):
            return
        self._deleted.add(execution_id)
        batch.deleted[execution_id] = (m.seq, delete_logs)
        batch.states.pop(execution_id, None)
        batch.touched.pop(execution_id, None)
        if delete_logs:
            batch.logs = [row for row in batch.logs if row[1] != execution_id]

    # ---- the write -------------------------------------------------------------------------

    def _write(self, statements: list[tuple[str, list[Any]]]) -> None:
        """One transaction running ``statements`` (built on the event loop by ``_statements``).

        This thread does nothing else: every Python step it takes needs the GIL, which the event
        loop (executor, worker) holds most of the time under load, and every ``execute`` hands the
        GIL back and waits for it again once DuckDB is done.
        """
        with self._write_lock, self._shared():
            cur = self._cursor()
            cur.execute("BEGIN TRANSACTION")
            try:
                for sql, params in statements:
                    cur.execute(sql, params)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise

    def _statements(self, batch: _Batch) -> list[tuple[str, list[Any]]]:
        """The statements of a batch: one multi-row statement per table, plus the rare deletes."""
        out: list[tuple[str, list[Any]]] = []
        for execution_id, (seq, delete_logs) in batch.deleted.items():
            out.append(("DELETE FROM executions WHERE id = ?", [execution_id]))
            out.append(("DELETE FROM taskruns WHERE execution_id = ?", [execution_id]))
            if delete_logs:
                out.append(("DELETE FROM logs WHERE execution_id = ?", [execution_id]))
            out.append(("INSERT OR IGNORE INTO deleted_executions VALUES (?, ?)", [execution_id, seq]))
        removed = [t for t in batch.removed_taskruns if t not in batch.taskruns]
        if removed:  # dropped by a restart (error branches)
            out.append(("DELETE FROM taskruns WHERE list_contains(?, id)", [removed]))
        for execution_id, ids in batch.reloaded.items():  # rows the log no longer has
            out.append(
                (
                    "DELETE FROM taskruns WHERE execution_id = ? AND NOT list_contains(?, id)",
                    [execution_id, ids],
                )
            )
        _add(out, UPSERT_EXECUTIONS, batch.executions.values(), len(EXEC_COLS))
        _add(out, UPSERT_TASKRUNS, batch.taskruns.values(), len(TR_COLS))
        _add(out, INSERT_LOGS, batch.logs, len(LOG_COLS))
        _add(out, INSERT_REVISIONS, batch.revisions, len(REV_COLS))
        flows = list(batch.flows.values())
        _add(out, UPSERT_FLOWS, [r for r in flows if r[3] is not None], len(FLOW_COLS))
        for r in flows:  # a deleted flow keeps its last source (for revisions), marked deleted
            if r[3] is None:
                out.append(
                    (
                        "UPDATE flows SET deleted = true, revision = ?, seq = ? "
                        "WHERE namespace = ? AND flow_id = ? AND seq < ?",
                        [r[2], r[8], r[0], r[1], r[8]],
                    )
                )
        _add(out, UPSERT_META, batch.meta.items(), 2)
        return out

    def checkpoint(self) -> None:
        """Fold DuckDB's write-ahead log into the table files (reads get faster)."""
        with self._write_lock, self._shared():
            self._cursor().execute("FORCE CHECKPOINT")

    def compact(self) -> None:
        """Checkpoint and reopen the file: scans no longer pay for the version data of bulk inserts.

        Waits for the queries in progress; new ones wait (a few ms) until the file is open again.
        """
        with self._write_lock:
            with self._gate:
                self._exclusive = True
                while self._users:
                    self._gate.wait()
            try:
                self.db.execute("FORCE CHECKPOINT")
                self.db.close()  # closes every cursor of this connection too
                self.db = duckdb.connect(str(self.path))
                self._gen += 1
                self._rows_since_compact = 0
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

    # ---- reads -----------------------------------------------------------------------------

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        cur: duckdb.DuckDBPyConnection | None = getattr(self._local, "cur", None)
        if cur is None or getattr(self._local, "gen", -1) != self._gen:
            cur = self.db.cursor()
            self._local.cur, self._local.gen = cur, self._gen
        return cur

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """Rows of one read-only statement, on this thread's cursor (committed data only)."""
        with self._shared():
            return self._cursor().execute(sql, list(params or [])).fetchall()

    async def aquery(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        return await asyncio.to_thread(self.query, sql, params)

    async def wait_applied(self, stream: str, seq: int, timeout: float = 5.0) -> bool:
        """Wait until ``stream`` is applied up to ``seq`` (read-your-writes after an API write)."""
        deadline = time.monotonic() + timeout
        async with self._changed:
            while self.applied.get(stream, 0) < seq:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), left)
        return True

    async def wait_change(self, timeout: float) -> None:
        """Return after the next applied batch, or after ``timeout`` seconds."""
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)

    async def wait_for(self, sql: str, params: Sequence[Any], timeout: float = 5.0) -> bool:
        """Wait until ``sql`` returns a row (e.g. an execution reached a state in the projection)."""
        deadline = time.monotonic() + timeout
        while True:
            if await self.aquery(sql, params):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            async with self._changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), min(left, 0.5))

    async def caught_up(self) -> bool:
        """True when every source stream is applied up to its last message."""
        for stream in source_streams():
            try:
                info = await self.store.js.stream_info(stream)
            except Exception:
                return False
            if int(info.state.last_seq) > self.applied.get(stream, 0):
                return False
        return True

    async def wait_caught_up(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await self.caught_up():
                return True
            await asyncio.sleep(0.02)
        return False
