"""Taskrun metrics (a script's ``Kestra.counter``, a task's ``ctx.metric``) as Prometheus aggregates.

The indexer sees every attempt's end exactly once (a message at or below the applied sequence is
skipped, and a batch counts only once it is written), so ``/metrics`` shows, per namespace, flow,
task and metric name: ``engine_task_counter_total`` (the sum of a counter's values) and
``engine_task_timer_seconds`` (a summary: count and sum of a timer's durations) and
``engine_task_gauge`` (a gauge's last value). Tags are left out
(they are free text: each value would be a new series). Untrusted names make series, so their
number is bounded: past ``MAX_SERIES`` a new one is counted in ``engine_task_metrics_dropped_total``.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Summary

from engine.core.events import Metric

MAX_SERIES = 10_000
LABELS = ["namespace", "flow_id", "task_id", "name"]

TaskMetric = tuple[str, str, str, Metric]  # namespace, flow id, task id, the metric


class TaskMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.counter = Counter(
            "engine_task_counter", "Sum of the counters tasks recorded", LABELS, registry=registry
        )
        self.timer = Summary(
            "engine_task_timer_seconds", "Durations of the timers tasks recorded", LABELS, registry=registry
        )
        self.gauge = Gauge(
            "engine_task_gauge", "Last value of the gauges tasks recorded", LABELS, registry=registry
        )
        self.dropped = Counter(
            "engine_task_metrics_dropped",
            f"Task metrics not aggregated: over {MAX_SERIES} distinct series",
            registry=registry,
        )
        self._series: set[tuple[str, str, str, str, str]] = set()

    def observe(self, metrics: Iterable[TaskMetric]) -> None:
        for namespace, flow_id, task_id, m in metrics:
            key = (m.type, namespace, flow_id, task_id, m.name)
            if key not in self._series:
                if len(self._series) >= MAX_SERIES:
                    self.dropped.inc()
                    continue
                self._series.add(key)
            labels = {"namespace": namespace, "flow_id": flow_id, "task_id": task_id, "name": m.name}
            if m.type == "timer":
                self.timer.labels(**labels).observe(m.value)
            elif m.type == "gauge":
                self.gauge.labels(**labels).set(m.value)
            elif m.value >= 0:  # a Prometheus counter only goes up
                self.counter.labels(**labels).inc(m.value)
