"""The triggers of the deployed flows, their state, and the Schedule backfills this process advances.

The triggers are those of the deployed flows (the DuckDB ``flows`` projection); the state of a
Schedule trigger (cursor, last slot, last execution, disabled) is read from ``KV_triggers``,
where the scheduler keeps it. A backfill runs ``triggers.backfill.follow_backfill`` in a task of
the API process (``Deps.backfills``); ``stop_backfills`` ends them when the API stops. The routes
are ``webserver.routes.triggers`` and ``webserver.routes.backfills``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from engine.core.errors import EngineError, FlowNotFound, FlowValidationError, InputError
from engine.loader.loader import load_flow_revision
from eventstore.triggerstate import TriggerKV, open_trigger_kv, schedule_key
from triggers.backfill import (
    BackfillError,
    backfill_status,
    cancel_backfill,
    follow_backfill,
    pause_backfill,
    resume_backfill,
)
from triggers.backfill import start_backfill as record_backfill
from triggers.schedule import SCHEDULE_TYPES, ScheduleError, iso, schedule_spec
from webserver.http import ApiError, Deps, bad, conflict, not_found, unprocessable

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
    k = (namespace, flow_id, revision, source)
    if k in _PARSED:
        _PARSED.move_to_end(k)
        return _PARSED[k]
    try:
        flow = load_flow_revision(source, revision)
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


async def stored_flow_triggers(d: Deps, namespace: str, flow_id: str) -> list[FlowTrigger]:
    """The triggers of one flow's latest revision, read from the stored flow, not the projection:
    a save that has just returned may not be projected yet (a busy indexer answered "its triggers:
    none" to a PUT right after the flow's POST), and a revision just saved may have changed them.
    404 when the flow is not deployed."""
    stored = await d.store.get_flow(namespace, flow_id)
    if stored is None:
        raise not_found(f"flow {namespace}.{flow_id} is not deployed")
    flow = _parse(namespace, flow_id, stored.revision, stored.source)
    triggers = flow.triggers if flow is not None else ()
    return [FlowTrigger(namespace, flow_id, t.id, t.type, flow, t) for t in triggers]


async def find_trigger(d: Deps, namespace: str, flow_id: str, trigger_id: str) -> FlowTrigger:
    found = await stored_flow_triggers(d, namespace, flow_id)
    for ft in found:
        if ft.trigger_id == trigger_id:
            return ft
    known = ", ".join(ft.trigger_id for ft in found) or "none"
    raise not_found(f"flow {namespace}.{flow_id} has no trigger '{trigger_id}' (its triggers: {known})")


def is_schedule(ft: FlowTrigger) -> bool:
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
    state, _ = await kv.get(schedule_key(ft.namespace, ft.flow_id, ft.trigger_id))
    return dict(state or {})


def trigger_context(d: Deps, ft: FlowTrigger, state: dict[str, Any]) -> dict[str, Any]:
    """Kestra's trigger context: the trigger's state as the scheduler keeps it."""
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


async def trigger_kv(d: Deps) -> TriggerKV:
    """The scheduler's trigger state bucket (created if this API runs before any scheduler)."""
    return await open_trigger_kv(d.store)


async def contexts(d: Deps, fts: list[FlowTrigger]) -> list[dict[str, Any]]:
    kv = await trigger_kv(d)
    states = await asyncio.gather(*(trigger_state(kv, ft) for ft in fts))
    backfills = await asyncio.gather(*(backfill_json(d, ft) for ft in fts))
    out = []
    for ft, state, backfill in zip(fts, states, backfills, strict=True):
        ctx = trigger_context(d, ft, state)
        ctx["backfill"] = backfill
        out.append(ctx)
    return out


async def one_context(d: Deps, ft: FlowTrigger) -> dict[str, Any]:
    return (await contexts(d, [ft]))[0]


# ---- backfill ----------------------------------------------------------------------------------


class TriggerRef(msgspec.Struct, rename="camel"):
    namespace: str
    flow_id: str
    trigger_id: str


class BackfillBody(msgspec.Struct, rename="camel"):
    start: str | None = None
    end: str | None = None
    inputs: dict[str, Any] | None = None
    labels: list[dict[str, Any]] | dict[str, Any] | None = None
    paused: bool | None = None


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
