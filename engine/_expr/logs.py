"""``errorLogs()``: the ERROR log lines of the rendering execution, shaped as Kestra's ``LogEntry``.

Kestra reads the first 25 ERROR entries of the execution, oldest first, and asks again for up to 5
seconds while there are none: task logs are published without waiting for them to be stored, so the
line that failed a task may land after the errors branch starts rendering.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context

from engine.core.errors import ExpressionError
from engine.core.ports import LogLine

__all__ = ["error_logs_function"]

MAX_ENTRIES = 25
_FIRST_DELAY, _LONGEST_DELAY = 0.1, 1.0

LogReader = Callable[[str], Awaitable[Sequence[LogLine]]]


def _entry(line: LogLine, flow: Any, execution_id: str) -> dict[str, Any]:
    return {
        "namespace": flow.get("namespace"),
        "flowId": flow.get("id"),
        "taskId": line.task_id,
        "executionId": execution_id,
        "taskRunId": line.taskrun_id,
        "attemptNumber": line.attempt,
        "timestamp": line.date,
        "level": line.level,
        "message": line.message,
    }


def error_logs_function(read_logs: LogReader, *, patience: float = 5.0) -> Callable[..., Any]:
    """The async ``errorLogs()`` over ``read_logs`` (an execution id -> its log lines)."""

    @pass_context
    async def error_logs(context: Context) -> list[dict[str, Any]]:
        execution = context.get("execution") or {}
        execution_id = execution.get("id") if isinstance(execution, dict) else None
        if not execution_id:
            raise ExpressionError("errorLogs(): no execution here — use it in the tasks of a flow")
        flow = context.get("flow")
        flow = flow if isinstance(flow, dict) else {}
        delay, waited = _FIRST_DELAY, 0.0
        while True:
            errors = [line for line in await read_logs(execution_id) if line.level == "ERROR"]
            if errors or waited >= patience:
                break
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, _LONGEST_DELAY)
        errors.sort(key=lambda line: line.date)
        return [_entry(line, flow, execution_id) for line in errors[:MAX_ENTRIES]]

    error_logs.__name__ = error_logs.__qualname__ = "errorLogs"  # what an error names: the Pebble name
    return error_logs
