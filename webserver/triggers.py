"""``/api/v1/triggers``: Kestra-shaped trigger listing, enable/disable and Schedule backfills.

The triggers are those of the deployed flows (the DuckDB ``flows`` projection); the state of a
Schedule trigger (cursor, last slot, last execution, disabled) is read from ``KV_triggers``,
where the scheduler keeps it. Enabling and disabling write there too (``set_disabled``: the
position is kept, re-enabling follows ``recoverMissedSchedules``). A backfill runs
``triggers.backfill.backfill`` in a task of the API process: the request answers once the window,
the trigger and the inputs are known valid (or, with ``wait``, when every slot has its execution).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, get, post, put
from litestar.params import FromPath, JSONBody, QueryParameter

from engine.errors import EngineError, FlowNotFound, FlowValidationError, InputError
from webserver.api import Deps, Page, bad, conflict, deps, not_found, unprocessable

SCHEDULE = "io.kestra.plugin.core.trigger.Schedule"
TRIGGER_SORTS = {
    "namespace": lambda t: (t.namespace, t.flow_id, t.trigger_id),
    "flowId": lambda t: (t.flow_id, t.namespace, t.trigger_id),
    "triggerId": lambda t: (t.trigger_id, t.namespace, t.flow_id),
    "type": lambda t: (t.type, t.namespace, t.flow_id, t.trigger_id),
}


# ---- the triggers of the deployed flows ------------------------------------------------------


@dataclass(frozen=True)
class FlowTrigger:
    namespace: str
    flow_id: str
    trigger_id: str
    type: str
    flow: Any  # engine.model.Flow
    trigger: Any  # engine.model.Trigger

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.namespace, self.flow_id, self.trigger_id)


_PARSED: OrderedDict[tuple[str, str, int, str], Any] = OrderedDict()  # parsed flows, by revision


def _parse(namespace: str, flow_id: str, revision: int, source: str) -> Any:
    from triggers.service import _parse_flow

    k = (namespace, flow_id, revision, source)
    if k in _PARSED:
        _PARSED.move_to_end(k)
        return _PARSED[k]
    try:
        flow = _parse_flow(source, revision)
    except (FlowValidationError, EngineError):
        flow = None
    _PARSED[k] = flow
    while len(_PARSED) > 2000:
        _PARSED.popitem(last=False)
    return flow


async def flow_triggers(
    d: Deps, namespace: str | None = None, flow_id: str | None = None
) -> list[FlowTrigger]:
    """Every trigger of the deployed flows (namespace: this one and below)."""
    where, params = ["NOT deleted", "contains(source, 'triggers')"], []
    if namespace:
        where.append("(namespace = ? OR starts_with(namespace, ?))")
        params += [namespace, namespace + "."]
    if flow_id:
        where.append("flow_id = ?")
        params.append(flow_id)
    rows = await d.indexer.aquery(
        f"SELECT namespace, flow_id, revision, source FROM flows WHERE {' AND '.join(where)} "
        "ORDER BY namespace, flow_id",
        params,
    )
    out = []
    for ns, fid, revision, source in rows:
        flow = _parse(ns, fid, revision, source)
        if flow is None:
            continue
        for t in flow.triggers:
            out.append(FlowTrigger(ns, fid, t.id, t.type, flow, t))
    return out


async def find_trigger(d: Deps, namespace: str, flow_id: str, trigger_id: str) -> FlowTrigger:
    rows = await d.indexer.aquery(
        "SELECT 1 FROM flows WHERE namespace = ? AND flow_id = ? AND NOT deleted", [namespace, flow_id]
    )
    if not rows:
        raise not_found(f"flow {namespace}.{flow_id} is not deployed")
    found = await flow_triggers(d, namespace, flow_id)
    for ft in found:
        if ft.namespace == namespace and ft.trigger_id == trigger_id:
            return ft
    known = ", ".join(ft.trigger_id for ft in found if ft.namespace == namespace) or "none"
    raise not_found(f"flow {namespace}.{flow_id} has no trigger '{trigger_id}' (its triggers: {known})")


def is_schedule(ft: FlowTrigger) -> bool:
    from triggers.schedule import SCHEDULE_TYPES

    return ft.type in SCHEDULE_TYPES


# ---- JSON ----------------------------------------------------------------------------------


def abstract_trigger(ft: FlowTrigger) -> dict[str, Any]:
    out: dict[str, Any] = {"id": ft.trigger_id, "type": ft.type, "disabled": ft.trigger.disabled}
    out.update(ft.trigger.props)
    result: dict[str, Any] = json.loads(json.dumps(out, default=str))
    return result


async def trigger_state(kv: Any, ft: FlowTrigger) -> dict[str, Any]:
    """The KV state of a Schedule trigger (empty for the other types)."""
    if not is_schedule(ft):
        return {}
    from triggers.service import schedule_key

    state, _ = await kv.get(schedule_key(ft.namespace, ft.flow_id, ft.trigger_id))
    return dict(state or {})


def trigger_context(d: Deps, ft: FlowTrigger, state: dict[str, Any]) -> dict[str, Any]:
    """Kestra's trigger context: the trigger's state as the scheduler keeps it."""
    from triggers.schedule import ScheduleError, iso, schedule_spec

    kv_disabled = bool(state.get("disabled"))
    yaml_disabled = bool(ft.trigger.disabled or ft.flow.disabled)
    out: dict[str, Any] = {
        "namespace": ft.namespace,
        "flowId": ft.flow_id,
        "triggerId": ft.trigger_id,
        "type": ft.type,
        "flowRevision": ft.flow.revision,
        "disabled": kv_disabled or yaml_disabled,
        "disabledReason": (
            "disabled in the flow's YAML"
            if yaml_disabled
            else (state.get("disabled_reason") or "disabled through the API or CLI")
            if kv_disabled
            else None
        ),
        "date": state.get("last_slot"),
        "executionId": state.get("last_execution"),
        "nextExecutionDate": None,
        "backfill": None,
        "error": None,
    }
    if is_schedule(ft):
        try:
            spec = schedule_spec(ft.flow, ft.trigger)
            out["cron"] = spec.cron
            out["timezone"] = str(spec.tz)
            out["nextExecutionDate"] = iso(spec.next_after(datetime.now(UTC)), spec.tz)
        except ScheduleError as exc:
            out["error"] = str(exc)
    run = d.backfills.get(ft.key)
    if run is not None:
        out["backfill"] = run.json()
    return out


async def contexts(d: Deps, fts: list[FlowTrigger]) -> list[dict[str, Any]]:
    from triggers.kv import TriggerKV

    kv = TriggerKV(d.store)
    await kv.setup()
    states = await asyncio.gather(*(trigger_state(kv, ft) for ft in fts))
    return [trigger_context(d, ft, s) for ft, s in zip(fts, states, strict=True)]


TriggerSize = Annotated[int, QueryParameter(ge=1, le=1000, description="Results per page")]


def _filter(fts: list[FlowTrigger], q: str | None) -> list[FlowTrigger]:
    if not q:
        return fts
    needle = q.lower()
    return [
        ft
        for ft in fts
        if needle in ft.trigger_id.lower() or needle in ft.flow_id.lower() or needle in ft.namespace.lower()
    ]


def _sorted(fts: list[FlowTrigger], sort: str | None) -> list[FlowTrigger]:
    if not sort:
        return fts
    field_, _, direction = sort.partition(":")
    keyf = TRIGGER_SORTS.get(field_)
    if keyf is None or direction.lower() not in ("", "asc", "desc"):
        raise bad(f"sort: {sort!r}; use one of {', '.join(TRIGGER_SORTS)} with :asc or :desc")
    return sorted(fts, key=keyf, reverse=direction.lower() == "desc")


@get("/triggers/search", tags=["Triggers"])
async def search_triggers(
    request: Request[Any, Any, Any],
    page: Page = 1,
    size: TriggerSize = 10,
    q: Annotated[str | None, QueryParameter(description="Text in the namespace, flow or trigger id")] = None,
    namespace: Annotated[str | None, QueryParameter(description="This namespace and its children")] = None,
    flow_id: Annotated[str | None, QueryParameter(name="flowId")] = None,
    sort: Annotated[str | None, QueryParameter(description="namespace|flowId|triggerId|type[:desc]")] = None,
) -> dict[str, Any]:
    """Triggers of the flows, with state: ``{results: [{abstractTrigger, triggerContext}], total}``."""
    d = deps(request)
    fts = _sorted(_filter(await flow_triggers(d, namespace, flow_id), q), sort)
    total = len(fts)
    start = (page - 1) * size
    chosen = fts[start : start + size]
    ctxs = await contexts(d, chosen)
    results = [
        {"abstractTrigger": abstract_trigger(ft), "triggerContext": ctx}
        for ft, ctx in zip(chosen, ctxs, strict=True)
    ]
    return {"results": results, "total": total}


@get("/triggers/{namespace:str}/{flow_id:str}", tags=["Triggers"])
async def flow_triggers_route(
    request: Request[Any, Any, Any],
    namespace: FromPath[str],
    flow_id: FromPath[str],
    page: Page = 1,
    size: TriggerSize = 10,
    q: Annotated[str | None, QueryParameter(description="Text in the trigger id")] = None,
) -> dict[str, Any]:
    """The triggers of one flow with their state: ``{results: [triggerContext], total}``."""
    d = deps(request)
    rows = await d.indexer.aquery(
        "SELECT 1 FROM flows WHERE namespace = ? AND flow_id = ? AND NOT deleted", [namespace, flow_id]
    )
    if not rows:
        raise not_found(f"flow {namespace}.{flow_id} is not deployed")
    fts = [ft for ft in await flow_triggers(d, namespace, flow_id) if ft.namespace == namespace]
    fts = _filter(fts, q)
    start = (page - 1) * size
    return {"results": await contexts(d, fts[start : start + size]), "total": len(fts)}


# ---- enable / disable -------------------------------------------------------------------------


class BackfillBody(msgspec.Struct, rename="camel"):
    start: str | None = None
    end: str | None = None
    inputs: dict[str, Any] | None = None
    labels: list[dict[str, Any]] | dict[str, Any] | None = None
    paused: bool | None = None


class TriggerBody(msgspec.Struct, rename="camel"):
    namespace: str
    flow_id: str
    trigger_id: str
    disabled: bool | None = None
    backfill: BackfillBody | None = None


async def set_trigger_disabled(d: Deps, ft: FlowTrigger, disabled: bool) -> None:
    from triggers.kv import TriggerKV
    from triggers.service import set_disabled

    if not is_schedule(ft):
        raise unprocessable(
            f"trigger '{ft.trigger_id}' of flow {ft.namespace}.{ft.flow_id} is a {ft.type}: only Schedule "
            "triggers are enabled or disabled through the API (set `disabled: true` on it in the flow)"
        )
    if not disabled and (ft.trigger.disabled or ft.flow.disabled):
        what = "the flow" if ft.flow.disabled else f"trigger '{ft.trigger_id}'"
        raise conflict(
            f"{what} is disabled in the flow's YAML ({ft.namespace}.{ft.flow_id}): remove `disabled: true` "
            "there and deploy a new revision to enable it"
        )
    kv = TriggerKV(d.store)
    await kv.setup()
    await set_disabled(kv, ft.namespace, ft.flow_id, ft.trigger_id, disabled)


async def one_context(d: Deps, ft: FlowTrigger) -> dict[str, Any]:
    return (await contexts(d, [ft]))[0]


@put("/triggers", status_code=200, tags=["Triggers"])
async def update_trigger(
    request: Request[Any, Any, Any],
    data: JSONBody[TriggerBody],
    wait: Annotated[
        bool, QueryParameter(description="With a backfill: answer when every slot has its execution")
    ] = False,
) -> dict[str, Any]:
    """Enable/disable a Schedule trigger (``disabled``) and/or backfill it (``backfill.start``..``end``)."""
    d = deps(request)
    ft = await find_trigger(d, data.namespace, data.flow_id, data.trigger_id)
    if data.disabled is None and data.backfill is None:
        raise bad("nothing to update: send `disabled` (true/false) and/or `backfill` ({start, end, inputs})")
    if data.backfill is not None:
        await start_backfill(d, ft, data.backfill, wait)
    if data.disabled is not None:
        await set_trigger_disabled(d, ft, data.disabled)
    return await one_context(d, ft)


class TriggerRef(msgspec.Struct, rename="camel"):
    namespace: str
    flow_id: str
    trigger_id: str


class SetDisabledBody(msgspec.Struct, rename="camel"):
    triggers: list[TriggerRef]
    disabled: bool = True


@post("/triggers/set-disabled/by-triggers", status_code=200, tags=["Triggers"])
async def set_disabled_by_triggers(
    request: Request[Any, Any, Any], data: JSONBody[SetDisabledBody]
) -> dict[str, Any]:
    """Enable or disable the listed Schedule triggers (all exist, or nothing changes): ``{count}``."""
    d = deps(request)
    fts = [await find_trigger(d, t.namespace, t.flow_id, t.trigger_id) for t in data.triggers]
    for ft in fts:  # every one checked before any changes
        if not is_schedule(ft):
            await set_trigger_disabled(d, ft, data.disabled)  # raises the 422
    for ft in fts:
        await set_trigger_disabled(d, ft, data.disabled)
    return {"count": len(fts)}


@post("/triggers/set-disabled/by-query", status_code=200, tags=["Triggers"])
async def set_disabled_by_query(
    request: Request[Any, Any, Any],
    q: Annotated[str | None, QueryParameter(description="Text in the namespace, flow or trigger id")] = None,
    namespace: Annotated[str | None, QueryParameter(description="This namespace and its children")] = None,
    disabled: Annotated[bool, QueryParameter(description="true: disable, false: enable")] = True,
) -> dict[str, Any]:
    """Enable or disable every Schedule trigger matching the query (others are skipped): ``{count}``."""
    d = deps(request)
    count = 0
    for ft in _filter(await flow_triggers(d, namespace), q):
        if not is_schedule(ft) or (not disabled and (ft.trigger.disabled or ft.flow.disabled)):
            continue
        await set_trigger_disabled(d, ft, disabled)
        count += 1
    return {"count": count}


# ---- backfill ----------------------------------------------------------------------------------


@dataclass
class BackfillRun:
    """A backfill started through the API (in this process)."""

    start: str
    end: str
    total: int = 0
    done: int = 0
    created: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    error: str | None = None
    task: asyncio.Task[Any] | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    def json(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "slots": self.total,
            "done": self.done,
            "running": self.running,
            "executions": len(self.created),
            "skipped": len(self.skipped),
            "error": self.error,
        }


def _labels(value: list[dict[str, Any]] | dict[str, Any] | None) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    out = {}
    for item in value:
        if "key" not in item or "value" not in item:
            raise bad('backfill.labels: use [{"key": "k", "value": "v"}] or {"k": "v"}')
        out[str(item["key"])] = str(item["value"])
    return out


async def start_backfill(d: Deps, ft: FlowTrigger, body: BackfillBody, wait: bool) -> BackfillRun:
    """Start ``triggers.backfill.backfill`` in a task; returns once it passed its checks (or ended)."""
    from triggers.backfill import BackfillError, backfill

    if not is_schedule(ft):
        raise unprocessable(
            f"trigger '{ft.trigger_id}' of flow {ft.namespace}.{ft.flow_id} is a {ft.type}: "
            "only Schedule triggers are backfilled"
        )
    if not body.start:
        raise bad("backfill.start is required: the first moment, e.g. 2026-01-01T00:00:00Z")
    if body.paused:
        raise bad(
            "backfill.paused: a backfill starts running (pause it with PUT /api/v1/triggers/backfill/pause)"
        )
    previous = d.backfills.get(ft.key)
    if previous is not None and previous.running:
        raise conflict(
            f"a backfill of trigger '{ft.trigger_id}' ({previous.done}/{previous.total} slots) is running: "
            "wait for it to end"
        )
    end = body.end or datetime.now(UTC).isoformat().replace("+00:00", "Z")
    run = BackfillRun(start=body.start, end=end)
    labels = _labels(body.labels)

    def progress(done: int, total: int) -> None:
        run.done, run.total = done, total
        run.started.set()

    async def go() -> None:
        try:
            result = await backfill(
                d.runtime,
                ft.namespace,
                ft.flow_id,
                ft.trigger_id,
                body.start or "",
                end,
                dict(body.inputs or {}),
                labels,
                progress=progress,
            )
            run.total = result.slots
            run.created, run.skipped = result.created, result.skipped
        except (BackfillError, InputError, FlowNotFound, EngineError) as exc:
            run.error = " ".join(str(exc).split())
            if not run.started.is_set():
                raise
        finally:
            run.started.set()

    run.task = asyncio.create_task(go(), name=f"backfill {'.'.join(ft.key)}")
    d.backfills[ft.key] = run
    waiter = asyncio.ensure_future(run.started.wait())
    await asyncio.wait({waiter, run.task}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if run.task.done() and run.task.exception() is not None:
        d.backfills.pop(ft.key, None)
        exc = run.task.exception()
        if isinstance(exc, InputError):
            raise unprocessable(f"backfill: invalid input: {' '.join(str(exc).split())}") from None
        if isinstance(exc, FlowNotFound):
            raise not_found(str(exc)) from None
        if isinstance(exc, EngineError):
            raise bad(f"backfill: {' '.join(str(exc).split())}") from None
        raise exc  # type: ignore[misc]
    if wait:
        await asyncio.shield(run.task)
    return run


async def stop_backfills(d: Deps) -> None:
    """Cancel the backfills still running (the API is stopping; a backfill run again resumes)."""
    tasks = [r.task for r in d.backfills.values() if r.task is not None and not r.task.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        with contextlib.suppress(Exception):
            await asyncio.wait(tasks, timeout=5)


ROUTES = [
    search_triggers,
    flow_triggers_route,
    update_trigger,
    set_disabled_by_triggers,
    set_disabled_by_query,
]
