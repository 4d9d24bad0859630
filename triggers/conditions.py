"""Kestra's trigger conditions (``io.kestra.plugin.core.condition.*``) evaluated on plain data.

Execution conditions (Flow trigger) look at the upstream execution: ExecutionFlow,
ExecutionNamespace (``prefix``/``comparison``), ExecutionStatus (``in``/``notIn``),
ExecutionLabels, ExecutionOutputs, Expression, Not, Or, FlowCondition/FlowNamespaceCondition
(the listening flow). Schedule conditions look at the slot's ``trigger.date``: DayWeek,
DayWeekInMonth, Weekend, TimeBetween, DateTimeBetween (and Expression, Not, Or).

``MultipleCondition`` is not evaluated here: it keeps results across executions in a window
(``triggers.flow``). Old type names (``io.kestra.core.models.conditions.types.*Condition``)
resolve to the same conditions.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from engine.core.errors import EngineError


class ConditionError(EngineError):
    """A condition that cannot be evaluated (unknown type, missing property, bad date)."""


_DAYS = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]


def condition_kind(type_name: str) -> str:
    """``...condition.ExecutionFlow`` and ``...types.ExecutionFlowCondition`` -> ``ExecutionFlow``."""
    name = type_name.rsplit(".", 1)[-1]
    if name.endswith("Condition") and name != "MultipleCondition":
        name = name[: -len("Condition")]
    return {"Variable": "Expression"}.get(name, name)


@dataclass
class Context:
    """What a condition may look at. ``execution`` is None for schedule conditions."""

    variables: dict[str, Any]
    flow_namespace: str
    flow_id: str
    namespace: str | None = None  # the upstream execution's
    execution_flow_id: str | None = None
    state: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, Any] | None = None
    has_execution: bool = False


def truthy(text: Any) -> bool:
    """Kestra's Expression condition: blank or ``false`` is false, anything else true."""
    if isinstance(text, bool):
        return text
    s = "" if text is None else str(text)
    return not (s.strip() == "" or s.strip() == "false")


def _labels(value: Any) -> list[tuple[str, str]]:
    if isinstance(value, Mapping):
        return [(str(k), str(v)) for k, v in value.items()]
    if isinstance(value, list):
        out = []
        for item in value:
            if isinstance(item, Mapping) and "key" in item:
                out.append((str(item["key"]), str(item.get("value"))))
        return out
    raise ConditionError(
        f"ExecutionLabels: 'labels' must be a map or a list of {{key, value}}, got {value!r}"
    )


def _parse_dt(text: str) -> datetime:
    s = text.strip().replace("Z", "+00:00")
    if "[" in s:  # Java ZonedDateTime with a zone id
        s = s.split("[", 1)[0]
    try:
        moment = datetime.fromisoformat(s)
    except ValueError as exc:
        raise ConditionError(f"not a date: {text!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _parse_time(text: Any) -> time:
    s = str(text).strip().replace("Z", "+00:00")
    try:
        return time.fromisoformat(s)
    except ValueError as exc:
        raise ConditionError(f"not a time: {text!r} (write HH:MM:SS or HH:MM:SS+01:00)") from exc


def _between(current: Any, after: Any, before: Any, parse: Callable[[Any], Any]) -> bool:
    """``after < current < before``, a bound left out (None) being no bound."""
    return (after is None or current > parse(after)) and (before is None or current < parse(before))


def _dow(value: Any, kind: str) -> int:
    name = str(value or "").upper()
    if name not in _DAYS:
        raise ConditionError(f"{kind}: dayOfWeek must be one of {', '.join(_DAYS)}, got {value!r}")
    return _DAYS.index(name)


def _nth_weekday(day: date, weekday: int, which: str) -> date:
    year, month = day.year, day.month
    days = [
        d
        for d in range(1, calendar.monthrange(year, month)[1] + 1)
        if date(year, month, d).weekday() == weekday
    ]
    index = {"FIRST": 0, "SECOND": 1, "THIRD": 2, "FOURTH": 3, "LAST": -1}.get(which.upper())
    if index is None:
        raise ConditionError(
            f"DayWeekInMonth: dayInMonth must be FIRST, SECOND, THIRD, FOURTH or LAST, got {which!r}"
        )
    return date(year, month, days[index])


def _time_key(t: time) -> float:
    """Seconds since midnight UTC (for comparing OffsetTimes like Java does)."""
    secs = t.hour * 3600 + t.minute * 60 + t.second + t.microsecond / 1e6
    off = t.utcoffset()
    if off is not None:
        secs -= off.total_seconds()
    return secs % 86400


async def test(cond: Mapping[str, Any], ctx: Context, expressions: Any) -> bool:
    """Is ``cond`` true in ``ctx``? Raises ConditionError when it cannot be evaluated."""
    if not isinstance(cond, Mapping) or not isinstance(cond.get("type"), str):
        raise ConditionError(f"a condition needs a 'type', got {cond!r}")
    kind = condition_kind(cond["type"])

    async def render(template: Any) -> str:
        try:
            return str(await expressions.render_async(str(template), ctx.variables))
        except EngineError as exc:
            raise ConditionError(f"{kind}: {exc}") from exc

    def need_execution() -> None:
        if not ctx.has_execution:
            raise ConditionError(f"{kind} needs an execution: it only works in a Flow trigger")

    if kind == "ExecutionFlow":
        need_execution()
        return ctx.namespace == cond.get("namespace") and ctx.execution_flow_id == cond.get("flowId")
    if kind == "ExecutionNamespace":
        need_execution()
        ns = str(cond.get("namespace", ""))
        comparison = str(cond.get("comparison") or ("PREFIX" if cond.get("prefix") else "EQUALS")).upper()
        actual = ctx.namespace or ""
        if comparison == "PREFIX":
            return actual.startswith(ns)
        if comparison == "SUFFIX":
            return actual.endswith(ns)
        return actual == ns
    if kind == "ExecutionStatus":
        need_execution()
        ins, not_in = cond.get("in"), cond.get("notIn")
        if ins is not None and ctx.state not in [str(s) for s in ins]:
            return False
        return not (not_in is not None and ctx.state in [str(s) for s in not_in])
    if kind == "ExecutionLabels":
        need_execution()
        return all(ctx.labels.get(k) == v for k, v in _labels(cond.get("labels")))
    if kind == "ExecutionOutputs":
        need_execution()
        if not ctx.outputs:
            return False
        return truthy(await render(cond.get("expression", "")))
    if kind == "Expression":
        return truthy(await render(cond.get("expression", "")))
    if kind == "Not":
        return not any([await test(c, ctx, expressions) for c in cond.get("conditions") or []])
    if kind == "Or":
        return any([await test(c, ctx, expressions) for c in cond.get("conditions") or []])
    if kind == "Flow":  # FlowCondition: the listening flow
        return ctx.flow_namespace == cond.get("namespace") and ctx.flow_id == cond.get("flowId")
    if kind == "FlowNamespace":
        ns = str(cond.get("namespace", ""))
        return ctx.flow_namespace.startswith(ns) if cond.get("prefix") else ctx.flow_namespace == ns
    if kind in ("DayWeek", "DayWeekInMonth", "Weekend", "TimeBetween", "DateTimeBetween"):
        moment = _parse_dt(await render(cond.get("date", "{{ trigger.date }}")))
        if kind == "DayWeek":
            return moment.weekday() == _dow(cond.get("dayOfWeek"), kind)
        if kind == "Weekend":
            return moment.weekday() >= 5
        if kind == "DayWeekInMonth":
            weekday = _dow(cond.get("dayOfWeek"), kind)
            return _nth_weekday(moment.date(), weekday, str(cond.get("dayInMonth", ""))) == moment.date()
        after, before = cond.get("after"), cond.get("before")
        if after is None and before is None:
            raise ConditionError(f"{kind}: set 'after', 'before' or both")
        if kind == "TimeBetween":
            now_t = moment.timetz() if moment.tzinfo else moment.time()
            return _between(_time_key(now_t), after, before, lambda v: _time_key(_parse_time(v)))
        return _between(moment, after, before, lambda v: _parse_dt(str(v)))
    if kind == "MultipleCondition":
        raise ConditionError("MultipleCondition is only allowed directly in a Flow trigger's conditions")
    raise ConditionError(f"unknown condition type {cond['type']!r}")


async def all_true(conds: list[Any], ctx: Context, expressions: Any) -> bool:
    for c in conds:
        if not await test(c, ctx, expressions):
            return False
    return True
