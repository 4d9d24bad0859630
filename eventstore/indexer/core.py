"""The indexer's core: tail the source streams, fold each batch into rows, write them in one
transaction with the last applied sequence of each stream.

Ordered consumers on every source stream start at the sequence after the one DuckDB says was
applied. Messages are applied in batches (at most ``batch_max`` messages or ``batch_wait`` seconds
per transaction); each projection module turns its messages into rows and its rows into
statements, and ``Database.write`` runs them with the ``meta`` row in one transaction.

Compaction: rows inserted in a running DuckDB keep their in-memory version information even
after a checkpoint, and scans of a bulk-loaded table pay for it (search p95 55 ms right after
100,000 executions, 21 ms once reopened). After ``compact_rows`` rows, as soon as the indexer has
caught up, it checkpoints and reopens the file (``Database.compact``), which drops that state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nats.js import api as jsapi

from eventstore import subjects as S
from eventstore.indexer import executions, flows, logs, tombstones
from eventstore.indexer.batch import Batch, Msg
from eventstore.indexer.db import Database, meta_statement
from eventstore.indexer.lag import Lag
from eventstore.indexer.reads import Reads
from eventstore.indexer.sql import Statement
from eventstore.indexer.streams import filters, is_events, source_streams
from eventstore.indexer.taskmetrics import TaskMetrics
from eventstore.store import Store

log = logging.getLogger(__name__)

SCHEMA = executions.SCHEMA + logs.SCHEMA + flows.SCHEMA + tombstones.SCHEMA
# The GIL switch interval while an indexer runs (Python's default: 5 ms). The write thread waits
# for the GIL after each DuckDB statement, and the event loop (executor, worker) hands it over only
# at the end of an interval: under load a batch's 6 statements spent ~60 ms waiting, 3 times the
# write itself. Only the threads that ask for the GIL switch more often; see sys.setswitchinterval.
SWITCH_INTERVAL = 0.001


def statements(batch: Batch) -> list[Statement]:
    """The statements of a batch: one multi-row statement per table, plus the rare deletes."""
    out: list[Statement] = []
    tombstones.statements(batch, out)
    executions.statements(batch, out)
    logs.statements(batch, out)
    flows.statements(batch, out)
    meta_statement(batch.meta, out)
    return out


class Indexer(Reads):
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
        self.batch_max = batch_max
        self.batch_wait = batch_wait
        self.compact_rows = compact_rows
        self.switch_interval = switch_interval
        self._switch_before: float | None = None
        self.db = Database(self.path, SCHEMA)
        self._rows_since_compact = 0
        self._executions = executions.Executions(store, lru_size)
        self._deleted = tombstones.load(self.db)
        self.applied: dict[str, int] = self.db.stored_seqs()
        self.changed = asyncio.Condition()
        self.counts = OrderedDict()
        self._queue: asyncio.Queue[Msg] = asyncio.Queue(maxsize=batch_max * 4)
        self._task: asyncio.Task[None] | None = None
        self._subs: list[Any] = []
        self.lags = Lag()
        self.registry = self.lags.registry  # what /metrics shows
        self.task_metrics = TaskMetrics(self.registry)
        self.started = False
        self._stopping = False

    @property
    def compactions(self) -> int:
        return self.db.compactions

    # ---- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Indexer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        await tombstones.ensure_streams(self.store)
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
                self._executions.forget()
                self.applied = self.db.stored_seqs()
                self._queue = asyncio.Queue(maxsize=self.batch_max * 4)
                await asyncio.sleep(1)

    async def _subscribe(self) -> None:
        self.lags.unapplied.clear()
        for stream in source_streams():
            start = self.applied.get(stream, 0) + 1
            subjects = filters(stream)
            config = jsapi.ConsumerConfig(
                deliver_policy=jsapi.DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=start,
                filter_subjects=subjects,
            )

            async def on_msg(msg: Any, stream: str = stream) -> None:
                md = msg.metadata
                headers = dict(msg.headers) if msg.headers else None
                seq, pending = int(md.sequence.stream), int(md.num_pending)
                stored = md.timestamp.timestamp() if md.timestamp is not None else 0.0
                self.lags.received(stream, seq, pending, stored)
                await self._queue.put(Msg(stream, seq, msg.subject, msg.data, headers, pending, stored))

            sub = await self.store.js.subscribe(
                subjects[0], stream=stream, ordered_consumer=True, config=config, cb=on_msg
            )
            self._subs.append(sub)
            await self._refresh_lag(stream)

    async def _refresh_lag(self, stream: str) -> None:
        try:
            info = await self.store.js.stream_info(stream)
        except Exception:  # lag is informative only
            return
        self.lags.exists(stream, int(info.state.last_seq))
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
        batch = Batch()
        for m in msgs:
            if m.seq <= self.applied.get(m.stream, 0) or m.seq <= batch.meta.get(m.stream, 0):
                continue
            batch.meta[m.stream] = m.seq
            if is_events(m.stream):
                await self._executions.apply(batch, m, self._deleted)
            elif m.stream == S.LOGS:
                logs.apply(batch, m, self._deleted)
            elif m.stream == S.FLOWS:
                flows.apply(batch, m)
            elif m.stream == tombstones.TOMBSTONES:
                tombstones.apply(batch, m, self._deleted)
        if not batch.meta:
            return
        executions.build_rows(batch, self._deleted)
        await asyncio.to_thread(self.db.write, statements(batch))
        rows = len(batch.executions) + len(batch.taskruns) + len(batch.logs) + len(batch.revisions)
        self.applied.update(batch.meta)
        self.task_metrics.observe(batch.metrics)  # once written: a failed batch is applied again
        caught_up = self.lags.batch_applied(msgs, self.applied, t0)
        async with self.changed:
            self.changed.notify_all()
        self._rows_since_compact += rows
        if self._rows_since_compact >= self.compact_rows and caught_up and self._queue.empty():
            await asyncio.to_thread(self.compact)

    def checkpoint(self) -> None:
        """Fold DuckDB's write-ahead log into the table files (reads get faster)."""
        self.db.checkpoint()

    def compact(self) -> None:
        """Checkpoint and reopen the file (see the module's docstring); readers wait a few ms."""
        self.db.compact()
        self._rows_since_compact = 0

    # ---- lag -----------------------------------------------------------------------------------

    def stream_lag(self, stream: str, now: float | None = None) -> tuple[int, float]:
        """(messages behind, age in ms of the oldest received message not applied yet) of one stream."""
        return self.lags.stream_lag(stream, self.applied, now)

    def lag(self, now: float | None = None) -> tuple[int, float]:
        """(messages behind, milliseconds behind) over every source stream: the sum, the max."""
        return self.lags.lag(self.applied, now)

    def refresh_lag(self) -> None:
        """Set the lag gauges (the API calls it before each /metrics answer)."""
        self.lags.refresh(self.applied)
