"""``/api/v1/flows``: deploy (every change of source is a new revision), read, search, validate, delete."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from datetime import datetime
from typing import Annotated, Any

import yaml
from litestar import Request, delete, get, post, put
from litestar.params import FromPath, FromQuery, QueryParameter

from engine.core.errors import FlowValidationError, Issue
from engine.loader.loader import load_flow
from engine.yamlpos import safe_load
from eventstore import subjects as S
from webserver.filters import FLOWS, filter_sql
from webserver.http import (
    Deps,
    LabelsParam,
    Page,
    Size,
    conflict,
    deps,
    not_found,
    read_text,
    unprocessable,
    with_body,
    yaml_body,
)
from webserver.query import Where, iso, paged


def issues_json(issues: list[Issue]) -> list[dict[str, Any]]:
    return [
        {"path": i.path, "message": i.message, "line": i.line, "column": i.column, "file": i.file}
        for i in issues
    ]


def split_documents(text: str) -> list[tuple[int, str]]:
    """YAML documents separated by ``---`` lines, each with the line it starts at (0-based offset)."""
    docs: list[tuple[int, str]] = []
    start, lines = 0, list[str]()
    for n, line in enumerate(text.splitlines(keepends=True)):
        if re.match(r"^---\s*$", line):
            if "".join(lines).strip():
                docs.append((start, "".join(lines)))
            start, lines = n + 1, []
        else:
            lines.append(line)
    if "".join(lines).strip():
        docs.append((start, "".join(lines)))
    return docs


def shift(issues: list[Issue], offset: int) -> list[Issue]:
    return [
        Issue(i.path, i.message, None if i.line is None else i.line + offset, i.column, i.file)
        for i in issues
    ]


def flow_json(
    namespace: str, flow_id: str, revision: int, source: str, deleted: bool, updated: Any = None
) -> dict[str, Any]:
    try:
        doc = safe_load(source) if source else None
    except (yaml.YAMLError, FlowValidationError):
        doc = None
    out: dict[str, Any] = dict(doc) if isinstance(doc, dict) else {}
    out.update(id=flow_id, namespace=namespace, revision=revision, deleted=deleted, source=source)
    out["updated"] = iso(updated)  # when this revision was stored
    out = json.loads(json.dumps(out, default=str))  # YAML dates and the like as strings
    return out


def parse_flow(text: str) -> Any:
    if not text.strip():
        raise unprocessable("the body is empty: send the flow's YAML (Content-Type: application/x-yaml)")
    try:
        return load_flow(text)
    except FlowValidationError as exc:
        raise unprocessable(
            f"the flow is invalid ({len(exc.issues)} problem(s)): "
            + "; ".join(str(i) for i in exc.issues[:5]),
            issues_json(exc.issues),
        ) from None


async def save_flow(d: Deps, text: str) -> dict[str, Any]:
    flow = parse_flow(text)
    rev = await d.store.put_flow(flow.namespace, flow.id, text)
    await d.indexer.wait_applied(S.FLOWS, rev.seq)
    rows = await d.indexer.aquery(
        "SELECT updated FROM flow_revisions WHERE namespace = ? AND flow_id = ? AND revision = ?",
        [flow.namespace, flow.id, rev.revision],
    )
    updated = rows[0][0] if rows else None
    return flow_json(flow.namespace, flow.id, rev.revision, rev.source, False, updated)


async def remove_flow(d: Deps, namespace: str, flow_id: str) -> None:
    """Delete a flow and wait until the projection shows it deleted."""
    await d.store.delete_flow(namespace, flow_id)
    await d.indexer.wait_for(
        "SELECT 1 FROM flows WHERE namespace = ? AND flow_id = ? AND deleted", [namespace, flow_id], 5
    )


async def current_flow(d: Deps, namespace: str, flow_id: str) -> tuple[Any, ...] | None:
    rows = await d.indexer.aquery(
        "SELECT revision, source, deleted, updated FROM flows WHERE namespace = ? AND flow_id = ?",
        [namespace, flow_id],
    )
    if rows and not rows[0][2]:
        return rows[0]
    # The projection may lag a save that just returned (a busy indexer): the log decides.
    latest = await d.store.get_flow(namespace, flow_id)
    if latest is None or (rows and rows[0][0] >= latest.revision):
        return None
    saved = (
        datetime.fromisoformat(latest.date.replace("Z", "+00:00")).replace(tzinfo=None)
        if latest.date
        else None
    )
    return (latest.revision, latest.source, False, saved)


@post("/flows", **with_body(yaml_body("The flow's YAML source"), "Flows"))
async def create_flow(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """Create a flow; 409 when it exists (as Kestra: a new revision is ``PUT /flows/{namespace}/{id}``)."""
    d = deps(request)
    text = await read_text(request)
    flow = parse_flow(text)
    if await d.store.get_flow(flow.namespace, flow.id) is not None:  # the log, not the projection
        raise conflict(
            f"flow {flow.namespace}.{flow.id} already exists: update it with "
            f"PUT /api/v1/flows/{flow.namespace}/{flow.id}"
        )
    return await save_flow(d, text)


@put("/flows/{namespace:str}/{flow_id:str}", **with_body(yaml_body("The flow's YAML source"), "Flows"))
async def update_flow(
    request: Request[Any, Any, Any], namespace: FromPath[str], flow_id: FromPath[str]
) -> dict[str, Any]:
    """Save a new revision of an existing flow (its id and namespace must match the path)."""
    d = deps(request)
    text = await read_text(request)
    flow = parse_flow(text)
    if (flow.namespace, flow.id) != (namespace, flow_id):
        raise unprocessable(
            f"the body is flow {flow.namespace}.{flow.id} but the path is {namespace}.{flow_id}: "
            "change one of them (renaming a flow is a new flow: POST /api/v1/flows)"
        )
    if not await current_flow(d, namespace, flow_id):
        raise not_found(f"flow {namespace}.{flow_id} does not exist: create it with POST /api/v1/flows")
    return await save_flow(d, text)


@get("/flows/{namespace:str}/{flow_id:str}", tags=["Flows"])
async def get_flow(
    request: Request[Any, Any, Any],
    namespace: FromPath[str],
    flow_id: FromPath[str],
    revision: Annotated[int | None, QueryParameter(ge=1, description="A past revision")] = None,
) -> dict[str, Any]:
    """A flow (its latest revision, or ``revision``), with its source."""
    d = deps(request)
    if revision is None:
        row = await current_flow(d, namespace, flow_id)
        if row is None:
            raise not_found(f"flow {namespace}.{flow_id} is not deployed")
        return flow_json(namespace, flow_id, row[0], row[1], False, row[3])
    rows = await d.indexer.aquery(
        "SELECT revision, source, deleted, updated FROM flow_revisions WHERE namespace = ? "
        "AND flow_id = ? AND revision = ? AND NOT deleted",
        [namespace, flow_id, revision],
    )
    if not rows:
        raise not_found(f"flow {namespace}.{flow_id} has no revision {revision}")
    return flow_json(namespace, flow_id, rows[0][0], rows[0][1], False, rows[0][3])


@get("/flows/{namespace:str}/{flow_id:str}/revisions", tags=["Flows"])
async def flow_revisions(
    request: Request[Any, Any, Any], namespace: FromPath[str], flow_id: FromPath[str]
) -> list[dict[str, Any]]:
    """Every revision of a flow, oldest first (a deletion is a revision marked ``deleted``)."""
    rows = await deps(request).indexer.aquery(
        "SELECT revision, source, deleted, updated FROM flow_revisions "
        "WHERE namespace = ? AND flow_id = ? ORDER BY seq",
        [namespace, flow_id],
    )
    if not rows:
        raise not_found(f"flow {namespace}.{flow_id} has no revisions")
    return [flow_json(namespace, flow_id, r[0], r[1], r[2], r[3]) for r in rows]


@delete("/flows/{namespace:str}/{flow_id:str}", tags=["Flows"])
async def delete_flow(
    request: Request[Any, Any, Any], namespace: FromPath[str], flow_id: FromPath[str]
) -> None:
    """Delete a flow (its revisions stay readable)."""
    d = deps(request)
    if await current_flow(d, namespace, flow_id) is None:
        raise not_found(f"flow {namespace}.{flow_id} is not deployed")
    await remove_flow(d, namespace, flow_id)


@get("/flows/search", tags=["Flows"])
async def search_flows(
    request: Request[Any, Any, Any],
    page: Page = 1,
    size: Size = 25,
    namespace: FromQuery[str | None] = None,
    q: Annotated[str | None, QueryParameter(description="Text in the id, namespace or description")] = None,
    labels: LabelsParam = None,
) -> dict[str, Any]:
    """Deployed flows, filtered (the parameters and Kestra's ``filters[field][OPERATION]=value``)
    and paged: ``{results, total}``."""
    where = Where("NOT deleted")
    where.namespace(namespace)
    if q:
        where.add(
            "(contains(lower(flow_id), lower(?)) OR contains(lower(namespace), lower(?)) "
            "OR contains(lower(coalesce(description, '')), lower(?)))",
            q,
            q,
            q,
        )
    where.labels(labels)
    filtered, more = filter_sql(request, FLOWS)
    where.add(filtered, *more)
    total, rows = await paged(
        deps(request),
        "namespace, flow_id, revision, source, updated",
        "flows",
        where.sql,
        where.params,
        "namespace, flow_id",
        page,
        size,
    )
    return {"results": [flow_json(r[0], r[1], r[2], r[3], False, r[4]) for r in rows], "total": total}


@delete("/flows/delete/by-query", status_code=200, tags=["Flows"])
async def delete_flows_by_query(request: Request[Any, Any, Any]) -> dict[str, int]:
    """Delete every deployed flow the ``filters[...]`` match (all of them without filters, as
    Kestra): ``{count}``."""
    d = deps(request)
    filtered, params = filter_sql(request, FLOWS)
    rows = await d.indexer.aquery(
        f"SELECT namespace, flow_id FROM flows WHERE NOT deleted AND {filtered}", params
    )
    for ns, fid in rows:
        await remove_flow(d, ns, fid)
    return {"count": len(rows)}


@get("/flows/{namespace:str}", tags=["Flows"])
async def namespace_flows(request: Request[Any, Any, Any], namespace: FromPath[str]) -> list[dict[str, Any]]:
    """The flows of one namespace (exactly this namespace)."""
    rows = await deps(request).indexer.aquery(
        "SELECT namespace, flow_id, revision, source, updated FROM flows WHERE namespace = ? "
        "AND NOT deleted ORDER BY flow_id",
        [namespace],
    )
    return [flow_json(r[0], r[1], r[2], r[3], False, r[4]) for r in rows]


@get("/flows/distinct-namespaces", tags=["Flows"])
async def flow_namespaces(request: Request[Any, Any, Any]) -> list[str]:
    rows = await deps(request).indexer.aquery(
        "SELECT DISTINCT namespace FROM flows WHERE NOT deleted ORDER BY 1"
    )
    return [r[0] for r in rows]


def validate_documents(text: str) -> list[dict[str, Any]]:
    out = []
    for index, (offset, source) in enumerate(split_documents(text)):
        item: dict[str, Any] = {
            "index": index,
            "flow": None,
            "namespace": None,
            "constraints": None,
            "issues": [],
        }
        with contextlib.suppress(yaml.YAMLError, FlowValidationError):
            doc = safe_load(source)
            if isinstance(doc, dict):
                item["flow"] = doc.get("id") if isinstance(doc.get("id"), str) else None
                item["namespace"] = doc.get("namespace") if isinstance(doc.get("namespace"), str) else None
        try:
            load_flow(source, strict_expressions=True)
        except FlowValidationError as exc:
            issues = shift(exc.issues, offset)
            item["constraints"] = "\n".join(str(i) for i in issues)
            item["issues"] = issues_json(issues)
        out.append(item)
    return out


@post("/flows/validate", **with_body(yaml_body("One or more flows separated by ---"), "Flows"))
async def validate_flows(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
    """Check flows without saving them: the same problems as ``engine flow validate``, with lines."""
    text = await read_text(request)
    if not text.strip():
        raise unprocessable("the body is empty: send one or more flows' YAML separated by ---")
    return await asyncio.to_thread(validate_documents, text)


NAMESPACE_FLOWS = yaml_body("Every flow of the namespace, separated by ---")
DeleteAbsent = Annotated[
    bool, QueryParameter(description="Delete the namespace's flows absent from the body")
]


@post("/flows/{namespace:str}", **with_body(NAMESPACE_FLOWS, "Flows"))
async def update_namespace(
    request: Request[Any, Any, Any], namespace: FromPath[str], delete: DeleteAbsent = False
) -> list[dict[str, Any]]:
    """Bulk update: save every flow of the body (all valid, or none saved); optionally delete the others."""
    d = deps(request)
    text = await read_text(request)
    flows, problems = [], []
    for index, (offset, source) in enumerate(split_documents(text)):
        try:
            flow = load_flow(source)
        except FlowValidationError as exc:
            problems += [{"index": index, **i} for i in issues_json(shift(exc.issues, offset))]
            continue
        if flow.namespace != namespace and not flow.namespace.startswith(namespace + "."):
            problems.append(
                {"index": index, "path": "namespace", "message": f"{flow.namespace} is not in {namespace}"}
            )
        flows.append((flow, source))
    if problems:
        raise unprocessable(f"{len(problems)} problem(s): nothing was saved", problems)
    saved = [await save_flow(d, source) for _, source in flows]
    if delete:
        keep = {(f.namespace, f.id) for f, _ in flows}
        rows = await d.indexer.aquery(
            "SELECT namespace, flow_id FROM flows WHERE namespace = ? AND NOT deleted", [namespace]
        )
        for ns, fid in rows:
            if (ns, fid) not in keep:
                await remove_flow(d, ns, fid)
    return saved


ROUTES = [
    create_flow,
    update_flow,
    get_flow,
    flow_revisions,
    delete_flow,
    search_flows,
    delete_flows_by_query,
    namespace_flows,
    flow_namespaces,
    validate_flows,
    update_namespace,
]
