"""Backfill: create the execution of every slot of a Schedule trigger in a window, durably and gently.

A backfill is a record in KV_triggers (``backfill.<ns>.<flow>.<trigger>``, one per trigger): the
window, the inputs and labels, the cursor (last slot handled), the executions in flight, counters
and a status: RUNNING, PAUSED, CANCELLED or DONE. Whoever advances it (the scheduler role, and the
``engine backfill`` command while it runs) creates the next slots only while fewer than the limit
are in flight: the flow's ``concurrency.limit`` when it has one, else ``max_inflight`` (default
10). Each step is a compare-and-set write, so two advancers never lose an update.

Each slot's execution id is the one the scheduler would use (namespace, flow, trigger, slot), so
running the same backfill twice, or backfilling slots the scheduler already ran, or an advancer
that dies between creating and recording, creates nothing twice: the executor accepts one
ExecutionCreated per id.

The functions another service (the REST API) calls take the store: :func:`backfill_status`,
:func:`list_backfills`, :func:`pause_backfill`, :func:`resume_backfill`, :func:`cancel_backfill`.
:func:`start_backfill` and :func:`advance_backfill` need a Runtime (flows, expressions).
A DONE or CANCELLED record is replaced by the next backfill of the same trigger.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from engine.clock import utcnow
from engine.core.dates import parse as parse_date
from engine.core.errors import EngineError
from engine.core.model import Flow, Trigger
from engine.flows import FlowCache
from eventstore.store import Store
from eventstore.triggerstate import TriggerKV, key, open_trigger_kv
from triggers.plan import TriggerRuntime, slot_plan, start_plan
from triggers.schedule import SCHEDULE_TYPES, ScheduleError, ScheduleSpec, iso, schedule_spec, utc_key

MAX_SLOTS = 100_000
DEFAULT_INFLIGHT = 10
MAX_PER_STEP = 1_000  # slots handled by one advance step (skipped ones included)
MAX_SKIPPED_KEPT = 10_000

RUNNING, PAUSED, CANCELLED, DONE = "RUNNING", "PAUSED", "CANCELLED", "DONE"
ACTIVE = (RUNNING, PAUSED)

T = TypeVar("T")


class BackfillError(EngineError):
    """A backfill that cannot start or be changed (unknown flow or trigger, bad window, bad cron...)."""


@dataclass
class BackfillResult:
    slots: int = 0
    created: list[str] = field(default_factory=list)  # execution ids (already existing ones included)
    skipped: list[str] = field(default_factory=list)  # slots refused by the schedule's conditions
    status: str = DONE


def pick_trigger(flow: Flow, trigger_id: str | None) -> Trigger:
    schedules = [t for t in flow.triggers if t.type in SCHEDULE_TYPES]
    if trigger_id is not None:
        for t in flow.triggers:
            if t.id == trigger_id:
                if t.type not in SCHEDULE_TYPES:
                    raise BackfillError(
                        f"trigger '{trigger_id}' of flow {flow.key} is a {t.type}, not a Schedule"
                    )
                return t
        known = ", ".join(t.id for t in schedules) or "none"
        raise BackfillError(f"flow {flow.key} has no trigger '{trigger_id}' (Schedule triggers: {known})")
    if not schedules:
        raise BackfillError(f"flow {flow.key} has no Schedule trigger to backfill")
    if len(schedules) > 1:
        raise BackfillError(
            f"flow {flow.key} has {len(schedules)} Schedule triggers ({', '.join(t.id for t in schedules)}): "
            "choose one with --trigger"
        )
    return schedules[0]


def parse_moment(text: str | datetime, spec: ScheduleSpec | None = None, what: str = "date") -> datetime:
    """An ISO date or date-time; without an offset it is read in the trigger's timezone."""
    if isinstance(text, datetime):
        moment = text
    else:
        try:
            moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise BackfillError(
                f"{what} {text!r} is not an ISO date-time (write 2024-01-31T00:00:00Z or 2024-01-31)"
            ) from None
    if moment.tzinfo is None and spec is not None:
        moment = moment.replace(tzinfo=spec.tz)
    return moment


def check_window(start: datetime, end: datetime) -> None:
    if start.tzinfo is not None and end.tzinfo is not None and end < start:
        raise BackfillError(f"--end {iso(end)} is before --start {iso(start)}: nothing to backfill")


def backfill_slots(spec: ScheduleSpec, start: datetime, end: datetime) -> list[datetime]:
    """Every slot with start <= slot <= end."""
    check_window(start, end)
    slots = list(spec.slots(start - timedelta(microseconds=1), end, limit=MAX_SLOTS + 1))
    if len(slots) > MAX_SLOTS:
        raise BackfillError(
            f"the window holds more than {MAX_SLOTS} slots of {spec.cron!r}: backfill a shorter one"
        )
    return slots


def backfill_key(namespace: str, flow_id: str, trigger_id: str) -> str:
    return key("backfill", namespace, flow_id, trigger_id)


class _Field(Generic[T]):
    """A field of the stored record, read as ``kind``."""

    def __init__(self, name: str, kind: Callable[[Any], T]) -> None:
        self.name = name
        self.kind = kind

    def __get__(self, status: BackfillStatus, owner: type | None = None) -> T:
        return self.kind(status.raw[self.name])


@dataclass
class BackfillStatus:
    """A backfill record, as stored (``raw``) and with its figures named."""

    raw: dict[str, Any]

    namespace = _Field("namespace", str)
    flow_id = _Field("flow_id", str)
    trigger_id = _Field("trigger_id", str)
    status = _Field("status", str)
    total = _Field("total", int)

    @property
    def handled(self) -> int:
        """Slots created or refused by the conditions."""
        return int(self.raw["created"]) + int(self.raw["skipped"])

    @property
    def running(self) -> int:
        return len(self.raw.get("inflight") or [])

    def line(self) -> str:
        r = self.raw
        text = (
            f"backfill {self.namespace}.{self.flow_id} trigger {self.trigger_id}: {self.status}, "
            f"{self.handled}/{self.total} slot(s) handled ({r['created']} created"
        )
        if r["skipped"]:
            text += f", {r['skipped']} refused by the conditions"
        text += f"), {self.running} running, window {r['start']} .. {r['end']}"
        if r.get("next"):
            text += f", next slot {r['next']}"
        if r.get("reason"):
            text += f" ({r['reason']})"
        return text

    def to_dict(self) -> dict[str, Any]:
        """Kestra-like JSON for an API: window, status, progress."""
        r = self.raw
        return {
            "namespace": self.namespace,
            "flowId": self.flow_id,
            "triggerId": self.trigger_id,
            "status": self.status,
            "paused": self.status == PAUSED,
            "start": r["start"],
            "end": r["end"],
            "currentDate": r.get("next"),
            "inputs": r.get("inputs") or {},
            "labels": r.get("labels") or {},
            "total": self.total,
            "created": r["created"],
            "skipped": r["skipped"],
            "running": self.running,
            "maxInflight": r.get("max_inflight"),
            "createdAt": r.get("created_at"),
            "updatedAt": r.get("updated_at"),
        }


async def list_backfills(store: Store, namespace: str | None = None) -> list[BackfillStatus]:
    """Every backfill record (finished ones included), optionally of one namespace and below."""
    kv = await open_trigger_kv(store)
    out = []
    for k in await kv.keys("backfill."):
        state, _ = await kv.get(k)
        if not state:
            continue
        ns = str(state.get("namespace", ""))
        if namespace and not (ns == namespace or ns.startswith(namespace + ".")):
            continue
        out.append(BackfillStatus(state))
    return out


async def _find(store: Store, namespace: str, flow_id: str, trigger_id: str | None) -> str:
    if trigger_id is not None:
        return backfill_key(namespace, flow_id, trigger_id)
    kv = await open_trigger_kv(store)
    prefix = key("backfill", namespace, flow_id) + "."
    keys = [k for k in await kv.keys(prefix) if k.count(".") == prefix.count(".")]
    if not keys:
        await FlowCache(store).get(namespace, flow_id)  # "flow ... is not deployed"
        raise BackfillError(f"flow {namespace}.{flow_id} has no backfill")
    if len(keys) > 1:
        found = []
        for k in keys:
            state, _ = await kv.get(k)
            if state:
                found.append(str(state.get("trigger_id")))
        raise BackfillError(
            f"flow {namespace}.{flow_id} has backfills on {len(keys)} triggers ({', '.join(found)}): "
            "choose one with --trigger"
        )
    return keys[0]


async def backfill_status(
    store: Store, namespace: str, flow_id: str, trigger_id: str | None = None
) -> BackfillStatus:
    """The backfill of a flow's trigger (the only one of the flow when ``trigger_id`` is None)."""
    k = await _find(store, namespace, flow_id, trigger_id)
    state, _ = await (await open_trigger_kv(store)).get(k)
    if not state:
        raise BackfillError(f"flow {namespace}.{flow_id} has no backfill on trigger '{trigger_id}'")
    return BackfillStatus(state)


async def _transition(
    store: Store,
    namespace: str,
    flow_id: str,
    trigger_id: str | None,
    allowed: tuple[str, ...],
    to: str,
    verb: str,
) -> BackfillStatus:
    k = await _find(store, namespace, flow_id, trigger_id)
    kv = await open_trigger_kv(store)
    for _ in range(50):
        state, seq = await kv.get(k)
        if not state:
            raise BackfillError(f"flow {namespace}.{flow_id} has no backfill on trigger '{trigger_id}'")
        current = BackfillStatus(state)
        if current.status == to:
            return current  # already so: idempotent
        if current.status not in allowed:
            raise BackfillError(
                f"the backfill of {namespace}.{flow_id} trigger {current.trigger_id} is {current.status}: "
                f"it cannot be {verb}"
            )
        new = {**state, "status": to, "updated_at": utcnow()}
        if to == CANCELLED:
            new["reason"] = "cancelled"
        if await kv.put(k, new, seq) is not None:
            return BackfillStatus(new)
    raise BackfillError(f"the backfill of {namespace}.{flow_id} is updated too often concurrently; retry")


async def pause_backfill(
    store: Store, namespace: str, flow_id: str, trigger_id: str | None = None
) -> BackfillStatus:
    """No new slot is created until resumed (executions already created run on)."""
    return await _transition(store, namespace, flow_id, trigger_id, (RUNNING,), PAUSED, "paused")


async def resume_backfill(
    store: Store, namespace: str, flow_id: str, trigger_id: str | None = None
) -> BackfillStatus:
    return await _transition(store, namespace, flow_id, trigger_id, (PAUSED,), RUNNING, "resumed")


async def cancel_backfill(
    store: Store, namespace: str, flow_id: str, trigger_id: str | None = None
) -> BackfillStatus:
    """No new slot is ever created (executions already created run on; kill them to stop them)."""
    return await _transition(store, namespace, flow_id, trigger_id, ACTIVE, CANCELLED, "cancelled")


async def start_backfill(
    runtime: TriggerRuntime,
    namespace: str,
    flow_id: str,
    trigger_id: str | None,
    start: str | datetime,
    end: str | datetime,
    inputs: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None,
    max_inflight: int | None = None,
) -> BackfillStatus:
    """Record a backfill (RUNNING) after checking everything; the same one already active is returned.

    Refused (BackfillError): unknown flow or trigger, bad window, invalid inputs, or another backfill
    of the trigger that is still RUNNING or PAUSED with a different window, inputs or labels.
    """
    flow = await runtime.flows.get(namespace, flow_id)
    trigger = pick_trigger(flow, trigger_id)
    try:
        spec = schedule_spec(flow, trigger)
    except ScheduleError as exc:
        raise BackfillError(str(exc)) from None
    first = parse_moment(start, spec, "--start")
    last = parse_moment(end, spec, "--end")
    if max_inflight is not None and max_inflight < 1:
        raise BackfillError(f"--max-inflight must be at least 1, got {max_inflight}")
    slots = backfill_slots(spec, first, last)
    if slots:  # inputs checked before anything is stored
        await slot_plan(runtime.expressions, flow, spec, slots[0], inputs, labels, strict=True)
    kv = await open_trigger_kv(runtime.store)
    k = backfill_key(flow.namespace, flow.id, trigger.id)
    record: dict[str, Any] = {
        "namespace": flow.namespace,
        "flow_id": flow.id,
        "trigger_id": trigger.id,
        "start": utc_key(first),
        "end": utc_key(last),
        "inputs": dict(inputs or {}),
        "labels": dict(labels or {}),
        "max_inflight": max_inflight,
        "status": RUNNING if slots else DONE,
        "total": len(slots),
        "created": 0,
        "skipped": 0,
        "cursor": None,
        "next": iso(slots[0], spec.tz) if slots else None,
        "inflight": [],
        "skipped_slots": [],
        "created_at": utcnow(),
        "updated_at": utcnow(),
    }
    same = ("start", "end", "inputs", "labels")
    for _ in range(50):
        state, seq = await kv.get(k)
        if state and state.get("status") in ACTIVE:
            if all(state.get(f) == record[f] for f in same):
                return BackfillStatus(state)  # the same backfill: follow it
            current = BackfillStatus(state)
            raise BackfillError(
                f"trigger {trigger.id} of flow {flow.key} already has a {current.status} backfill "
                f"({state['start']} .. {state['end']}, {current.handled}/{current.total}): "
                f"cancel it first (engine backfill cancel {flow.namespace} {flow.id}) or wait for it"
            )
        if await kv.put(k, record, seq) is not None:
            return BackfillStatus(record)
    raise BackfillError(f"the backfill of {flow.key} is updated too often concurrently; retry")


async def _ended(runtime: TriggerRuntime, execution_id: str) -> bool:
    state = await runtime.load_execution(execution_id)
    return state is not None and state.is_terminal


async def advance_backfill(
    runtime: TriggerRuntime, kv: TriggerKV, k: str
) -> tuple[BackfillStatus | None, list[str]]:
    """One step: forget ended executions, create slots while the limit allows, record it all.

    Returns the record after the step and the execution ids this step created.
    """
    state, seq = await kv.get(k)
    if not state:
        return None, []
    if state.get("status") != RUNNING:
        return BackfillStatus(state), []
    new = dict(state)
    try:
        flow = await runtime.flows.get(state["namespace"], state["flow_id"])
        trigger = pick_trigger(flow, state["trigger_id"])
        spec = schedule_spec(flow, trigger)
    except EngineError as exc:  # the flow or the trigger is gone or broken: stop, say why
        new.update(status=CANCELLED, reason=str(exc)[:300], updated_at=utcnow())
        await kv.put(k, new, seq)
        return BackfillStatus(new), []
    inflight = [eid for eid in state.get("inflight") or [] if not await _ended(runtime, eid)]
    limit = state.get("max_inflight") or (flow.concurrency.limit if flow.concurrency else DEFAULT_INFLIGHT)
    created: list[str] = []
    end = parse_date(state["end"])
    before_start = parse_date(state["start"]) - timedelta(microseconds=1)
    cursor = parse_date(state["cursor"]) if state.get("cursor") else before_start
    skipped_slots = list(state.get("skipped_slots") or [])
    finished = True
    for handled, slot in enumerate(spec.slots(cursor, end)):
        if len(inflight) >= limit or handled >= MAX_PER_STEP:
            finished = False
            new["next"] = iso(slot, spec.tz)
            break
        plan = await slot_plan(
            runtime.expressions, flow, spec, slot, state.get("inputs"), state.get("labels")
        )
        if plan is None:
            new["skipped"] = int(new["skipped"]) + 1
            if len(skipped_slots) < MAX_SKIPPED_KEPT:
                skipped_slots.append(utc_key(slot))
        else:
            eid = await start_plan(runtime, plan)
            created.append(eid)
            inflight.append(eid)
            new["created"] = int(new["created"]) + 1
        new["cursor"] = utc_key(slot)
    if finished:
        new["next"] = None
        if not inflight:
            new["status"] = DONE
    new.update(inflight=inflight, skipped_slots=skipped_slots)
    if new != state:
        new["updated_at"] = utcnow()
        if await kv.put(k, new, seq) is None:
            return BackfillStatus((await kv.get(k))[0] or new), created  # another advancer was first
    return BackfillStatus(new), created


def backfill_execution_ids(flow: Flow, status: BackfillStatus) -> list[str]:
    """The execution ids of the slots handled so far (in slot order), refused slots left out."""
    trigger = pick_trigger(flow, status.trigger_id)
    spec = schedule_spec(flow, trigger)
    raw = status.raw
    if not raw.get("cursor"):
        return []
    skipped = set(raw.get("skipped_slots") or [])
    start = parse_date(raw["start"]) - timedelta(microseconds=1)
    return [
        spec.execution_id(slot)
        for slot in spec.slots(start, parse_date(raw["cursor"]))
        if utc_key(slot) not in skipped
    ]


async def follow_backfill(
    runtime: TriggerRuntime,
    namespace: str,
    flow_id: str,
    trigger_id: str,
    progress: Callable[[BackfillStatus], Any] | None = None,
    interval: float = 0.1,
) -> BackfillStatus:
    """Advance the backfill here until it is DONE, PAUSED or CANCELLED (a scheduler may help)."""
    kv = await open_trigger_kv(runtime.store)
    k = backfill_key(namespace, flow_id, trigger_id)
    while True:
        status, _ = await advance_backfill(runtime, kv, k)
        if status is None:
            raise BackfillError(f"the backfill of {namespace}.{flow_id} trigger {trigger_id} disappeared")
        if progress is not None:
            progress(status)
        if status.status != RUNNING:
            return status
        await asyncio.sleep(interval)


async def backfill(
    runtime: TriggerRuntime,
    *args: Any,
    progress: Callable[[int, int], Any] | None = None,
    **kwargs: Any,
) -> BackfillResult:
    """Start (or rejoin) a backfill (the arguments of :func:`start_backfill`) and advance it here
    until it ends.

    ``progress(handled, total)`` after each step. Needs an executor running (in this process or in
    the cluster): slots are created as earlier ones end.
    """
    status = await start_backfill(runtime, *args, **kwargs)

    def step(s: BackfillStatus) -> None:
        if progress is not None:
            progress(s.handled, s.total)

    step(status)
    final = await follow_backfill(runtime, status.namespace, status.flow_id, status.trigger_id, step)
    flow = await runtime.flows.get(final.namespace, final.flow_id)
    spec = schedule_spec(flow, pick_trigger(flow, final.trigger_id))
    return BackfillResult(
        slots=final.total,
        created=backfill_execution_ids(flow, final),
        skipped=[iso(parse_date(s), spec.tz) for s in final.raw.get("skipped_slots") or []],
        status=final.status,
    )
