"""Backfill: create the execution of every slot of a Schedule trigger in a window, idempotently.

Each slot's execution id is the one the scheduler would use (namespace, flow, trigger, slot), so
running the same backfill twice, or backfilling slots the scheduler already ran, creates nothing
twice: the executor accepts one ExecutionCreated per id.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from engine.errors import EngineError
from engine.model import Flow, Trigger
from triggers.schedule import SCHEDULE_TYPES, ScheduleError, ScheduleSpec, iso, schedule_spec

MAX_SLOTS = 100_000


class BackfillError(EngineError):
    """A backfill that cannot start (unknown flow or trigger, bad window, bad cron)."""


@dataclass
class BackfillResult:
    slots: int = 0
    created: list[str] = field(default_factory=list)  # execution ids (already existing ones included)
    skipped: list[str] = field(default_factory=list)  # slots refused by the schedule's conditions


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


async def backfill(
    runtime: Any,
    namespace: str,
    flow_id: str,
    trigger_id: str | None,
    start: str | datetime,
    end: str | datetime,
    inputs: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None,
    progress: Callable[[int, int], Any] | None = None,
) -> BackfillResult:
    """Create the execution of every slot in [start, end]; ``progress(done, total)`` after each slot."""
    from triggers.service import slot_plan

    flow = await runtime.flows.get(namespace, flow_id)
    trigger = pick_trigger(flow, trigger_id)
    try:
        spec = schedule_spec(flow, trigger)
    except ScheduleError as exc:
        raise BackfillError(str(exc)) from None
    first = parse_moment(start, spec, "--start")
    last = parse_moment(end, spec, "--end")
    slots = backfill_slots(spec, first, last)
    result = BackfillResult(slots=len(slots))
    total = len(slots)
    if slots:  # inputs checked before anything is created
        await slot_plan(runtime, flow, spec, slots[0], inputs, labels, strict=True)
    if progress is not None:
        progress(0, total)
    for n, slot in enumerate(slots, 1):
        plan = await slot_plan(runtime, flow, spec, slot, inputs, labels, strict=True)
        if plan is None:
            result.skipped.append(iso(slot, spec.tz))
        else:
            result.created.append(
                await runtime.create_execution(
                    plan.flow, plan.inputs, plan.labels, execution_id=plan.execution_id, trigger=plan.trigger
                )
            )
        if progress is not None:
            progress(n, total)
    return result
