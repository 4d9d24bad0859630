"""Taskrun metrics (Kestra's counters and timers): how an attempt records them, and their API shapes.

A task records a metric through its context, a script through ``::{"metrics": [...]}::``; the worker
reports them on the attempt's end (``AttemptEnded.metrics``) and the fold keeps them on the attempt.
As in Kestra's RunContext, a metric recorded again with the same type, name and tags adds to the first
(a counter's value, a timer's duration) or, for a gauge, replaces its value; a task records at most
``MAX_METRICS`` distinct ones.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from engine.core.errors import EngineError
from engine.core.events import Metric
from engine.core.execution import Execution

TYPES = ("counter", "timer", "gauge")
MAX_METRICS = 1000  # distinct metrics of one attempt: each one is stored in the attempt's end event
MAX_NAME = 256  # characters of a metric's name, of a tag's key, of a tag's value (cut there)
MAX_TAGS = 32


class MetricRefused(EngineError):
    """A metric that is not one: the message says which part and why."""


def check_metric(
    type_: Any, name: Any, value: Any, tags: Any = None
) -> tuple[str, str, float, dict[str, str]]:
    """A metric's parts, checked (the message of ``MetricRefused`` names what is wrong)."""
    if type_ not in TYPES:
        raise MetricRefused(f"metric type {type_!r} is not supported (expected one of: {', '.join(TYPES)})")
    if not isinstance(name, str) or not name or len(name) > MAX_NAME:
        raise MetricRefused(f"metric name must be a text of 1 to {MAX_NAME} characters, got {name!r:.80}")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise MetricRefused(f"metric {name!r}: value must be a finite number, got {value!r:.80}")
    if tags is None:
        tags = {}
    if not isinstance(tags, Mapping) or len(tags) > MAX_TAGS:
        raise MetricRefused(f"metric {name!r}: tags must be a map of at most {MAX_TAGS} entries")
    clean: dict[str, str] = {}
    for key, tag in tags.items():
        if len(str(key)) > MAX_NAME:
            raise MetricRefused(f"metric {name!r}: a tag's key must be at most {MAX_NAME} characters")
        text = tag if isinstance(tag, str) else str(tag)
        clean[str(key)] = text[:MAX_NAME]  # a value (Kestra tags a rendered text) is cut, not refused
    return type_, name, float(value), clean


class Metrics:
    """The metrics of one attempt, merged as Kestra's RunContext merges them."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str, tuple[tuple[str, str], ...]], Metric] = {}

    def add(self, type_: Any, name: Any, value: Any, tags: Any, date: str) -> None:
        """Record one metric (``MetricRefused`` when it is not one, or one too many)."""
        t, n, v, clean = check_metric(type_, name, value, tags)
        key = (t, n, tuple(sorted(clean.items())))
        known = self._by_key.get(key)
        if known is not None:  # a gauge keeps its last value, the others add up (Kestra's increment)
            value = v if t == "gauge" else known.value + v
            self._by_key[key] = Metric(t, n, value, known.tags, known.date)
            return
        if len(self._by_key) >= MAX_METRICS:
            raise MetricRefused(f"metric {n!r}: a task records at most {MAX_METRICS} distinct metrics")
        self._by_key[key] = Metric(t, n, v, clean, date)

    def __len__(self) -> int:
        return len(self._by_key)

    def snapshot(self) -> tuple[Metric, ...]:
        return tuple(self._by_key.values())


def iso_duration(seconds: float) -> str:
    """Seconds as Java's ``Duration.toString()`` (what Kestra's JSON shows for a timer)."""
    text = f"{seconds:.9f}".rstrip("0").rstrip(".")
    return f"PT{text}S"


def attempt_metrics_json(metrics: Iterable[Metric]) -> list[dict[str, Any]]:
    """An attempt's metrics as Kestra's execution document had them (``attempts[].metrics``)."""
    return [
        {
            "name": m.name,
            "type": m.type,
            "value": iso_duration(m.value) if m.type == "timer" else m.value,
            "tags": m.tags,
            "timestamp": m.date or None,
        }
        for m in metrics
    ]


def metric_entries(ex: Execution) -> list[dict[str, Any]]:
    """Every metric of an execution as Kestra's ``MetricEntry`` (the metrics API): a timer's value
    in milliseconds, a counter's as recorded; oldest attempt first."""
    out: list[dict[str, Any]] = []
    for tr in ex.taskruns.values():
        for attempt in tr.attempts:
            for m in attempt.metrics:
                out.append(
                    {
                        "namespace": ex.namespace,
                        "flowId": ex.flow_id,
                        "taskId": tr.task_id,
                        "executionId": ex.id,
                        "taskRunId": tr.id,
                        "type": m.type,
                        "name": m.name,
                        "value": m.value * 1000.0 if m.type == "timer" else m.value,
                        "timestamp": m.date or None,
                        "tags": m.tags,
                        "deleted": False,
                    }
                )
    return out
