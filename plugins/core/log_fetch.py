"""log.Fetch: an execution's logs written to an internal-storage file (one JSON object a line, Ion-readable).

Properties as Kestra: ``executionId`` (default: the current execution), ``namespace``/``flowId``
(for another execution), ``tasksId`` (only these tasks), ``level`` (the lowest level kept, default
INFO). Outputs: ``uri`` (the ``.ion`` file) and ``size`` (the number of log lines written).

The logs come from the LOGS stream, through ``RunContext.read_logs``.
Lines are published asynchronously: a task fetching its own execution's logs sees the lines
already stored (Kestra's tests sleep a little before fetching for the same reason).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import msgspec

from plugins.api import LogRecord, RunContext, TaskResult, runnable
from plugins.core.log import LEVELS, check_level
from plugins.files import put_task_file, scratch_dir, temp_name


class Fetch(msgspec.Struct, frozen=True):
    namespace: str | None = None
    flowId: str | None = None
    executionId: str | None = None
    tasksId: list[str] | None = None
    level: str = "INFO"


def select(lines: Iterable[LogRecord], level: str, tasks: list[str] | None) -> list[LogRecord]:
    """Lines at ``level`` or above; with ``tasks``, only theirs, grouped task by task (Kestra's order)."""
    lowest = LEVELS.index(check_level(level))
    kept = [ln for ln in lines if ln.level in LEVELS and LEVELS.index(ln.level) >= lowest]
    if tasks is None:
        return kept
    return [ln for task in tasks for ln in kept if ln.task_id == task]


async def run_fetch(props: Fetch, ctx: RunContext) -> TaskResult:
    execution_id = props.executionId or ctx.execution_id
    namespace = props.namespace or ctx.namespace
    flow_id = props.flowId or ctx.flow_id
    lines = select(await ctx.read_logs(execution_id), props.level, props.tasksId)
    with scratch_dir(ctx) as tmp:
        target = tmp / temp_name(".ion")
        with target.open("w", encoding="utf-8") as out:
            for ln in lines:
                entry = {
                    "namespace": namespace,
                    "flowId": flow_id,
                    "taskId": ln.task_id,
                    "executionId": execution_id,
                    "taskRunId": ln.taskrun_id,
                    "attemptNumber": None if ln.attempt is None else ln.attempt - 1,
                    "timestamp": ln.date,
                    "level": ln.level,
                    "message": ln.message,
                }
                out.write(json.dumps({k: v for k, v in entry.items() if v is not None}) + "\n")
        uri = await put_task_file(ctx, target)
    return TaskResult(outputs={"uri": uri, "size": len(lines)})


SPECS = [
    runnable(
        "io.kestra.plugin.core.log.Fetch",
        Fetch,
        run_fetch,
        "Write an execution's logs (`executionId`, `tasksId`, lowest `level`) to an "
        "internal-storage file → outputs `uri`, `size`.",
        aliases=("io.kestra.core.tasks.log.Fetch",),
    ),
]
