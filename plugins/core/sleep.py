"""flow.Sleep: wait for an ISO-8601 duration (cancellable)."""

from __future__ import annotations

import re

import anyio
import msgspec

from engine.errors import TaskFailed
from plugins.api import PluginSpec, RunContext, TaskResult

_ISO = re.compile(
    r"^(?P<sign>[-+])?P(?:(?P<weeks>[-+]?\d+(?:[.,]\d+)?)W)?(?:(?P<days>[-+]?\d+(?:[.,]\d+)?)D)?"
    r"(?:T(?:(?P<hours>[-+]?\d+(?:[.,]\d+)?)H)?(?:(?P<minutes>[-+]?\d+(?:[.,]\d+)?)M)?"
    r"(?:(?P<seconds>[-+]?\d+(?:[.,]\d+)?)S)?)?$",
    re.IGNORECASE,
)
_UNITS = {"weeks": 604800.0, "days": 86400.0, "hours": 3600.0, "minutes": 60.0, "seconds": 1.0}


def parse_duration(value: str | float | int) -> float:
    """Seconds in an ISO-8601 duration (``PT1M30S``, ``P1DT2H``, ``PT0.5S``); numbers are seconds.

    Raises ValueError for anything else.
    """
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}")
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    m = _ISO.match(text)
    if m is None or text.upper() in ("P", "PT") or text.upper().endswith("T"):
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"invalid ISO-8601 duration {value!r} (e.g. PT30S, PT5M, P1D)") from None
    total = 0.0
    for unit, factor in _UNITS.items():
        part = m.group(unit)
        if part is not None:
            total += float(part.replace(",", ".")) * factor
    return -total if m.group("sign") == "-" else total


def duration_prop(value: str | float | int, name: str) -> float:
    """``parse_duration`` for a task property: a bad value fails the task (not retryable)."""
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise TaskFailed(f"{name}: {exc}", retryable=False) from None


class Sleep(msgspec.Struct, frozen=True):
    duration: str | float


async def run(props: Sleep, ctx: RunContext) -> TaskResult:
    seconds = duration_prop(props.duration, "duration")
    if seconds < 0:
        raise TaskFailed(f"duration: must not be negative, got {props.duration!r}", retryable=False)
    ctx.log("INFO", f"Waiting for {props.duration}")
    await anyio.sleep(seconds)
    return TaskResult()


SPECS = [
    PluginSpec("io.kestra.plugin.core.flow.Sleep", "runnable", Sleep, run=run,
               description="Wait for `duration` (ISO-8601, e.g. PT5S) before proceeding."),
]
