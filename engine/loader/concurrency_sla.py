"""Flow ``concurrency`` (a limit and what happens over it) and ``sla`` (enforced by the executor)."""

from __future__ import annotations

from typing import Any

from engine.core.model import SLA, Concurrency
from engine.loader.checker import Checker
from engine.loader.labels import labels
from engine.yamlpos import child_path

__all__ = ["concurrency", "sla"]

_CONCURRENCY_BEHAVIORS = ("QUEUE", "CANCEL", "FAIL")
_SLA_TYPES = ("MAX_DURATION", "EXECUTION_ASSERTION")


def concurrency(ctx: Checker, value: Any, path: str) -> Concurrency | None:
    data = ctx.mapping(value, path)
    if data is None:
        return None
    ctx.unknown_keys(data, path, ("limit", "behavior"), "concurrency property")
    if data.get("limit") is None:
        ctx.add(path, "missing required concurrency property 'limit' — add 'limit: 1'")
        return None
    limit = ctx.integer(data.get("limit"), child_path(path, "limit"), minimum=1)
    behavior = "QUEUE"
    if data.get("behavior") is not None:
        behavior = (
            ctx.choice(
                data["behavior"], child_path(path, "behavior"), _CONCURRENCY_BEHAVIORS, "concurrency behavior"
            )
            or "QUEUE"
        )
    return Concurrency(limit=limit, behavior=behavior) if limit is not None else None


def sla(ctx: Checker, value: Any, path: str) -> tuple[SLA, ...]:
    found: list[SLA] = []
    for sub, data in ctx.maps(value, path, "an SLA definition (a map)"):
        ctx.unknown_keys(
            data, sub, ("id", "type", "behavior", "labels", "duration", "assert"), "sla property"
        )
        ctx.required_string(data, "id", sub, "sla property")
        if data.get("type") is None:
            ctx.add(sub, "missing sla 'type' — add 'type: MAX_DURATION' or 'type: EXECUTION_ASSERTION'")
        else:
            ctx.choice(data["type"], child_path(sub, "type"), _SLA_TYPES, "sla type")
        if data.get("behavior") is not None:
            ctx.choice(
                data["behavior"], child_path(sub, "behavior"), ("FAIL", "CANCEL", "NONE"), "sla behavior"
            )
        duration = None
        if data.get("duration") is not None:
            duration = ctx.duration(data["duration"], child_path(sub, "duration"))
        ctx.collect_expressions(data.get("assert"), child_path(sub, "assert"))
        sla_labels = labels(ctx, data.get("labels"), child_path(sub, "labels"))
        if data.get("id") is not None and data.get("type") in _SLA_TYPES:
            found.append(
                SLA(
                    id=str(data["id"]),
                    type=str(data["type"]),
                    behavior=str(data.get("behavior") or "FAIL").upper(),
                    duration=duration,
                    assert_=None if data.get("assert") is None else str(data["assert"]),
                    labels=sla_labels,
                )
            )
    return tuple(found)
