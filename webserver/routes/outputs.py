"""``/outputs`` and ``/namespaces/search``: Kestra's reads of an execution's outputs, and of the
namespaces the deployed flows make (the open-source shape: a namespace exists through its flows)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from litestar import Request, get
from litestar.params import FromPath, QueryParameter

from webserver.filters import Resource, choice, filter_sql, query_text, text
from webserver.http import Page, Size, deps, not_found, page_of
from webserver.query import execution_row


def _taskruns(doc: dict[str, Any]) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = doc.get("taskRunList") or []
    return runs


@get("/outputs/executions/{execution_id:str}", tags=["Outputs"])
async def execution_outputs(request: Request[Any, Any, Any], execution_id: FromPath[str]) -> dict[str, Any]:
    """The flow's ``outputs`` of an execution (empty until it ends)."""
    doc = json.loads((await execution_row(deps(request), execution_id))[0])
    outputs: dict[str, Any] = doc.get("outputs") or {}
    return outputs


@get("/outputs/tasks/{execution_id:str}", tags=["Outputs"])
async def task_outputs(request: Request[Any, Any, Any], execution_id: FromPath[str]) -> list[dict[str, Any]]:
    """The taskruns of an execution that have outputs: ``[{taskId, taskRunId, value, iteration, inline}]``."""
    doc = json.loads((await execution_row(deps(request), execution_id))[0])
    return [
        {
            "taskId": tr["taskId"],
            "taskRunId": tr["id"],
            "value": tr.get("value"),
            "iteration": tr.get("iteration"),
            "inline": True,  # the execution's document holds them
        }
        for tr in _taskruns(doc)
        if tr.get("outputs")
    ]


@get("/outputs/tasks/{execution_id:str}/{taskrun_id:str}", tags=["Outputs"])
async def taskrun_outputs(
    request: Request[Any, Any, Any], execution_id: FromPath[str], taskrun_id: FromPath[str]
) -> dict[str, Any]:
    """The outputs of one taskrun."""
    doc = json.loads((await execution_row(deps(request), execution_id))[0])
    for tr in _taskruns(doc):
        if tr["id"] == taskrun_id:
            outputs: dict[str, Any] = tr.get("outputs") or {}
            return outputs
    raise not_found(f"execution {execution_id} has no taskrun {taskrun_id}")


NAMESPACES = Resource(
    "namespaces",
    {
        "q": query_text("id"),
        "namespace": text("id"),
        "existingOnly": choice({"TRUE": "existing", "FALSE": "true"}),
    },
)


async def namespace_rows(request: Request[Any, Any, Any]) -> list[tuple[str, bool]]:
    """(namespace, has flows) of every namespace of a deployed flow and of their parents."""
    rows = await deps(request).indexer.aquery("SELECT DISTINCT namespace FROM flows WHERE NOT deleted")
    existing = {r[0] for r in rows}
    every = {".".join(ns.split(".")[:i]) for ns in existing for i in range(1, ns.count(".") + 2)}
    return sorted((ns, ns in existing) for ns in every)


@get("/namespaces/search", tags=["Namespaces"])
async def search_namespaces(
    request: Request[Any, Any, Any],
    page: Page = 1,
    size: Size = 25,
    q: Annotated[str | None, QueryParameter(description="Text in the namespace")] = None,
    existing: Annotated[bool, QueryParameter(description="Only namespaces with flows")] = False,
) -> dict[str, Any]:
    """The namespaces of the deployed flows and their parents, filtered (``q``, ``existing``,
    Kestra's ``filters[q|namespace|existingOnly][OP]``), paged: ``{results, total}``."""
    found = await namespace_rows(request)
    where, params = filter_sql(request, NAMESPACES)
    if q:
        where, params = f"{where} AND contains(lower(id), ?)", [*params, q.lower()]
    if existing:
        where += " AND existing"
    if found:
        rows = await deps(request).indexer.aquery(
            "SELECT id, existing FROM (SELECT unnest(?::VARCHAR[]) AS id, unnest(?::BOOLEAN[]) AS existing) "
            f"WHERE {where} ORDER BY id",
            [[r[0] for r in found], [r[1] for r in found], *params],
        )
        found = [(r[0], r[1]) for r in rows]
    results = [{"id": ns, "deleted": False} for ns, _ in page_of(found, page, size)]
    return {"results": results, "total": len(found)}


@get("/namespaces/{namespace:str}", tags=["Namespaces"])
async def get_namespace(request: Request[Any, Any, Any], namespace: FromPath[str]) -> dict[str, Any]:
    """A namespace of the deployed flows (or a parent of one): ``{id, deleted}``."""
    if namespace not in {ns for ns, _ in await namespace_rows(request)}:
        raise not_found(f"namespace {namespace!r} has no flows (a namespace exists through its flows)")
    return {"id": namespace, "deleted": False}


ROUTES = [execution_outputs, task_outputs, taskrun_outputs, search_namespaces, get_namespace]
