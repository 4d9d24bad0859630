"""``/api/v1/triggers``: Kestra-shaped trigger listing, and enabling/disabling Schedule triggers.

Enabling and disabling write the trigger's state in ``KV_triggers`` (``set_disabled``: the
position is kept, re-enabling follows ``recoverMissedSchedules``). ``PUT /triggers`` also starts
a backfill: the request answers once the window, the trigger and the inputs are known valid (or,
with ``wait``, when every slot has its execution).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, get, post, put
from litestar.params import FromPath, JSONBody, QueryParameter

from eventstore import subjects as S
from eventstore.triggerstate import set_disabled
from webserver.filters import TRIGGERS, filter_sql
from webserver.http import (
    Deps,
    FlowIdParam,
    NamespaceTree,
    Page,
    Size,
    bad,
    conflict,
    deps,
    page_of,
    unprocessable,
)
from webserver.triggers import (
    BackfillBody,
    FlowTrigger,
    TriggerRef,
    abstract_trigger,
    contexts,
    find_trigger,
    flow_triggers,
    is_schedule,
    one_context,
    start_backfill,
    stored_flow_triggers,
    trigger_kv,
)

TriggerText = Annotated[str | None, QueryParameter(description="Text in the namespace, flow or trigger id")]
WaitForSlots = Annotated[
    bool, QueryParameter(description="With a backfill: answer when every slot has its execution")
]

TRIGGER_SORTS = {
    "namespace": lambda t: (t.namespace, t.flow_id, t.trigger_id),
    "flowId": lambda t: (t.flow_id, t.namespace, t.trigger_id),
    "triggerId": lambda t: (t.trigger_id, t.namespace, t.flow_id),
    "type": lambda t: (t.type, t.namespace, t.flow_id, t.trigger_id),
}


def _filter(fts: list[FlowTrigger], q: str | None) -> list[FlowTrigger]:
    if not q:
        return fts
    needle = q.lower()
    return [
        ft
        for ft in fts
        if needle in ft.trigger_id.lower() or needle in ft.flow_id.lower() or needle in ft.namespace.lower()
    ]


async def _matching(d: Deps, request: Request[Any, Any, Any], fts: list[FlowTrigger]) -> list[FlowTrigger]:
    """The triggers the request's ``filters[...]`` match, asked of DuckDB over the listed triggers
    (the same SQL, so the same meaning, as every other search)."""
    where, params = filter_sql(request, TRIGGERS)
    if where == "true" or not fts:
        return fts
    rows = await d.indexer.aquery(
        "SELECT i FROM (SELECT unnest(?::VARCHAR[]) AS namespace, unnest(?::VARCHAR[]) AS flow_id, "
        f"unnest(?::VARCHAR[]) AS trigger_id, unnest(?::INTEGER[]) AS i) WHERE {where} ORDER BY i",
        [
            [ft.namespace for ft in fts],
            [ft.flow_id for ft in fts],
            [ft.trigger_id for ft in fts],
            list(range(len(fts))),
            *params,
        ],
    )
    return [fts[r[0]] for r in rows]


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
    size: Size = 10,
    q: TriggerText = None,
    namespace: NamespaceTree = None,
    flow_id: FlowIdParam = None,
    sort: Annotated[str | None, QueryParameter(description="namespace|flowId|triggerId|type[:desc]")] = None,
) -> dict[str, Any]:
    """Triggers of the flows, with state, filtered (the parameters and Kestra's
    ``filters[field][OPERATION]=value``): ``{results: [{abstractTrigger, triggerContext}], total}``."""
    d = deps(request)
    found = _filter(await flow_triggers(d, namespace, flow_id), q)
    fts = _sorted(await _matching(d, request, found), sort)
    total = len(fts)
    chosen = page_of(fts, page, size)
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
    size: Size = 10,
    q: Annotated[str | None, QueryParameter(description="Text in the trigger id")] = None,
) -> dict[str, Any]:
    """The triggers of one flow with their state: ``{results: [triggerContext], total}``."""
    d = deps(request)
    fts = _filter(await stored_flow_triggers(d, namespace, flow_id), q)
    return {"results": await contexts(d, page_of(fts, page, size)), "total": len(fts)}


# ---- enable / disable -------------------------------------------------------------------------


class TriggerBody(msgspec.Struct, rename="camel"):
    namespace: str
    flow_id: str
    trigger_id: str
    disabled: bool | None = None
    backfill: BackfillBody | None = None


async def set_trigger_disabled(d: Deps, ft: FlowTrigger, disabled: bool) -> None:
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
    await set_disabled(await trigger_kv(d), ft.namespace, ft.flow_id, ft.trigger_id, disabled)


@put("/triggers", status_code=200, tags=["Triggers"])
async def update_trigger(
    request: Request[Any, Any, Any],
    data: JSONBody[TriggerBody],
    wait: WaitForSlots = False,
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
    q: TriggerText = None,
    namespace: NamespaceTree = None,
    disabled: Annotated[bool, QueryParameter(description="true: disable, false: enable")] = True,
) -> dict[str, Any]:
    """Enable or disable every Schedule trigger matching the query and the ``filters[...]`` (others
    are skipped): ``{count}``."""
    d = deps(request)
    # Every flow saved before the request, not the projection's lagging view (CI saw count 0 for
    # a flow deployed just before).
    await d.indexer.wait_synced(S.FLOWS)
    count = 0
    for ft in await _matching(d, request, _filter(await flow_triggers(d, namespace), q)):
        if not is_schedule(ft) or (not disabled and (ft.trigger.disabled or ft.flow.disabled)):
            continue
        await set_trigger_disabled(d, ft, disabled)
        count += 1
    return {"count": count}


ROUTES = [
    search_triggers,
    flow_triggers_route,
    update_trigger,
    set_disabled_by_triggers,
    set_disabled_by_query,
]
