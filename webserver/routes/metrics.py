"""``/api/v1/metrics/{executionId}``: the taskrun metrics of an execution, as Kestra's MetricController.

The answer is Kestra's ``PagedResults<MetricEntry>``: ``{"results": [...], "total": n}``, each entry with
``namespace``, ``flowId``, ``taskId``, ``executionId``, ``taskRunId``, ``type``, ``name``, ``value`` (a
timer's in milliseconds), ``timestamp`` and ``tags``. The metrics are read from the execution's log.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get
from litestar.params import FromPath, QueryParameter

from engine.core.metrics import metric_entries
from eventstore.reader import read_execution
from webserver.http import Page, Size, deps, not_found, page_of
from webserver.query import execution_row


@get("/metrics/{execution_id:str}", tags=["Metrics"])
async def execution_metrics(
    request: Request[Any, Any, Any],
    execution_id: FromPath[str],
    page: Page = 1,
    size: Size = 10,
    task_run_id: Annotated[str | None, QueryParameter(name="taskRunId", description="One taskrun")] = None,
    task_id: Annotated[str | None, QueryParameter(name="taskId", description="One task")] = None,
) -> dict[str, Any]:
    """The metrics the tasks of an execution recorded (counters, timers), oldest first."""
    d = deps(request)
    await execution_row(d, execution_id)  # 404 for an unknown or deleted execution
    state = (await read_execution(d.store, execution_id, leader=False)).state
    if state is None:
        raise not_found(f"execution {execution_id} not found")
    entries = metric_entries(state)
    if task_id is not None:  # Kestra: taskId wins over taskRunId
        entries = [e for e in entries if e["taskId"] == task_id]
    elif task_run_id is not None:
        entries = [e for e in entries if e["taskRunId"] == task_run_id]
    entries.sort(key=lambda e: e["timestamp"] or "")
    return {"results": page_of(entries, page, size), "total": len(entries)}


ROUTES = [execution_metrics]
