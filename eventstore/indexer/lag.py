"""How far the projection trails the log, and its Prometheus metrics.

``lag()`` gives the messages of the streams not applied yet, and the age in milliseconds of the
oldest of them (now minus the time its stream stored it: the message right after the last applied
one; 0 when nothing is behind, so an idle indexer does not look late). ``/metrics`` shows both per
stream (``engine_indexer_lag_events``, ``engine_indexer_lag_ms``).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge

from eventstore.indexer.batch import Msg


class Lag:
    """What each stream has (known last sequence) against what is applied (given by the caller)."""

    def __init__(self) -> None:
        self.known: dict[str, int] = {}  # last sequence known to exist, per stream
        self.unapplied: dict[str, deque[tuple[int, float]]] = {}  # received, not applied: (seq, time)
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

    def exists(self, stream: str, last_seq: int) -> None:
        """The stream has messages up to ``last_seq`` (from its info, or a message and its pending)."""
        self.known[stream] = max(self.known.get(stream, 0), last_seq)

    def received(self, stream: str, seq: int, pending: int, stored: float) -> None:
        self.exists(stream, seq + pending)
        self.unapplied.setdefault(stream, deque()).append((seq, stored))

    def batch_applied(self, msgs: Sequence[Msg], applied: Mapping[str, int], started: float) -> bool:
        """Account for a batch applied since ``started`` (``time.perf_counter``); whether every stream
        is now applied up to its last message."""
        for m in msgs:
            self.exists(m.stream, m.seq + m.pending)
        for stream, waiting in self.unapplied.items():
            done = applied.get(stream, 0)
            while waiting and waiting[0][0] <= done:
                waiting.popleft()
        caught_up = all(known <= applied.get(s, 0) for s, known in self.known.items())
        self.refresh(applied)
        self.applied_total.inc(len(msgs))
        self.batch_seconds.set(time.perf_counter() - started)
        return caught_up

    def stream_lag(
        self, stream: str, applied: Mapping[str, int], now: float | None = None
    ) -> tuple[int, float]:
        """(messages behind, age in ms of the oldest received message not applied yet) of one stream."""
        behind = max(0, self.known.get(stream, 0) - applied.get(stream, 0))
        waiting = self.unapplied.get(stream)
        if not behind or not waiting or not waiting[0][1]:
            return behind, 0.0
        now = time.time() if now is None else now
        return behind, max(0.0, (now - waiting[0][1]) * 1000.0)

    def lag(self, applied: Mapping[str, int], now: float | None = None) -> tuple[int, float]:
        """(messages behind, milliseconds behind) over every source stream: the sum, the max."""
        now = time.time() if now is None else now
        events, ms = 0, 0.0
        for stream in self.known:
            n, age = self.stream_lag(stream, applied, now)
            events, ms = events + n, max(ms, age)
        return events, ms

    def refresh(self, applied: Mapping[str, int]) -> None:
        """Set the lag gauges."""
        now = time.time()
        for stream in self.known:
            n, age = self.stream_lag(stream, applied, now)
            self.lag_gauge.labels(stream=stream).set(n)
            self.lag_ms_gauge.labels(stream=stream).set(age)
