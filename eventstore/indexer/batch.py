"""A message of a source stream, and the rows one batch of them writes in one transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.core.events import Metric
from engine.core.execution import Execution


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
class Batch:
    """Rows keyed by their table's key, so a row changed twice in a batch is written once."""

    executions: dict[str, list[Any]] = field(default_factory=dict)
    taskruns: dict[str, list[Any]] = field(default_factory=dict)
    logs: list[list[Any]] = field(default_factory=list)
    revisions: list[list[Any]] = field(default_factory=list)
    flows: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    deleted: dict[str, tuple[int, bool]] = field(default_factory=dict)
    removed_taskruns: dict[str, str] = field(default_factory=dict)  # taskrun id -> execution id
    reloaded: dict[str, list[str]] = field(default_factory=dict)  # execution id -> its taskrun ids
    meta: dict[str, int] = field(default_factory=dict)  # stream -> last sequence of this batch
    # executions folded in this batch and the taskruns that changed: their rows are built once, at
    # the end of the batch (an execution's last state), not after each of its steps
    states: dict[str, Execution] = field(default_factory=dict)
    touched: dict[str, dict[str, int]] = field(default_factory=dict)  # taskrun id -> seq of its step
    # the metrics of the attempts that ended in this batch: (namespace, flow id, task id, metric)
    metrics: list[tuple[str, str, str, Metric]] = field(default_factory=list)
