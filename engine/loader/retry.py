"""``retry`` (of the flow, of a task): a type and the intervals that type takes."""

from __future__ import annotations

from typing import Any

from engine.core.model import Retry
from engine.loader.checker import Checker, closest
from engine.yamlpos import child_path

__all__ = ["retry"]

_RETRY_FIELDS: dict[str, tuple[str, ...]] = {
    "constant": ("interval",),
    "exponential": ("interval", "maxInterval", "delayFactor"),
    "random": ("minInterval", "maxInterval"),
}
_RETRY_REQUIRED: dict[str, tuple[str, ...]] = {
    "constant": ("interval",),
    "exponential": ("interval", "maxInterval"),
    "random": ("minInterval", "maxInterval"),
}
_RETRY_COMMON = ("type", "maxAttempt", "maxDuration", "warningOnRetry", "behavior")
_RETRY_BEHAVIORS = ("RETRY_FAILED_TASK", "CREATE_NEW_EXECUTION")


def retry(ctx: Checker, value: Any, path: str) -> Retry | None:
    data = ctx.mapping(value, path)
    if data is None:
        return None
    type_ = None
    if data.get("type") is None:
        ctx.add(path, "missing retry 'type' — add 'type: constant' (or exponential, random)")
    else:
        type_ = ctx.choice(data["type"], child_path(path, "type"), tuple(_RETRY_FIELDS), "retry type")
    if type_ is None:
        return None
    _unknown_fields(ctx, data, path, type_)
    for k in _RETRY_REQUIRED[type_]:
        if data.get(k) is None:
            ctx.add(path, f"a {type_} retry needs '{k}' — add '{k}: PT1S' (an ISO-8601 duration)")
    behavior = None
    if data.get("behavior") is not None:
        behavior = ctx.choice(
            data["behavior"], child_path(path, "behavior"), _RETRY_BEHAVIORS, "retry behavior"
        )
    return Retry(
        type=type_,
        interval=ctx.duration(data.get("interval"), child_path(path, "interval")),
        max_interval=ctx.duration(data.get("maxInterval"), child_path(path, "maxInterval")),
        min_interval=ctx.duration(data.get("minInterval"), child_path(path, "minInterval")),
        delay_factor=ctx.number(data.get("delayFactor"), child_path(path, "delayFactor")),
        max_attempt=ctx.integer(data.get("maxAttempt"), child_path(path, "maxAttempt"), minimum=1),
        max_duration=ctx.duration(data.get("maxDuration"), child_path(path, "maxDuration")),
        warning_on_retry=ctx.boolean(data.get("warningOnRetry"), child_path(path, "warningOnRetry")),
        behavior=behavior,
    )


def _unknown_fields(ctx: Checker, data: dict[Any, Any], path: str, type_: str) -> None:
    known = (*_RETRY_COMMON, *_RETRY_FIELDS[type_])
    for k in data:
        if k in known:
            continue
        if k == "maxAttempts":
            message = "unknown retry property 'maxAttempts' — Kestra calls it 'maxAttempt'"
        elif any(k in fields for fields in _RETRY_FIELDS.values()):
            message = (
                f"'{k}' does not apply to a {type_} retry — remove it or change "
                f"the type (constant: interval; exponential: interval, "
                f"maxInterval, delayFactor; random: minInterval, maxInterval)"
            )
        else:
            message = f"unknown retry property '{k}' — {closest(str(k), known)}"
        ctx.add(child_path(path, k), message, key=True)
