"""Executions in Kestra's API shape (what `engine run --output json` prints)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine.core.execution import Attempt, Execution, History
from engine.core.metrics import attempt_metrics_json


def _state(current: str, histories: list[History]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "current": current,
        "histories": [{"state": h.state, "date": h.date} for h in histories],
        "startDate": histories[0].date if histories else None,
    }
    if histories and current in ("SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "SKIPPED", "RETRIED"):
        out["endDate"] = histories[-1].date
        # Kestra's state.duration; a running one's would need the clock, which the core has not.
        out["duration"] = iso_duration(histories[0].date, histories[-1].date)
    return out


def iso_duration(start: str, end: str) -> str | None:
    """The time between two ISO dates as Java's ``Duration.toString()`` writes it (PT1M2.5S)."""
    try:
        delta = datetime.fromisoformat(end) - datetime.fromisoformat(start)
    except (TypeError, ValueError):
        return None
    micros = max(0, delta.days * 86_400_000_000 + delta.seconds * 1_000_000 + delta.microseconds)
    hours, rest = divmod(micros, 3_600_000_000)
    minutes, rest = divmod(rest, 60_000_000)
    seconds, fraction = divmod(rest, 1_000_000)
    out = "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if seconds or fraction or out == "PT":
        out += str(seconds) + (f".{fraction:06d}".rstrip("0") if fraction else "") + "S"
    return out


def _attempt(a: Attempt) -> dict[str, Any]:
    out: dict[str, Any] = {"state": _state(a.state, a.histories), "workerId": a.worker_id or None}
    if a.metrics:  # Kestra's attempt shape before its metrics moved to their own repository
        out["metrics"] = attempt_metrics_json(a.metrics)
    return out


def execution_json(ex: Execution, *, mask: bool = True) -> dict[str, Any]:
    inputs = {k: ("******" if mask and k in ex.secret_inputs else v) for k, v in ex.inputs.items()}
    return {
        "id": ex.id,
        "namespace": ex.namespace,
        "flowId": ex.flow_id,
        "flowRevision": ex.flow_revision,
        "state": _state(ex.state, ex.histories),
        "inputs": inputs,
        "labels": [{"key": k, "value": v} for k, v in ex.labels.items()],
        "outputs": ex.outputs or {},
        "trigger": ex.trigger,
        "parentId": (ex.parent or {}).get("execution_id")
        or (ex.original_id if ex.original_id not in (None, ex.id) else None),
        "originalId": ex.original_id or ex.id,
        "metadata": {"attemptNumber": ex.attempt_number, "originalCreatedDate": ex.chain_created},
        "taskRunList": [
            {
                "id": tr.id,
                "executionId": ex.id,
                "taskId": tr.task_id,
                "parentTaskRunId": tr.parent_id,
                "value": tr.value,
                "iteration": tr.iteration,
                "state": _state(tr.state, tr.histories),
                "attempts": [_attempt(a) for a in tr.attempts],
                "outputs": tr.outputs,
            }
            for tr in ex.taskruns.values()
        ],
    }
