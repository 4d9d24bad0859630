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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, get, post, put
from litestar.params import FromPath, JSONBody, QueryParameter

from engine.core.errors import EngineError, FlowNotFound, FlowValidationError, InputError
from webserver.api import ApiError, Deps, Page, bad, conflict, deps, not_found, unprocessable

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
    return out


async def contexts(d: Deps, fts: list[FlowTrigger]) -> list[dict[str, Any]]:
    from triggers.kv import TriggerKV

    kv = TriggerKV(d.store)
    await kv.setup()
    states = await asyncio.gather(*(trigger_state(kv, ft) for ft in fts))
    backfills = await asyncio.gather(*(backfill_json(d, ft) for ft in fts))
    out = []
    for ft, state, backfill in zip(fts, states, backfills, strict=True):
        ctx = trigger_context(d, ft, state)
        ctx["backfill"] = backfill
        out.append(ctx)
    return out


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


def backfill_http_error(exc: Exception) -> ApiError:
    """A refused backfill operation as a 4xx with the triggers package's message."""
    from triggers.backfill import BackfillError

    text = " ".join(str(exc).split())
    if isinstance(exc, InputError):
        return unprocessable(f"backfill: invalid input: {text}")
    if isinstance(exc, FlowNotFound):
        return not_found(text)
    if isinstance(exc, BackfillError) and ("already has" in text or (" is " in text and "cannot be" in text)):
        return conflict(text)
    return bad(f"backfill: {text}")


def follow_in_background(d: Deps, ft: FlowTrigger) -> asyncio.Task[Any]:
    """Advance the trigger's backfill from this process until it is DONE, PAUSED or CANCELLED.

    The scheduler role advances it too (compare-and-set steps: they never double a slot); this
    makes an API without a scheduler in its process carry it through.
    """
    from triggers.backfill import follow_backfill

    task = d.backfills.get(ft.key)
    if task is not None and not task.done():
        return task  # type: ignore[no-any-return]

    async def go() -> Any:
        try:
            return await follow_backfill(d.runtime, ft.namespace, ft.flow_id, ft.trigger_id)
        except EngineError as exc:  # the record went away (cancelled and replaced...): nothing to do
            return exc

    task = asyncio.create_task(go(), name=f"backfill {'.'.join(ft.key)}")
    d.backfills[ft.key] = task
    return task


async def start_backfill(d: Deps, ft: FlowTrigger, body: BackfillBody, wait: bool) -> None:
    """Record the backfill (``triggers.backfill.start_backfill``: every check first), then advance it."""
    from triggers.backfill import start_backfill as record_backfill

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
    end = body.end or datetime.now(UTC).isoformat().replace("+00:00", "Z")
    labels = _labels(body.labels)
    try:
        await record_backfill(
            d.runtime,
            ft.namespace,
            ft.flow_id,
            ft.trigger_id,
            body.start,
            end,
            dict(body.inputs or {}),
            labels,
        )
    except EngineError as exc:
        raise backfill_http_error(exc) from None
    task = follow_in_background(d, ft)
    if wait:
        await asyncio.shield(task)


async def backfill_json(d: Deps, ft: FlowTrigger) -> dict[str, Any] | None:
    from triggers.backfill import BackfillError, backfill_status

    if not is_schedule(ft):
        return None
    try:
        return (await backfill_status(d.store, ft.namespace, ft.flow_id, ft.trigger_id)).to_dict()
    except BackfillError:
        return None


async def stop_backfills(d: Deps) -> None:
    """Stop advancing backfills from this process (the API is stopping; the records stay in KV and
    the scheduler, or the next API, carries them on)."""
    tasks = [t for t in d.backfills.values() if not t.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        with contextlib.suppress(Exception):
            await asyncio.wait(tasks, timeout=5)


async def backfill_action(d: Deps, ft: FlowTrigger, action: str) -> None:
    from triggers.backfill import cancel_backfill, pause_backfill, resume_backfill

    if not is_schedule(ft):
        raise unprocessable(
            f"trigger '{ft.trigger_id}' of flow {ft.namespace}.{ft.flow_id} is a {ft.type}: no backfill"
        )
    op = {"pause": pause_backfill, "unpause": resume_backfill, "delete": cancel_backfill}[action]
    try:
        await op(d.store, ft.namespace, ft.flow_id, ft.trigger_id)
    except EngineError as exc:
        raise backfill_http_error(exc) from None
    if action == "unpause":
        follow_in_background(d, ft)


async def _on_backfill(request: Request[Any, Any, Any], data: TriggerRef, action: str) -> dict[str, Any]:
    d = deps(request)
    ft = await find_trigger(d, data.namespace, data.flow_id, data.trigger_id)
    await backfill_action(d, ft, action)
    return await one_context(d, ft)


@put("/triggers/backfill/pause", status_code=200, tags=["Triggers"])
async def pause_backfill_route(request: Request[Any, Any, Any], data: JSONBody[TriggerRef]) -> dict[str, Any]:
    """Pause the backfill of a trigger: no new slot until unpaused (running executions run on)."""
    return await _on_backfill(request, data, "pause")


@put("/triggers/backfill/unpause", status_code=200, tags=["Triggers"])
async def unpause_backfill_route(
    request: Request[Any, Any, Any], data: JSONBody[TriggerRef]
) -> dict[str, Any]:
    """Resume a paused backfill."""
    return await _on_backfill(request, data, "unpause")


@post("/triggers/backfill/delete", status_code=200, tags=["Triggers"])
async def delete_backfill_route(
    request: Request[Any, Any, Any], data: JSONBody[TriggerRef]
) -> dict[str, Any]:
    """Cancel the backfill of a trigger: no new slot is ever created (created executions run on)."""
    return await _on_backfill(request, data, "delete")


class TriggerRefs(msgspec.Struct):
    triggers: list[TriggerRef] = msgspec.field(default_factory=list)


async def _bulk(d: Deps, refs: list[TriggerRef], action: str) -> dict[str, int]:
    """Like Kestra's by-triggers routes: triggers without a backfill in that state are skipped."""
    from triggers.backfill import BackfillError

    count = 0
    for ref in refs:
        ft = await find_trigger(d, ref.namespace, ref.flow_id, ref.trigger_id)
        try:
            await backfill_action(d, ft, action)
        except ApiError as exc:
            if exc.status_code in (400, 409, 422):
                continue
            raise
        except BackfillError:
            continue
        count += 1
    return {"count": count}


@post("/triggers/backfill/pause/by-triggers", status_code=200, tags=["Triggers"])
async def pause_backfills(
    request: Request[Any, Any, Any], data: JSONBody[list[TriggerRef]]
) -> dict[str, int]:
    """Pause the backfills of the listed triggers: ``{count}`` paused."""
    return await _bulk(deps(request), data, "pause")


@post("/triggers/backfill/unpause/by-triggers", status_code=200, tags=["Triggers"])
async def unpause_backfills(
    request: Request[Any, Any, Any], data: JSONBody[list[TriggerRef]]
) -> dict[str, int]:
    """Resume the backfills of the listed triggers: ``{count}`` resumed."""
    return await _bulk(deps(request), data, "unpause")


@post("/triggers/backfill/delete/by-triggers", status_code=200, tags=["Triggers"])
async def delete_backfills(
    request: Request[Any, Any, Any], data: JSONBody[list[TriggerRef]]
) -> dict[str, int]:
    """Cancel the backfills of the listed triggers: ``{count}`` cancelled."""
    return await _bulk(deps(request), data, "delete")


ROUTES = [
    search_triggers,
    flow_triggers_route,
    update_trigger,
    set_disabled_by_triggers,
    set_disabled_by_query,
    pause_backfill_route,
    unpause_backfill_route,
    delete_backfill_route,
    pause_backfills,
    unpause_backfills,
    delete_backfills,
]
