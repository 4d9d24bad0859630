"""log.Log: write one or more messages to the taskrun logs."""

from __future__ import annotations

from typing import Any

import msgspec

from engine.core.errors import TaskFailed
from plugins.api import RunContext, TaskResult, runnable

LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR")


def check_level(level: str) -> str:
    """Normalise a Kestra log level name (``WARNING`` is accepted for ``WARN``)."""
    up = str(level).upper()
    if up == "WARNING":
        up = "WARN"
    if up not in LEVELS:
        raise TaskFailed(f"invalid log level {level!r}; expected one of {', '.join(LEVELS)}", retryable=False)
    return up


class Log(msgspec.Struct, frozen=True):
    message: str | list[Any]
    level: str = "INFO"


async def run(props: Log, ctx: RunContext) -> TaskResult:
    level = check_level(props.level)
    messages = props.message if isinstance(props.message, list) else [props.message]
    for message in messages:
        ctx.log(level, message if isinstance(message, str) else str(message))
    return TaskResult()


SPECS = [
    runnable(
        "io.kestra.plugin.core.log.Log",
        Log,
        run,
        "Log `message` (a string or a list of strings) at `level` (default INFO).",
    ),
]
