"""``/api/v1/executions``: start, search, read, delete, and the commands (kill, resume, restart, replay).

A command is an event on the execution's inbox: the answer says it was asked, not that it happened.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from litestar import Request, Response, delete, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath, QueryParameter

from engine.clock import utcnow
from engine.core import events as ev
from engine.core.errors import EngineError, FlowNotFound, InputError
from engine.core.execution import evolve
from engine.core.factory import execution_created
from engine.core.shape import execution_json
from engine.expressions import Expressions
from engine.ids import new_execution_id
from engine.inputs import check_known_inputs, resolve_inputs
from eventstore import subjects as S
from eventstore.indexer import TERMINAL, delete_execution
from eventstore.storage import InternalStorage, input_uri
from webserver.filters import EXECUTIONS, filter_sql
from webserver.http import (
    Deps,
    FlowIdParam,
    LabelsParam,
    NamespaceTree,
    Page,
    Size,
    bad,
    conflict,
    deps,
    is_form,
    json_body,
    not_found,
    raw_json,
    unprocessable,
    with_body,
)
from webserver.query import (
    execution_filters,
    execution_row,
    paged,
    parse_labels,
    request_kill,
    wait_recorded,
)


def json_object(body: bytes, not_json: str, not_object: str) -> dict[str, Any]:
    """The body as a JSON object (empty: ``{}``); else 400 with ``not_json`` (``{exc}`` filled in)
    or ``not_object``."""
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise bad(not_json.format(exc=exc)) from None
    if not isinstance(data, dict):
        raise bad(not_object)
    return data


async def form_inputs(
    d: Deps, request: Request[Any, Any, Any], flow: Any, execution_id: str
) -> dict[str, Any]:
    if is_form(request, "multipart/form-data", "application/x-www-form-urlencoded"):
        form = await request.form()
        out: dict[str, Any] = {}
        known_inputs(flow, dict(form.multi_items()))  # before any file of it is stored
        storage = InternalStorage(d.store)
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                data = await value.read()
                uri = input_uri(flow.namespace, flow.id, execution_id, key, value.filename or key)
                out[key] = await storage.put(uri, data)
            else:
                out[key] = value
        return out
    return json_object(
        await request.body(),
        "the body is not JSON ({exc}); send inputs as a JSON object or multipart/form-data",
        'the body must be a JSON object of inputs, e.g. {"name": "Ada"}',
    )


def known_inputs(flow: Any, given: dict[str, Any]) -> None:
    """422 naming the flow's inputs when ``given`` holds a name it does not declare."""
    try:
        check_known_inputs(flow, given)
    except InputError as exc:
        problems = [{"input": i, "message": m} for i, m in getattr(exc, "problems", [])]
        raise unprocessable(str(exc), problems) from None


INPUTS = json_body("Inputs: a JSON object, or multipart/form-data (files are uploaded)")
RESUME_INPUTS = json_body("onResume inputs (JSON object or multipart/form-data)")


@post("/executions/{namespace:str}/{flow_id:str}", **with_body(INPUTS, "Executions"))
async def create_execution(
    request: Request[Any, Any, Any],
    namespace: FromPath[str],
    flow_id: FromPath[str],
    labels: LabelsParam = None,
    revision: Annotated[int | None, QueryParameter(ge=1)] = None,
    wait: Annotated[bool, QueryParameter(description="Answer when the execution has ended")] = False,
) -> dict[str, Any]:
    """Start an execution of a flow with typed inputs; answers at once (state CREATED) unless ``wait``."""
    d = deps(request)
    given_labels = parse_labels(labels)
    try:
        flow = await d.runtime.flows.get(namespace, flow_id, revision)
    except FlowNotFound as exc:
        raise not_found(str(exc)) from None
    execution_id = new_execution_id()
    given = await form_inputs(d, request, flow, execution_id)
    known_inputs(flow, given)
    try:
        inputs = resolve_inputs(flow, given, Expressions().render)
    except InputError as exc:
        problems = [{"input": i, "message": m} for i, m in getattr(exc, "problems", [])]
        raise unprocessable(str(exc).replace("--input ", "the input "), problems) from None
    if flow.disabled:
        raise conflict(f"flow {namespace}.{flow_id} is disabled: executions are refused (enable it first)")

    async def start() -> None:
        await d.runtime.create_execution(flow, inputs, given_labels, execution_id=execution_id, fresh=True)

    if wait:
        await d.runtime.wait_terminal(execution_id, on_start=start, timeout=300)
        await d.indexer.wait_for(
            "SELECT 1 FROM executions WHERE id = ? AND end_date IS NOT NULL", [execution_id], 10
        )
        return dict(json.loads((await execution_row(d, execution_id))[0]))
    # Answered once an executor has recorded it in the log, so that every read after this answer
    # finds it (read-your-writes); the answer is the execution as created (CREATED), as in Kestra.
    await wait_recorded(d, execution_id, start)
    created = execution_created(
        flow, execution_id, utcnow(), inputs, given_labels, correlation_id=execution_id
    )
    state = evolve(None, created)
    assert state is not None
    return execution_json(state)


Sort = Annotated[str, QueryParameter(description="field:asc|desc, e.g. state.startDate:desc")]
SORTS = {
    "state.startDate": "start_date",
    "state.endDate": "end_date",
    "state.duration": "duration_ms",
    "state.current": "state",
    "namespace": "namespace",
    "flowId": "flow_id",
    "id": "id",
}


@get("/executions/search", tags=["Executions"])
async def search_executions(
    request: Request[Any, Any, Any],
    page: Page = 1,
    size: Size = 25,
    namespace: NamespaceTree = None,
    flow_id: FlowIdParam = None,
    states: Annotated[
        list[str] | None, QueryParameter(name="state", description="Current state (repeat)")
    ] = None,
    labels: LabelsParam = None,
    start_date: Annotated[
        str | None, QueryParameter(name="startDate", description="ISO-8601, inclusive")
    ] = None,
    end_date: Annotated[str | None, QueryParameter(name="endDate", description="ISO-8601, inclusive")] = None,
    time_range: Annotated[str | None, QueryParameter(name="timeRange", description="e.g. PT24H")] = None,
    q: Annotated[
        str | None, QueryParameter(description="Text in the id, namespace, flow id or labels")
    ] = None,
    parent_id: Annotated[str | None, QueryParameter(name="parentId")] = None,
    sort: Sort = "state.startDate:desc",
) -> Response[bytes]:
    """Executions, newest first by default, filtered (the parameters and Kestra's
    ``filters[field][OPERATION]=value``) and paged: ``{results, total}``."""
    where, params = execution_filters(
        namespace, flow_id, states, labels, start_date, end_date, time_range, q, parent_id
    )
    return await execution_page(request, where, params, sort, page, size)


async def execution_page(
    request: Request[Any, Any, Any], where: str, params: list[Any], sort: str, page: int, size: int
) -> Response[bytes]:
    """A page of executions matching ``where`` and the request's filters, as ``{results, total}``."""
    field_, _, direction = sort.partition(":")
    column = SORTS.get(field_)
    if column is None or direction.lower() not in ("", "asc", "desc"):
        raise bad(f"sort: {sort!r}; use one of {', '.join(SORTS)} with :asc or :desc")
    filtered, more = filter_sql(request, EXECUTIONS)
    order = f"{column} {direction.upper() or 'ASC'} NULLS LAST, id"
    total, docs = await paged(
        deps(request),
        "doc",
        "executions",
        f"{where} AND {filtered}",
        [*params, *more],
        order,
        page,
        size,
        key="id",
        seek=(column, direction.lower() == "desc"),
    )
    return raw_json('{"results":[' + ",".join(r[0] for r in docs) + f'],"total":{total}}}')


@get("/executions", tags=["Executions"])
async def executions_of_flow(
    request: Request[Any, Any, Any],
    namespace: Annotated[str, QueryParameter(description="The flow's namespace")],
    flow_id: Annotated[str, QueryParameter(name="flowId", description="The flow's id")],
    page: Page = 1,
    size: Size = 25,
    sort: Sort = "state.startDate:desc",
) -> Response[bytes]:
    """The executions of one flow, newest first, paged: ``{results, total}`` (Kestra's search by flow)."""
    return await execution_page(
        request, "namespace = ? AND flow_id = ?", [namespace, flow_id], sort, page, size
    )


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


@delete("/executions/by-query", status_code=200, tags=["Executions"])
async def delete_executions_by_query(
    request: Request[Any, Any, Any],
    include_non_terminated: Annotated[bool, QueryParameter(name="includeNonTerminated")] = False,
    delete_logs: Annotated[bool, QueryParameter(name="deleteLogs")] = True,
) -> dict[str, int]:
    """Delete the ended executions the ``filters[...]`` match (all of them without filters, as
    Kestra): ``{count}``. A running one is refused (409) with ``includeNonTerminated``: kill it first."""
    d = deps(request)
    where, params = filter_sql(request, EXECUTIONS)
    await d.indexer.wait_synced(S.EVENTS)  # judge on every step already acknowledged, not a lagging view
    rows = await d.indexer.aquery(f"SELECT id, state FROM executions WHERE {where} ORDER BY id", params)
    running = [r[0] for r in rows if r[1] not in TERMINAL]
    if running and include_non_terminated:
        raise conflict(f"{len(running)} matching execution(s) still run (e.g. {running[0]}): kill them first")
    ended = [r[0] for r in rows if r[1] in TERMINAL]
    for execution_id in ended:
        await delete_execution(d.store, execution_id, delete_logs)
    if ended:
        await d.indexer.wait_for("SELECT 1 FROM deleted_executions WHERE id = ?", [ended[-1]], 5)
    return {"count": len(ended)}


@delete("/executions/{execution_id:str}/kill", status_code=202, tags=["Executions"])
async def kill_execution(
    request: Request[Any, Any, Any], execution_id: FromPath[str]
) -> Response[dict[str, Any]]:
    """Ask a running execution to stop (its tasks are killed, its state becomes KILLED)."""
    await request_kill(deps(request), execution_id)
    return Response({"message": f"kill of execution {execution_id} requested"}, status_code=202)


@delete("/executions/{execution_id:str}/actions/kill", status_code=202, tags=["Executions"])
async def kill_action(request: Request[Any, Any, Any], execution_id: FromPath[str]) -> Response[bytes]:
    """Kestra's kill: asks the execution to stop and answers it as it was when asked (202)."""
    row = await request_kill(deps(request), execution_id)
    return raw_json(row[0], 202)


@post("/executions/{execution_id:str}/resume", **with_body(RESUME_INPUTS, "Executions", 202))
async def resume_execution(request: Request[Any, Any, Any], execution_id: FromPath[str]) -> dict[str, Any]:
    """Resume a PAUSED execution (with the Pause task's onResume inputs)."""
    await request_resume(request, execution_id)
    return {"message": f"resume of execution {execution_id} requested"}


@post("/executions/{execution_id:str}/actions/resume", **with_body(RESUME_INPUTS, "Executions", 200))
async def resume_action(request: Request[Any, Any, Any], execution_id: FromPath[str]) -> Response[bytes]:
    """Kestra's resume: answers the execution as it was when asked."""
    row = await request_resume(request, execution_id)
    return raw_json(row[0])


async def request_resume(request: Request[Any, Any, Any], execution_id: str) -> tuple[Any, ...]:
    d = deps(request)
    row = await execution_row(d, execution_id)
    if row[1] != "PAUSED":
        raise conflict(f"execution {execution_id} is {row[1]}: only a PAUSED execution resumes")
    given: dict[str, Any]
    if is_form(request):
        form = await request.form()
        given = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    else:
        given = json_object(
            await request.body(),
            "the body is not JSON: send the onResume inputs as a JSON object",
            "the body must be a JSON object of onResume inputs",
        )
    await d.store.send_input(execution_id, ev.Resume(date=utcnow(), inputs=given))
    return row


async def rerun(d: Deps, execution_id: str, run: Any) -> Any:
    """``run()`` (a restart or a replay of an indexed execution): 404 without the flow, 409 if refused."""
    await execution_row(d, execution_id)
    try:
        return await run()
    except FlowNotFound as exc:
        raise not_found(str(exc)) from None
    except EngineError as exc:
        raise conflict(str(exc)) from None


@post("/executions/{execution_id:str}/restart", status_code=202, tags=["Executions"])
async def restart_execution(request: Request[Any, Any, Any], execution_id: FromPath[str]) -> dict[str, Any]:
    """Run the failed taskruns of an ended execution again, in the same execution."""
    d = deps(request)
    await rerun(d, execution_id, lambda: d.runtime.restart(execution_id))
    return {"id": execution_id, "message": f"restart of execution {execution_id} requested"}


@post("/executions/{execution_id:str}/actions/restart", status_code=200, tags=["Executions"])
async def restart_action(request: Request[Any, Any, Any], execution_id: FromPath[str]) -> Response[bytes]:
    """Kestra's restart: the failed taskruns run again in the same execution; answers the execution
    once the restart is recorded (state RESTARTED, or already running on)."""
    d = deps(request)
    before = await execution_row(d, execution_id)
    await rerun(d, execution_id, lambda: d.runtime.restart(execution_id))
    await d.indexer.wait_for(
        "SELECT 1 FROM executions WHERE id = ? AND state <> ?", [execution_id, before[1]], 5
    )
    return raw_json((await execution_row(d, execution_id))[0])


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
    new_id = await rerun(d, execution_id, lambda: d.runtime.replay(execution_id, taskrun_id, revision))
    return {"id": new_id, "originalId": execution_id}


@post("/executions/{execution_id:str}/actions/replay", status_code=200, tags=["Executions"])
async def replay_action(
    request: Request[Any, Any, Any],
    execution_id: FromPath[str],
    taskrun_id: Annotated[
        str | None, QueryParameter(name="taskRunId", description="A taskrun id or task id")
    ] = None,
    revision: Annotated[int | None, QueryParameter(ge=1)] = None,
) -> Response[bytes]:
    """Kestra's replay: answers the new execution (once the projection has it)."""
    d = deps(request)
    new_id = await rerun(d, execution_id, lambda: d.runtime.replay(execution_id, taskrun_id, revision))
    await d.indexer.wait_for("SELECT 1 FROM executions WHERE id = ?", [new_id], 10)
    return raw_json((await execution_row(d, new_id))[0])


ROUTES = [
    create_execution,
    search_executions,
    executions_of_flow,
    get_execution,
    delete_execution_route,
    delete_executions_by_query,
    kill_execution,
    kill_action,
    resume_execution,
    resume_action,
    restart_execution,
    restart_action,
    replay_execution,
    replay_action,
]
