"""The Schedule trigger's arithmetic: cron parsing, slots, trigger variables, slot ids.

A slot is an instant (aware datetime); its execution id is derived from (namespace, flow,
trigger, slot in UTC), so whoever creates it (a scheduler, a second scheduler, a backfill) creates
the same execution, and the executor accepts it once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from engine.core.errors import EngineError
from engine.core.model import Flow, Trigger
from engine.core.tree import make_id

SCHEDULE_TYPES = frozenset(
    {
        "io.kestra.plugin.core.trigger.Schedule",
        "io.kestra.core.models.triggers.types.Schedule",
    }
)
FLOW_TYPES = frozenset(
    {
        "io.kestra.plugin.core.trigger.Flow",
        "io.kestra.core.models.triggers.types.Flow",
    }
)
ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
RECOVER = ("ALL", "LAST", "NONE")


class ScheduleError(EngineError):
    """A Schedule trigger that cannot run (bad cron, unknown timezone...)."""


@dataclass(frozen=True)
class ScheduleSpec:
    namespace: str
    flow_id: str
    trigger_id: str
    cron: str  # as written
    expression: str  # aliases expanded
    with_seconds: bool
    tz: ZoneInfo
    inputs: dict[str, Any]
    labels: Any
    recover: str
    stop_after: tuple[str, ...]
    conditions: tuple[Any, ...]

    @property
    def where(self) -> str:
        return f"trigger '{self.trigger_id}' of flow {self.namespace}.{self.flow_id}"

    def _iter(self, start: datetime) -> croniter:
        return croniter(
            self.expression,
            start.astimezone(self.tz),
            ret_type=datetime,
            second_at_beginning=self.with_seconds,
        )

    def next_after(self, moment: datetime) -> datetime:
        return _aware(self._iter(moment).get_next(datetime))

    def previous_before(self, moment: datetime) -> datetime:
        return _aware(self._iter(moment).get_prev(datetime))

    def slots(self, after: datetime, upto: datetime, limit: int | None = None) -> Iterator[datetime]:
        """Slots with ``after < slot <= upto``, oldest first."""
        it = self._iter(after)
        n = 0
        while limit is None or n < limit:
            slot = _aware(it.get_next(datetime))
            if slot > upto:
                return
            yield slot
            n += 1

    def variables(self, slot: datetime) -> dict[str, str]:
        """``trigger.date``, ``trigger.next``, ``trigger.previous`` (ISO, in the trigger's timezone)."""
        return {
            "date": iso(slot, self.tz),
            "next": iso(self.next_after(slot), self.tz),
            "previous": iso(self.previous_before(slot), self.tz),
        }

    def execution_id(self, slot: datetime) -> str:
        return slot_execution_id(self.namespace, self.flow_id, self.trigger_id, slot)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def iso(moment: datetime, tz: ZoneInfo | None = None) -> str:
    local = moment.astimezone(tz or UTC)
    text = local.isoformat(timespec="seconds" if not local.microsecond else "milliseconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def utc_key(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def slot_execution_id(namespace: str, flow_id: str, trigger_id: str, slot: datetime) -> str:
    return make_id("schedule", namespace, flow_id, trigger_id, utc_key(slot))


def parse_cron(cron: Any, with_seconds: bool = False) -> str:
    """The cron expression to give croniter (aliases expanded); ScheduleError when it does not parse."""
    if not isinstance(cron, str) or not cron.strip():
        raise ScheduleError(f"cron must be a non-empty string, got {cron!r}")
    text = " ".join(cron.split())
    alias = ALIASES.get(text.lower())
    if alias is not None:
        expr = f"0 {alias}" if with_seconds else alias
    elif text.startswith("@"):
        raise ScheduleError(f"cron {cron!r}: unknown nickname; use one of {', '.join(sorted(ALIASES))}")
    else:
        expr = text
    want = 6 if with_seconds else 5
    got = len(expr.split(" "))
    if got != want:
        fields = "minutes hours day-of-month month day-of-week"
        if with_seconds:
            fields = "seconds " + fields
        extra = " (6 fields need withSeconds: true)" if got == 6 and not with_seconds else ""
        raise ScheduleError(
            f"cron {cron!r} does not parse: expected {want} fields ({fields}), got {got}{extra}"
        )
    try:
        croniter(expr, datetime(2024, 1, 1, tzinfo=UTC), second_at_beginning=with_seconds).get_next(datetime)
    except Exception as exc:  # croniter raises several types (CroniterBadCronError, ValueError, KeyError)
        raise ScheduleError(f"cron {cron!r} does not parse: {exc}") from None
    return expr


def schedule_spec(flow: Flow, trigger: Trigger) -> ScheduleSpec:
    props = trigger.props
    where = f"trigger '{trigger.id}' of flow {flow.namespace}.{flow.id}"
    with_seconds = bool(props.get("withSeconds", False))
    try:
        expr = parse_cron(props.get("cron"), with_seconds)
    except ScheduleError as exc:
        raise ScheduleError(f"{where}: {exc}") from None
    tz_name = props.get("timezone") or "UTC"
    try:
        tz = ZoneInfo(str(tz_name))
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f"{where}: unknown timezone {tz_name!r} (write an IANA name like Europe/Paris)"
        ) from None
    recover = str(props.get("recoverMissedSchedules") or "ALL").upper()
    if recover not in RECOVER:
        raise ScheduleError(f"{where}: recoverMissedSchedules must be ALL, LAST or NONE, got {recover!r}")
    conditions = tuple(props.get("conditions") or ()) + tuple(props.get("scheduleConditions") or ())
    return ScheduleSpec(
        namespace=flow.namespace,
        flow_id=flow.id,
        trigger_id=trigger.id,
        cron=str(props.get("cron")),
        expression=expr,
        with_seconds=with_seconds,
        tz=tz,
        inputs=dict(props.get("inputs") or {}),
        labels=props.get("labels"),
        recover=recover,
        stop_after=tuple(str(s) for s in props.get("stopAfter") or ()),
        conditions=conditions,
    )


def trigger_labels(value: Any) -> dict[str, Any]:
    """A trigger's ``labels`` (map or list of {key, value}) as a map."""
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return {str(i["key"]): i.get("value") for i in value if isinstance(i, dict) and "key" in i}
    return {}
