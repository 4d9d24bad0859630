"""The ``/api/v1`` routes, shaped like Kestra's: flows, executions, logs, KV, stats.

Reads come from the DuckDB projection (``Indexer``) and, for live following and raw events,
from the log; writes are flows (new revisions) and commands on an execution's inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import msgspec
import yaml
from litestar import Request, Response, delete, get, post, put
from litestar.exceptions import HTTPException
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage
from nats.js import api as jsapi

from engine.clock import utcnow
from engine.core import events as ev
from engine.core.errors import EngineError, FlowNotFound, FlowValidationError, InputError, Issue
from engine.core.execution import Execution, evolve
from engine.core.shape import execution_json
from engine.core.states import State
from eventstore import subjects as S
from eventstore.indexer import LABEL_SEP, LEVELS, TERMINAL, Indexer, delete_execution
from eventstore.store import JetStreamKV, Store

JSON = "application/json"
MAX_BODY = 5 * 1024 * 1024


class ApiError(HTTPException):
    """An error with a status and a message a person can act on (rendered as JSON)."""

    def __init__(self, status: int, message: str, errors: list[Any] | None = None) -> None:
        super().__init__(detail=message, status_code=status, extra={"errors": errors} if errors else None)


def not_found(message: str) -> ApiError:
    return ApiError(404, message)


def conflict(message: str) -> ApiError:
    return ApiError(409, message)


def bad(message: str, errors: list[Any] | None = None) -> ApiError:
    return ApiError(400, message, errors)


def unprocessable(message: str, errors: list[Any] | None = None) -> ApiError:
    return ApiError(422, message, errors)


@dataclass
class Deps:
    runtime: Any  # engine.runtime.Runtime (store, flows, create_execution, restart, replay...)
    indexer: Indexer
    backfills: dict[tuple[str, str, str], Any] = field(default_factory=dict)  # webserver.triggers

    @property
    def store(self) -> Store:
        store: Store = self.runtime.store
        return store


def deps(request: Request[Any, Any, Any]) -> Deps:
    d: Deps = request.app.state.deps
    return d


def raw_json(body: bytes | str, status: int = 200) -> Response[bytes]:
    data = body.encode() if isinstance(body, str) else body
    return Response(content=data, media_type=JSON, status_code=status)


def yaml_body(description: str) -> type[Operation]:
    """An operation whose request body is YAML text (litestar cannot infer it from ``request``)."""

    class YamlOperation(Operation):
        def __post_init__(self) -> None:
            self.request_body = RequestBody(
                content={"application/x-yaml": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))},
                description=description,
                required=True,
            )

    return YamlOperation


def json_body(description: str, required: bool = False) -> type[Operation]:
    class JsonOperation(Operation):
        def __post_init__(self) -> None:
            self.request_body = RequestBody(
                content={
                    JSON: OpenAPIMediaType(schema=Schema(type=OpenAPIType.OBJECT)),
                    "multipart/form-data": OpenAPIMediaType(schema=Schema(type=OpenAPIType.OBJECT)),
                },
                description=description,
                required=required,
            )

    return JsonOperation


async def read_text(request: Request[Any, Any, Any]) -> str:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise ApiError(413, f"the body is {len(body)} bytes; the limit is {MAX_BODY}")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad(f"the body is not UTF-8 text: {exc}") from None


# ---- parsing helpers ---------------------------------------------------------------------------


def parse_date(value: str | None, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise bad(f"{name}: {value!r} is not an ISO-8601 date-time, e.g. 2026-01-31T12:00:00Z") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def parse_labels(values: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition(LABEL_SEP)
        if not sep or not key:
            raise bad(f"labels: {item!r} is not key:value (e.g. labels=team:data)")
        out[key] = value
    return out


def parse_states(values: list[str] | None) -> list[str]:
    out = []
    for v in values or []:
        try:
            out.append(State(v.upper()).value)
        except ValueError:
            raise bad(
                f"state: {v!r} is not a state; use one of {', '.join(s.value for s in State)}"
            ) from None
    return out


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.isoformat(timespec="milliseconds") + "Z"


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


# ---- flows ---------------------------------------------------------------------------------------


def flow_json(namespace: str, flow_id: str, revision: int, source: str, deleted: bool) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(source) if source else None
    except yaml.YAMLError:
        doc = None
    out: dict[str, Any] = dict(doc) if isinstance(doc, dict) else {}
    out.update(id=flow_id, namespace=namespace, revision=revision, deleted=deleted, source=source)
    out = json.loads(json.dumps(out, default=str))  # YAML dates and the like as strings
    return out


def parse_flow(text: str) -> Any:
    from engine.flow import load_flow

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
    return flow_json(flow.namespace, flow.id, rev.revision, rev.source, False)


@post("/flows", operation_class=yaml_body("The flow's YAML source"), status_code=200, tags=["Flows"])
async def create_flow(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """Create a flow, or save a new revision of it (every change of source is a new revision)."""
    return await save_flow(deps(request), await read_text(request))


@put(
    "/flows/{namespace:str}/{flow_id:str}",
    operation_class=yaml_body("The flow's YAML source"),
    status_code=200,
    tags=["Flows"],
)
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


async def current_flow(d: Deps, namespace: str, flow_id: str) -> tuple[Any, ...] | None:
    rows = await d.indexer.aquery(
        "SELECT revision, source, deleted FROM flows WHERE namespace = ? AND flow_id = ?",
        [namespace, flow_id],
    )
    if not rows or rows[0][2]:
        return None
    return rows[0]


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
        return flow_json(namespace, flow_id, row[0], row[1], False)
    rows = await d.indexer.aquery(
        "SELECT revision, source, deleted FROM flow_revisions WHERE namespace = ? AND flow_id = ? "
        "AND revision = ? AND NOT deleted",
        [namespace, flow_id, revision],
    )
    if not rows:
        raise not_found(f"flow {namespace}.{flow_id} has no revision {revision}")
    return flow_json(namespace, flow_id, rows[0][0], rows[0][1], False)


@get("/flows/{namespace:str}/{flow_id:str}/revisions", tags=["Flows"])
async def flow_revisions(
    request: Request[Any, Any, Any], namespace: FromPath[str], flow_id: FromPath[str]
) -> list[dict[str, Any]]:
    """Every revision of a flow, oldest first (a deletion is a revision marked ``deleted``)."""
    rows = await deps(request).indexer.aquery(
        "SELECT revision, source, deleted FROM flow_revisions "
        "WHERE namespace = ? AND flow_id = ? ORDER BY seq",
        [namespace, flow_id],
    )
    if not rows:
        raise not_found(f"flow {namespace}.{flow_id} has no revisions")
    return [flow_json(namespace, flow_id, r[0], r[1], r[2]) for r in rows]


@delete("/flows/{namespace:str}/{flow_id:str}", tags=["Flows"])
async def delete_flow(
    request: Request[Any, Any, Any], namespace: FromPath[str], flow_id: FromPath[str]
) -> None:
    """Delete a flow (its revisions stay readable)."""
    d = deps(request)
    if await current_flow(d, namespace, flow_id) is None:
        raise not_found(f"flow {namespace}.{flow_id} is not deployed")
    await d.store.delete_flow(namespace, flow_id)
    await d.indexer.wait_for(
        "SELECT 1 FROM flows WHERE namespace = ? AND flow_id = ? AND deleted", [namespace, flow_id], 5
    )


def page_params(page: int, size: int) -> tuple[int, int]:
    return size, (page - 1) * size


Page = Annotated[int, QueryParameter(ge=1, le=1_000_000, description="1-based page number")]
Size = Annotated[int, QueryParameter(ge=1, le=1000, description="Results per page")]


@get("/flows/search", tags=["Flows"])
async def search_flows(
    request: Request[Any, Any, Any],
    page: Page = 1,
    size: Size = 25,
    namespace: FromQuery[str | None] = None,
    q: Annotated[str | None, QueryParameter(description="Text in the id, namespace or description")] = None,
    labels: Annotated[list[str] | None, QueryParameter(description="key:value (repeat)")] = None,
) -> dict[str, Any]:
    """Deployed flows, filtered and paged: ``{results, total}``."""
    where, params = ["NOT deleted"], []
    if namespace:
        where.append("(namespace = ? OR starts_with(namespace, ?))")
        params += [namespace, namespace + "."]
    if q:
        where.append(
            "(contains(lower(flow_id), lower(?)) OR contains(lower(namespace), lower(?)) "
            "OR contains(lower(coalesce(description, '')), lower(?)))"
        )
        params += [q, q, q]
    for k, v in parse_labels(labels).items():
        where.append("list_contains(labels, ?)")
        params.append(f"{k}{LABEL_SEP}{v}")
    limit, offset = page_params(page, size)
    sql_where = " AND ".join(where)
    ix = deps(request).indexer
    total = (await ix.aquery(f"SELECT count(*) FROM flows WHERE {sql_where}", params))[0][0]
    rows = await ix.aquery(
        f"SELECT namespace, flow_id, revision, source FROM flows WHERE {sql_where} "
        "ORDER BY namespace, flow_id LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return {"results": [flow_json(r[0], r[1], r[2], r[3], False) for r in rows], "total": total}


@get("/flows/{namespace:str}", tags=["Flows"])
async def namespace_flows(request: Request[Any, Any, Any], namespace: FromPath[str]) -> list[dict[str, Any]]:
    """The flows of one namespace (exactly this namespace)."""
    rows = await deps(request).indexer.aquery(
        "SELECT namespace, flow_id, revision, source FROM flows WHERE namespace = ? AND NOT deleted "
        "ORDER BY flow_id",
        [namespace],
    )
    return [flow_json(r[0], r[1], r[2], r[3], False) for r in rows]


@get("/flows/distinct-namespaces", tags=["Flows"])
async def flow_namespaces(request: Request[Any, Any, Any]) -> list[str]:
    rows = await deps(request).indexer.aquery(
        "SELECT DISTINCT namespace FROM flows WHERE NOT deleted ORDER BY 1"
    )
    return [r[0] for r in rows]


def validate_documents(text: str) -> list[dict[str, Any]]:
    from engine.flow import load_flow

    out = []
    for index, (offset, source) in enumerate(split_documents(text)):
        item: dict[str, Any] = {
            "index": index,
            "flow": None,
            "namespace": None,
            "constraints": None,
            "issues": [],
        }
        with contextlib.suppress(yaml.YAMLError):
            doc = yaml.safe_load(source)
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


@post(
    "/flows/validate",
    operation_class=yaml_body("One or more flows separated by ---"),
    status_code=200,
    tags=["Flows"],
)
async def validate_flows(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
    """Check flows without saving them: the same problems as ``engine flow validate``, with lines."""
    text = await read_text(request)
    if not text.strip():
        raise unprocessable("the body is empty: send one or more flows' YAML separated by ---")
    return await asyncio.to_thread(validate_documents, text)


@post(
    "/flows/{namespace:str}",
    operation_class=yaml_body("Every flow of the namespace, separated by ---"),
    status_code=200,
    tags=["Flows"],
)
async def update_namespace(
    request: Request[Any, Any, Any],
    namespace: FromPath[str],
    delete: Annotated[
        bool, QueryParameter(description="Delete the namespace's flows absent from the body")
    ] = False,
) -> list[dict[str, Any]]:
    """Bulk update: save every flow of the body (all valid, or none saved); optionally delete the others."""
    from engine.flow import load_flow

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
                await d.store.delete_flow(ns, fid)
                await d.indexer.wait_for(
                    "SELECT 1 FROM flows WHERE namespace = ? AND flow_id = ? AND deleted", [ns, fid], 5
                )
    return saved


# ---- executions ----------------------------------------------------------------------------


async def execution_row(d: Deps, execution_id: str) -> tuple[Any, ...]:
    rows = await d.indexer.aquery(
        "SELECT doc, state, namespace, flow_id FROM executions WHERE id = ?", [execution_id]
    )
    if not rows:
        raise not_found(
            f"execution {execution_id} not found (deleted, or not indexed yet: retry in a moment)"
        )
    return rows[0]


async def form_inputs(
    d: Deps, request: Request[Any, Any, Any], flow: Any, execution_id: str
) -> dict[str, Any]:
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data") or ctype.startswith("application/x-www-form-urlencoded"):
        from litestar.datastructures import UploadFile

        from eventstore.storage import InternalStorage, input_uri

        form = await request.form()
        out: dict[str, Any] = {}
        storage = InternalStorage(d.store)
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                data = await value.read()
                uri = input_uri(flow.namespace, flow.id, execution_id, key, value.filename or key)
                out[key] = await storage.put(uri, data)
            else:
                out[key] = value
        return out
    body = await request.body()
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise bad(
            f"the body is not JSON ({exc}); send inputs as a JSON object or multipart/form-data"
        ) from None
    if not isinstance(data, dict):
        raise bad('the body must be a JSON object of inputs, e.g. {"name": "Ada"}')
    return data


@post(
    "/executions/{namespace:str}/{flow_id:str}",
    operation_class=json_body("Inputs: a JSON object, or multipart/form-data (files are uploaded)"),
    status_code=200,
    tags=["Executions"],
)
async def create_execution(
    request: Request[Any, Any, Any],
    namespace: FromPath[str],
    flow_id: FromPath[str],
    labels: Annotated[list[str] | None, QueryParameter(description="key:value (repeat)")] = None,
    revision: Annotated[int | None, QueryParameter(ge=1)] = None,
    wait: Annotated[bool, QueryParameter(description="Answer when the execution has ended")] = False,
) -> dict[str, Any]:
    """Start an execution of a flow with typed inputs; answers at once (state CREATED) unless ``wait``."""
    from engine.core.inputs import secret_input_ids
    from engine.expressions import Expressions
    from engine.inputs import resolve_inputs
    from engine.runtime import new_execution_id

    d = deps(request)
    given_labels = parse_labels(labels)
    try:
        flow = await d.runtime.flows.get(namespace, flow_id, revision)
    except FlowNotFound as exc:
        raise not_found(str(exc)) from None
    execution_id = new_execution_id()
    given = await form_inputs(d, request, flow, execution_id)
    try:
        inputs = resolve_inputs(flow, given, Expressions().render)
    except InputError as exc:
        problems = [{"input": i, "message": m} for i, m in getattr(exc, "problems", [])]
        raise unprocessable(str(exc).replace("--input ", "the input "), problems) from None
    if flow.disabled:
        raise conflict(f"flow {namespace}.{flow_id} is disabled: executions are refused (enable it first)")

    async def start() -> None:
        await d.runtime.create_execution(flow, inputs, given_labels, execution_id=execution_id)

    if wait:
        await d.runtime.wait_terminal(execution_id, on_start=start, timeout=300)
        await d.indexer.wait_for(
            "SELECT 1 FROM executions WHERE id = ? AND end_date IS NOT NULL", [execution_id], 10
        )
        return dict(json.loads((await execution_row(d, execution_id))[0]))
    await start()
    created = ev.ExecutionCreated(
        date=utcnow(),
        execution_id=execution_id,
        namespace=flow.namespace,
        flow_id=flow.id,
        flow_revision=flow.revision,
        inputs=inputs,
        labels={**flow.labels, **given_labels, "system.correlationId": execution_id},
        secret_inputs=tuple(sorted(secret_input_ids(flow))),
    )
    state = evolve(None, created)
    assert state is not None
    return execution_json(state)


SORTS = {
    "state.startDate": "start_date",
    "state.endDate": "end_date",
    "state.duration": "duration_ms",
    "state.current": "state",
    "namespace": "namespace",
    "flowId": "flow_id",
    "id": "id",
}


def execution_filters(
    namespace: str | None,
    flow_id: str | None,
    state: list[str] | None,
    labels: list[str] | None,
    start_date: str | None,
    end_date: str | None,
    time_range: str | None,
    q: str | None,
    parent_id: str | None = None,
) -> tuple[str, list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if namespace:
        where.append("(namespace = ? OR starts_with(namespace, ?))")
        params += [namespace, namespace + "."]
    if flow_id:
        where.append("flow_id = ?")
        params.append(flow_id)
    states = parse_states(state)
    if states:
        where.append("list_contains(?, state)")
        params.append(states)
    for k, v in parse_labels(labels).items():
        where.append("list_contains(labels, ?)")
        params.append(f"{k}{LABEL_SEP}{v}")
    start = parse_date(start_date, "startDate")
    end = parse_date(end_date, "endDate")
    if time_range:
        from engine.core.durations import parse_duration

        try:
            seconds = parse_duration(time_range)
        except (EngineError, ValueError):
            raise bad(f"timeRange: {time_range!r} is not an ISO-8601 duration, e.g. PT24H or P7D") from None
        start = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=seconds)
    if start is not None:
        where.append("start_date >= ?")
        params.append(start)
    if end is not None:
        where.append("start_date <= ?")
        params.append(end)
    if q:
        where.append("contains(search, ?)")  # id, namespace, flow id and labels, lower-cased
        params.append(q.lower())
    if parent_id:
        where.append("parent_id = ?")
        params.append(parent_id)
    return (" AND ".join(where) or "true"), params


@get("/executions/search", tags=["Executions"])
async def search_executions(
    request: Request[Any, Any, Any],
    page: Page = 1,
    size: Size = 25,
    namespace: Annotated[str | None, QueryParameter(description="This namespace and its children")] = None,
    flow_id: Annotated[str | None, QueryParameter(name="flowId")] = None,
    states: Annotated[
        list[str] | None, QueryParameter(name="state", description="Current state (repeat)")
    ] = None,
    labels: Annotated[list[str] | None, QueryParameter(description="key:value (repeat)")] = None,
    start_date: Annotated[
        str | None, QueryParameter(name="startDate", description="ISO-8601, inclusive")
    ] = None,
    end_date: Annotated[str | None, QueryParameter(name="endDate", description="ISO-8601, inclusive")] = None,
    time_range: Annotated[str | None, QueryParameter(name="timeRange", description="e.g. PT24H")] = None,
    q: Annotated[
        str | None, QueryParameter(description="Text in the id, namespace, flow id or labels")
    ] = None,
    parent_id: Annotated[str | None, QueryParameter(name="parentId")] = None,
    sort: Annotated[
        str, QueryParameter(description="field:asc|desc, e.g. state.startDate:desc")
    ] = "state.startDate:desc",
) -> Response[bytes]:
    """Executions, newest first by default, filtered and paged: ``{results, total}``."""
    field_, _, direction = sort.partition(":")
    column = SORTS.get(field_)
    if column is None or direction.lower() not in ("", "asc", "desc"):
        raise bad(f"sort: {sort!r}; use one of {', '.join(SORTS)} with :asc or :desc")
    where, params = execution_filters(
        namespace, flow_id, states, labels, start_date, end_date, time_range, q, parent_id
    )
    limit, offset = page_params(page, size)
    ix = deps(request).indexer
    order = f"{column} {direction.upper() or 'ASC'} NULLS LAST, id"
    counted, docs = await asyncio.gather(  # two cursors, in parallel
        ix.aquery(f"SELECT count(*) FROM executions WHERE {where}", params),
        ix.aquery(
            f"SELECT doc FROM executions WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?",
            [*params, limit, offset],
        ),
    )
    total = int(counted[0][0])
    return raw_json('{"results":[' + ",".join(r[0] for r in docs) + f'],"total":{total}}}')


@get("/executions/{execution_id:str}", tags=["Executions"])
async def get_execution(request: Request[Any, Any, Any], execution_id: FromPath[str]) -> Response[bytes]:
    """One execution with its taskruns (SECRET inputs masked)."""
    return raw_json((await execution_row(deps(request), execution_id))[0])


@delete("/executions/{execution_id:str}", tags=["Executions"])
async def delete_execution_route(
    request: Request[Any, Any, Any],
    execution_id: FromPath[str],
    delete_logs: Annotated[bool, QueryParameter(name="deleteLogs")] = True,
) -> None:
    """Delete an ended execution from the projection (its history stays in the log)."""
    d = deps(request)
    row = await execution_row(d, execution_id)
    if row[1] not in TERMINAL:
        raise conflict(f"execution {execution_id} is {row[1]}: kill it first, then delete it")
    await delete_execution(d.store, execution_id, delete_logs)
    await d.indexer.wait_for("SELECT 1 FROM deleted_executions WHERE id = ?", [execution_id], 5)


@delete("/executions/{execution_id:str}/kill", status_code=202, tags=["Executions"])
async def kill_execution(
    request: Request[Any, Any, Any], execution_id: FromPath[str]
) -> Response[dict[str, Any]]:
    """Ask a running execution to stop (its tasks are killed, its state becomes KILLED)."""
    d = deps(request)
    row = await execution_row(d, execution_id)
    if row[1] in TERMINAL:
        raise conflict(f"execution {execution_id} already ended {row[1]}: nothing to kill")
    await d.store.send_input(execution_id, ev.KillRequested(date=utcnow(), reason="killed through the API"))
    return Response({"message": f"kill of execution {execution_id} requested"}, status_code=202)


@post(
    "/executions/{execution_id:str}/resume",
    operation_class=json_body("onResume inputs (JSON object or multipart/form-data)"),
    status_code=202,
    tags=["Executions"],
)
async def resume_execution(request: Request[Any, Any, Any], execution_id: FromPath[str]) -> dict[str, Any]:
    """Resume a PAUSED execution (with the Pause task's onResume inputs)."""
    d = deps(request)
    row = await execution_row(d, execution_id)
    if row[1] != "PAUSED":
        raise conflict(f"execution {execution_id} is {row[1]}: only a PAUSED execution resumes")
    given: Any
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        form = await request.form()
        given = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    else:
        body = await request.body()
        try:
            given = json.loads(body) if body.strip() else {}
        except ValueError:
            raise bad("the body is not JSON: send the onResume inputs as a JSON object") from None
        if not isinstance(given, dict):
            raise bad("the body must be a JSON object of onResume inputs")
    await d.store.send_input(execution_id, ev.Resume(date=utcnow(), inputs=given))
    return {"message": f"resume of execution {execution_id} requested"}


@post("/executions/{execution_id:str}/restart", status_code=202, tags=["Executions"])
async def restart_execution(request: Request[Any, Any, Any], execution_id: FromPath[str]) -> dict[str, Any]:
    """Run the failed taskruns of an ended execution again, in the same execution."""
    d = deps(request)
    await execution_row(d, execution_id)
    try:
        await d.runtime.restart(execution_id)
    except FlowNotFound as exc:
        raise not_found(str(exc)) from None
    except EngineError as exc:
        raise conflict(str(exc)) from None
    return {"id": execution_id, "message": f"restart of execution {execution_id} requested"}


@post("/executions/{execution_id:str}/replay", status_code=200, tags=["Executions"])
async def replay_execution(
    request: Request[Any, Any, Any],
    execution_id: FromPath[str],
    taskrun_id: Annotated[
        str | None, QueryParameter(name="taskRunId", description="A taskrun id or task id")
    ] = None,
    revision: Annotated[int | None, QueryParameter(ge=1)] = None,
) -> dict[str, Any]:
    """A new execution that keeps what happened before ``taskRunId`` and runs on from there."""
    d = deps(request)
    await execution_row(d, execution_id)
    try:
        new_id = await d.runtime.replay(execution_id, taskrun_id, revision)
    except FlowNotFound as exc:
        raise not_found(str(exc)) from None
    except EngineError as exc:
        raise conflict(str(exc)) from None
    return {"id": new_id, "originalId": execution_id}


def masked_events(steps: list[tuple[int, list[ev.Event]]]) -> list[dict[str, Any]]:
    secrets: set[str] = set()
    out = []
    for seq, events in steps:
        items = []
        for event in events:
            item = msgspec.to_builtins(event)
            if isinstance(event, ev.ExecutionCreated):
                secrets = set(event.secret_inputs)
                item["inputs"] = {k: ("******" if k in secrets else v) for k, v in event.inputs.items()}
            items.append(item)
        out.append({"seq": seq, "events": items})
    return out


@get("/executions/{execution_id:str}/events", tags=["Executions"])
async def execution_events(
    request: Request[Any, Any, Any],
    execution_id: FromPath[str],
    up_to: Annotated[
        int | None, QueryParameter(name="upTo", ge=1, description="Last stream sequence")
    ] = None,
) -> list[dict[str, Any]]:
    """The raw history of an execution from the log: one item per fold step, with its sequence."""
    d = deps(request)
    await execution_row(d, execution_id)
    steps = await d.store.read(execution_id)
    if up_to is not None:
        steps = [(s, e) for s, e in steps if s <= up_to]
    return masked_events(steps)


@get("/executions/{execution_id:str}/at/{seq:int}", tags=["Executions"])
async def execution_at(
    request: Request[Any, Any, Any], execution_id: FromPath[str], seq: FromPath[int]
) -> dict[str, Any]:
    """The execution as it was after the step with stream sequence ``seq`` (folded from the log)."""
    d = deps(request)
    await execution_row(d, execution_id)
    state: Execution | None = None
    for s, events in await d.store.read(execution_id):
        if s > seq:
            break
        for event in events:
            state = evolve(state, event)
    if state is None:
        raise not_found(f"execution {execution_id} did not exist at sequence {seq}")
    return execution_json(state)


@get("/executions/{execution_id:str}/follow", tags=["Executions"])
async def follow_execution(request: Request[Any, Any, Any], execution_id: FromPath[str]) -> ServerSentEvent:
    """Server-Sent Events: the execution each time it changes, until it ends."""
    d = deps(request)
    await execution_row(d, execution_id)

    async def gen() -> AsyncGenerator[ServerSentEventMessage, None]:
        last = -1
        while True:
            rows = await d.indexer.aquery(
                "SELECT doc, state, seq FROM executions WHERE id = ?", [execution_id]
            )
            if not rows:
                return
            doc, state, seq = rows[0]
            if seq != last:
                last = seq
                yield ServerSentEventMessage(data=doc, event="execution", id=str(seq))
            if state in TERMINAL:
                return
            await d.indexer.wait_change(1.0)

    return ServerSentEvent(gen())


@get("/executions/{execution_id:str}/files", tags=["Executions"])
async def execution_files(request: Request[Any, Any, Any], execution_id: FromPath[str]) -> list[str]:
    """The internal-storage URIs (kestra://...) of an execution's files."""
    from eventstore.storage import InternalStorage

    d = deps(request)
    await execution_row(d, execution_id)
    return list(await InternalStorage(d.store).execution_files(execution_id))


@get("/executions/{execution_id:str}/file", tags=["Executions"])
async def execution_file(
    request: Request[Any, Any, Any],
    execution_id: FromPath[str],
    path: Annotated[str, QueryParameter(description="The kestra:// URI of one of the execution's files")],
) -> Response[bytes]:
    """Download one file of an execution."""
    from eventstore.storage import InternalStorage, StorageError, execution_of

    d = deps(request)
    await execution_row(d, execution_id)
    try:
        owner = execution_of(path)
    except StorageError as exc:
        raise bad(str(exc)) from None
    if owner != execution_id:
        raise not_found(f"{path} is not a file of execution {execution_id}")
    try:
        data = await InternalStorage(d.store).get(path)
    except StorageError as exc:
        raise not_found(str(exc)) from None
    name = path.rsplit("/", 1)[-1]
    return Response(
        content=data,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# ---- logs -----------------------------------------------------------------------------------


def level_num(min_level: str | None) -> int | None:
    if min_level is None:
        return None
    level = LEVELS.get(min_level.upper())
    if level is None:
        raise bad(f"minLevel: {min_level!r}; use one of TRACE, DEBUG, INFO, WARN, ERROR")
    return level


def log_json(row: tuple[Any, ...], namespace: str | None, flow_id: str | None) -> dict[str, Any]:
    seq, execution_id, date, level, message, taskrun_id, task_id, attempt = row
    return {
        "namespace": namespace,
        "flowId": flow_id,
        "executionId": execution_id,
        "taskId": task_id,
        "taskRunId": taskrun_id,
        "attemptNumber": attempt,
        "timestamp": iso(date),
        "level": level,
        "message": message,
        "index": seq,
    }


LOG_SELECT = "SELECT seq, execution_id, date, level, message, taskrun_id, task_id, attempt FROM logs"


@get("/logs/{execution_id:str}", tags=["Logs"])
async def execution_logs(
    request: Request[Any, Any, Any],
    execution_id: FromPath[str],
    page: Page = 1,
    size: Annotated[int, QueryParameter(ge=1, le=10_000)] = 1000,
    min_level: Annotated[str | None, QueryParameter(name="minLevel")] = None,
    taskrun_id: Annotated[str | None, QueryParameter(name="taskRunId")] = None,
    task_id: Annotated[str | None, QueryParameter(name="taskId")] = None,
    attempt: Annotated[int | None, QueryParameter(ge=0)] = None,
) -> dict[str, Any]:
    """An execution's log lines in order, paged: ``{results, total}``."""
    ix = deps(request).indexer
    where: list[str] = ["execution_id = ?"]
    params: list[Any] = [execution_id]
    level = level_num(min_level)
    for cond, value in (
        ("level_num >= ?", level),
        ("taskrun_id = ?", taskrun_id),
        ("task_id = ?", task_id),
        ("attempt = ?", attempt),
    ):
        if value is not None:
            where.append(cond)
            params.append(value)
    sql_where = " AND ".join(where)
    limit, offset = page_params(page, size)

    def read() -> tuple[Any, Any, Any]:
        owner = ix.query("SELECT namespace, flow_id FROM executions WHERE id = ?", [execution_id])
        total = ix.query(f"SELECT count(*) FROM logs WHERE {sql_where}", params)[0][0]
        rows = ix.query(
            f"{LOG_SELECT} WHERE {sql_where} ORDER BY seq LIMIT ? OFFSET ?", [*params, limit, offset]
        )
        return owner, total, rows

    owner, total, rows = await asyncio.to_thread(read)
    if not owner and not total:
        raise not_found(f"execution {execution_id} not found and has no logs")
    ns, fid = owner[0] if owner else (None, None)
    return {"results": [log_json(r, ns, fid) for r in rows], "total": total}


@get("/logs/search", tags=["Logs"])
async def search_logs(
    request: Request[Any, Any, Any],
    page: Page = 1,
    size: Size = 100,
    namespace: FromQuery[str | None] = None,
    flow_id: Annotated[str | None, QueryParameter(name="flowId")] = None,
    min_level: Annotated[str | None, QueryParameter(name="minLevel")] = None,
    q: Annotated[str | None, QueryParameter(description="Text in the message")] = None,
    start_date: Annotated[str | None, QueryParameter(name="startDate")] = None,
    end_date: Annotated[str | None, QueryParameter(name="endDate")] = None,
) -> dict[str, Any]:
    """Log lines across executions, newest first, paged: ``{results, total}``."""
    where: list[str] = ["true"]
    params: list[Any] = []
    if namespace:
        where.append("(e.namespace = ? OR starts_with(e.namespace, ?))")
        params += [namespace, namespace + "."]
    if flow_id:
        where.append("e.flow_id = ?")
        params.append(flow_id)
    level = level_num(min_level)
    if level is not None:
        where.append("l.level_num >= ?")
        params.append(level)
    if q:
        where.append("contains(lower(l.message), lower(?))")
        params.append(q)
    for cond, moment in (
        ("l.date >= ?", parse_date(start_date, "startDate")),
        ("l.date <= ?", parse_date(end_date, "endDate")),
    ):
        if moment is not None:
            where.append(cond)
            params.append(moment)
    sql_where = " AND ".join(where)
    limit, offset = page_params(page, size)
    ix = deps(request).indexer
    join = "FROM logs l LEFT JOIN executions e ON e.id = l.execution_id"
    total = (await ix.aquery(f"SELECT count(*) {join} WHERE {sql_where}", params))[0][0]
    rows = await ix.aquery(
        "SELECT l.seq, l.execution_id, l.date, l.level, l.message, l.taskrun_id, l.task_id, l.attempt, "
        f"e.namespace, e.flow_id {join} WHERE {sql_where} ORDER BY l.seq DESC LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return {"results": [log_json(r[:8], r[8], r[9]) for r in rows], "total": total}


@get("/logs/{execution_id:str}/follow", tags=["Logs"])
async def follow_logs(
    request: Request[Any, Any, Any],
    execution_id: FromPath[str],
    min_level: Annotated[str | None, QueryParameter(name="minLevel")] = None,
) -> ServerSentEvent:
    """Server-Sent Events: every log line of the execution from the first, live, until it has ended."""
    d = deps(request)
    level = level_num(min_level) or 0
    owner = await d.indexer.aquery("SELECT namespace, flow_id FROM executions WHERE id = ?", [execution_id])
    if not owner:
        raise not_found(
            f"execution {execution_id} not found (deleted, or not indexed yet: retry in a moment)"
        )
    ns, fid = owner[0]

    async def ended() -> bool:
        rows = await d.indexer.aquery("SELECT state FROM executions WHERE id = ?", [execution_id])
        return not rows or rows[0][0] in TERMINAL

    async def gen() -> AsyncGenerator[ServerSentEventMessage, None]:
        sub = await d.store.js.subscribe(
            S.logs(execution_id),
            stream=S.LOGS,
            ordered_consumer=True,
            config=jsapi.ConsumerConfig(deliver_policy=jsapi.DeliverPolicy.ALL),
        )
        try:
            quiet = 0
            while True:
                try:
                    msg = await sub.next_msg(timeout=0.25)
                except TimeoutError:
                    quiet += 1
                    # ended, and nothing more came for a moment (lines are fire-and-forget)
                    if quiet >= 2 and await ended():
                        return
                    continue
                quiet = 0
                line = Store.decode_log(msg.data)
                if LEVELS.get(line.level.upper(), 2) < level:
                    continue
                seq = int(msg.metadata.sequence.stream)
                item = {
                    "namespace": ns,
                    "flowId": fid,
                    "executionId": execution_id,
                    "taskId": line.task_id,
                    "taskRunId": line.taskrun_id,
                    "attemptNumber": line.attempt,
                    "timestamp": line.date,
                    "level": line.level,
                    "message": line.message,
                    "index": seq,
                }
                yield ServerSentEventMessage(data=json.dumps(item), event="log", id=str(seq))
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    return ServerSentEvent(gen())


# ---- KV -------------------------------------------------------------------------------------

KEY = re.compile(r"^[A-Za-z0-9_.\-/]{1,255}$")
NAMESPACE = re.compile(r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$")


def check_kv(namespace: str, key: str | None = None) -> None:
    if not NAMESPACE.match(namespace):
        raise bad(f"namespace {namespace!r}: use letters, digits, _ and - in dot-separated parts")
    if key is not None and (not KEY.match(key) or ".." in key or key.startswith(".") or key.endswith(".")):
        raise bad(f"key {key!r}: use 1-255 letters, digits, _, -, / and single dots inside")


def kv_type(value: Any) -> str:
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int | float):
        return "NUMBER"
    if isinstance(value, str):
        return "STRING"
    return "JSON"


@get("/namespaces/{namespace:str}/kv", tags=["KV"])
async def kv_list(request: Request[Any, Any, Any], namespace: FromPath[str]) -> list[dict[str, Any]]:
    """The keys of a namespace."""
    check_kv(namespace)
    keys = await JetStreamKV(deps(request).store).keys(namespace)
    return [{"key": k} for k in keys]


@get("/namespaces/{namespace:str}/kv/{key:str}", tags=["KV"])
async def kv_get(
    request: Request[Any, Any, Any], namespace: FromPath[str], key: FromPath[str]
) -> dict[str, Any]:
    """One value, with its type: ``{type, value}``."""
    check_kv(namespace, key)
    value = await JetStreamKV(deps(request).store).get(namespace, key)
    if value is None:
        raise not_found(f"no key {key!r} in namespace {namespace!r}")
    return {"type": kv_type(value), "value": value}


@put(
    "/namespaces/{namespace:str}/kv/{key:str}",
    operation_class=json_body(
        "The value: JSON (a number, true, {...}) or plain text (a string)", required=True
    ),
    status_code=200,
    tags=["KV"],
)
async def kv_set(
    request: Request[Any, Any, Any],
    namespace: FromPath[str],
    key: FromPath[str],
    ttl: Annotated[
        str | None, HeaderParameter(name="ttl", description="Time to live, ISO-8601 (PT1H)")
    ] = None,
) -> dict[str, Any]:
    """Set a value (a JSON body is parsed, anything else is a string)."""
    from engine.core.durations import parse_duration

    check_kv(namespace, key)
    text = await read_text(request)
    if not text:
        raise bad("the body is empty: send the value (JSON, or text for a string)")
    try:
        value: Any = json.loads(text)
    except ValueError:
        value = text
    ttl_s = None
    if ttl:
        try:
            ttl_s = parse_duration(ttl)
        except (EngineError, ValueError):
            raise bad(f"ttl: {ttl!r} is not an ISO-8601 duration, e.g. PT1H") from None
        if ttl_s <= 0:
            raise bad("ttl must be positive")
    await JetStreamKV(deps(request).store).set(namespace, key, value, ttl_s)
    return {"key": key, "type": kv_type(value), "value": value}


@delete("/namespaces/{namespace:str}/kv/{key:str}", tags=["KV"])
async def kv_delete(request: Request[Any, Any, Any], namespace: FromPath[str], key: FromPath[str]) -> None:
    check_kv(namespace, key)
    if not await JetStreamKV(deps(request).store).delete(namespace, key):
        raise not_found(f"no key {key!r} in namespace {namespace!r}")


# ---- stats ------------------------------------------------------------------------------------


class DailyQuery(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    namespace: str | None = None
    flow_id: str | None = None
    start_date: str | None = None
    end_date: str | None = None


@post("/stats/executions/daily", status_code=200, tags=["Stats"])
async def daily_stats(request: Request[Any, Any, Any], data: JSONBody[DailyQuery]) -> list[dict[str, Any]]:
    """Executions per day and state, with durations (ms): Kestra's DailyExecutionStatistics."""
    start = parse_date(data.start_date, "startDate") or (
        datetime.now(UTC).replace(tzinfo=None) - timedelta(days=30)
    )
    end = parse_date(data.end_date, "endDate") or datetime.now(UTC).replace(tzinfo=None)
    if end < start:
        raise bad("endDate is before startDate")
    if end - start > timedelta(days=3660):
        raise bad("the range is longer than 10 years: narrow startDate/endDate")
    where, params = execution_filters(
        data.namespace, data.flow_id, None, None, start.isoformat(), end.isoformat(), None, None
    )
    rows = await deps(request).indexer.aquery(
        f"SELECT CAST(start_date AS DATE) AS day, state, count(*), avg(duration_ms), min(duration_ms), "
        f"max(duration_ms), sum(duration_ms) FROM executions WHERE {where} GROUP BY ALL ORDER BY day",
        params,
    )
    days: dict[str, dict[str, Any]] = {}
    day = start.date()
    while day <= end.date():
        days[day.isoformat()] = {
            "startDate": day.isoformat(),
            "executionCounts": {s.value: 0 for s in State},
            "duration": {"count": 0, "sum": 0.0, "min": None, "max": None, "avg": None},
        }
        day += timedelta(days=1)
    for d_, state, n, _avg, lo, hi, total in rows:
        item = days.get(d_.isoformat())
        if item is None:
            continue
        item["executionCounts"][state] = n
        dur = item["duration"]
        if total is not None:
            dur["sum"] += total
            dur["count"] += n
            dur["min"] = lo if dur["min"] is None else min(dur["min"], lo)
            dur["max"] = hi if dur["max"] is None else max(dur["max"], hi)
    for item in days.values():
        dur = item["duration"]
        # Durations are in whole milliseconds: round so that the order a sum is taken in (which a
        # rebuilt projection may change) never shows in the answer.
        dur["sum"] = round(dur["sum"], 3)
        dur["avg"] = round(dur["sum"] / dur["count"], 3) if dur["count"] else None
    return list(days.values())


ROUTES = [
    create_flow,
    update_flow,
    get_flow,
    flow_revisions,
    delete_flow,
    search_flows,
    namespace_flows,
    flow_namespaces,
    validate_flows,
    update_namespace,
    create_execution,
    search_executions,
    get_execution,
    delete_execution_route,
    kill_execution,
    resume_execution,
    restart_execution,
    replay_execution,
    execution_events,
    execution_at,
    follow_execution,
    execution_files,
    execution_file,
    execution_logs,
    search_logs,
    follow_logs,
    kv_list,
    kv_get,
    kv_set,
    kv_delete,
    daily_stats,
]


def all_routes() -> list[Any]:
    from webserver.nsfiles import ROUTES as FILES
    from webserver.triggers import ROUTES as TRIGGERS
    from webserver.webhook import webhook

    return [*ROUTES, *TRIGGERS, *FILES, webhook]
