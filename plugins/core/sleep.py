"""flow.Sleep: wait for an ISO-8601 duration (cancellable)."""

from __future__ import annotations

import anyio
import msgspec

from engine.core.durations import parse_duration
from engine.core.errors import TaskFailed
from plugins.api import RunContext, TaskResult, runnable


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
    ctx.log("INFO", f"Waiting for {props.duration}")
    await anyio.sleep(seconds)
    return TaskResult()


SPECS = [
    runnable(
        "io.kestra.plugin.core.flow.Sleep",
        Sleep,
        run,
        "Wait for `duration` (ISO-8601, e.g. PT5S) before proceeding.",
    ),
]
