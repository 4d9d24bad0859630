"""The Flow trigger: start a flow when another flow's execution reaches a state.

Follows Kestra's ``FlowTriggerService.computeExecutionsFromFlowTriggers``: the listening flow is
never the upstream flow itself; the upstream state must be in ``states`` (default: terminal
states); the plain ``conditions`` must all hold; each ``MultipleCondition`` (and the newer
``preconditions``) records which of its sub-conditions held in a time window kept in KV, and the
trigger fires when all of them have held in the window (then the window is reset unless
``resetOnSuccess: false``). ``inputs`` are rendered with the upstream execution's variables and
``trigger.*``.

Exactly once: the new execution's id is derived from (listening flow, trigger id, upstream
execution id, upstream state, how many times the upstream reached that state), so a redelivered
state change, or two trigger services, start it once. A window that resets fires for the one step
that completed it: the write that completes it also resets it and keeps that step's execution id
(``fired``), before the creation is sent. Steps handled meanwhile (other shards, other services)
find a fresh window, not a complete one; a redelivered completing step finds its id and sends the
same creation again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.core.dates import parse as parse_date
from engine.core.durations import parse_duration
from engine.core.errors import EngineError, InputError
from engine.core.execution import Execution
from engine.core.model import Flow, Trigger
from engine.core.states import TERMINAL
from engine.core.tree import make_id
from engine.inputs import resolve_inputs
from engine.logs import get_logger
from eventstore.triggerstate import TriggerKV, key
from triggers import conditions as C
from triggers.plan import Plan, flow_variables, label_strings, trigger_record
from triggers.schedule import iso, trigger_labels

log = get_logger("triggers.flow")

DEFAULT_STATES = tuple(sorted(str(s) for s in TERMINAL))
# The firings a window remembers: a completing step redelivered (after a nak, or the ack wait of
# a service that stopped) finds its own among them unless this many later ones completed it since.
FIRED_KEPT = 32


@dataclass
class Upstream:
    """The upstream execution as it was right after the state change (folded up to that step)."""

    execution: Execution
    state: str
    occurrence: int  # 1 for the first time the execution reached ``state``, 2 for the second...
    variables: dict[str, Any]  # the upstream execution's expression variables


def listened_states(trigger: Trigger) -> tuple[str, ...]:
    states = trigger.props.get("states")
    if not states:
        return DEFAULT_STATES
    return tuple(str(s) for s in states)


def trigger_variables(up: Upstream) -> dict[str, Any]:
    ex = up.execution
    return {
        "executionId": ex.id,
        "namespace": ex.namespace,
        "flowId": ex.flow_id,
        "flowRevision": ex.flow_revision,
        "state": up.state,
        "labels": dict(ex.labels),
        "outputs": dict(ex.outputs or {}),
    }


# ---- multiple conditions (MultipleCondition and preconditions) ---------------------------------------


@dataclass
class Multiple:
    id: str
    conditions: dict[str, Any]  # name -> condition (a Kestra condition, or an internal _upstream/_filter)
    time_window: dict[str, Any]
    reset_on_success: bool


def multiples(trigger: Trigger) -> list[Multiple]:
    out = []
    for cond in trigger.props.get("conditions") or []:
        if isinstance(cond, Mapping) and C.condition_kind(str(cond.get("type", ""))) == "MultipleCondition":
            window = dict(cond.get("timeWindow") or cond.get("sla") or {})
            if cond.get("window") is not None:
                window.setdefault("window", cond["window"])
            if cond.get("windowAdvance") is not None:
                window.setdefault("windowAdvance", cond["windowAdvance"])
            out.append(
                Multiple(
                    id=str(cond.get("id") or "multiple"),
                    conditions=dict(cond.get("conditions") or {}),
                    time_window=window,
                    reset_on_success=cond.get("resetOnSuccess", True) is not False,
                )
            )
    pre = trigger.props.get("preconditions")
    if isinstance(pre, Mapping):
        conds: dict[str, Any] = {}
        n = 0
        for upstream in pre.get("flows") or []:
            n += 1
            conds[f"condition_{n}"] = {"type": "_upstream", **upstream}
        for where in pre.get("where") or []:
            n += 1
            conds[f"condition_{n}_{where.get('id')}"] = {"type": "_filter", **where}
        out.append(
            Multiple(
                id=str(pre.get("id") or "preconditions"),
                conditions=conds,
                time_window=dict(pre.get("timeWindow") or {}),
                reset_on_success=pre.get("resetOnSuccess", True) is not False,
            )
        )
    return out


def _seconds(value: Any, default: float) -> float:
    return default if value is None else parse_duration(value)


def _time_of_day(value: Any) -> timedelta:
    text = str(value)
    parts = [float(p) for p in text.split("+")[0].split("Z")[0].split(":")]
    while len(parts) < 3:
        parts.append(0)
    return timedelta(hours=parts[0], minutes=parts[1], seconds=parts[2])


def new_window(tw: Mapping[str, Any], now: datetime) -> tuple[datetime, datetime]:
    """Kestra's ``MultipleConditionStorageInterface.getOrCreate`` window bounds."""
    now = now.astimezone(UTC).replace(microsecond=0)
    kind = str(tw.get("type") or "DURATION_WINDOW").upper()
    window = _seconds(tw.get("window"), 86400.0)
    if kind == "SLIDING_WINDOW":
        return now, now + timedelta(seconds=window)
    day = now.replace(hour=0, minute=0, second=0)
    if kind == "DAILY_TIME_WINDOW":
        return day + _time_of_day(tw.get("startTime")), day + _time_of_day(tw.get("endTime"))
    if kind == "DAILY_TIME_DEADLINE":
        return day, day + _time_of_day(tw.get("deadline"))
    if window >= 86400:
        now = now.replace(hour=0)
    if window >= 3600:
        now = now.replace(minute=0)
    minutes = int(window // 60)
    if minutes > 0:
        now = now.replace(second=0, minute=0) + timedelta(minutes=minutes * (now.minute // minutes))
    advance = tw.get("windowAdvance")
    start = now if advance is None else now + timedelta(seconds=parse_duration(advance))
    return start, start + timedelta(seconds=window) - timedelta(milliseconds=1)


@dataclass(frozen=True)
class Recorded:
    """A step's results added to one window."""

    complete: bool  # every sub-condition has held in the window (or this step already fired it)
    mine: bool  # this step completed it (now, or before it was redelivered)


def _complete(m: Multiple, results: Mapping[str, Any]) -> bool:
    return all(results.get(name) for name in m.conditions)


def _reset(fired: list[str], fire_id: str) -> dict[str, Any]:
    """A window consumed by the firing ``fire_id``: no bounds, so the next step opens new ones (as
    Kestra deletes it and the next ``getOrCreate`` makes one)."""
    return {"results": {}, "fired": [*fired, fire_id][-FIRED_KEPT:]}


def _too_contended(flow: Flow, m: Multiple) -> EngineError:
    return EngineError(f"{flow.namespace}.{flow.id}: window {m.id} is updated too often concurrently")


class FlowTriggers:
    """Evaluates Flow triggers against an upstream state change."""

    def __init__(self, kv: TriggerKV, expressions: Any, now: Callable[[], datetime]) -> None:
        self.kv = kv
        self.expressions = expressions
        self.now = now

    def context(self, flow: Flow, up: Upstream, tvars: dict[str, Any]) -> C.Context:
        ex = up.execution
        variables = {**up.variables, "trigger": tvars}
        variables["flow"] = flow_variables(flow)
        return C.Context(
            variables=variables,
            flow_namespace=flow.namespace,
            flow_id=flow.id,
            namespace=ex.namespace,
            execution_flow_id=ex.flow_id,
            state=up.state,
            labels=dict(ex.labels),
            outputs=ex.outputs,
            has_execution=True,
        )

    async def _sub_test(self, cond: Mapping[str, Any], ctx: C.Context) -> bool:
        kind = cond.get("type")
        if kind == "_upstream":
            if cond.get("namespace") is not None and ctx.namespace != cond.get("namespace"):
                return False
            if cond.get("flowId") is not None and ctx.execution_flow_id != cond.get("flowId"):
                return False
            states = cond.get("states")
            if states is not None and ctx.state not in [str(s) for s in states]:
                return False
            labels = cond.get("labels")
            return not (labels and any(ctx.labels.get(str(k)) != str(v) for k, v in dict(labels).items()))
        if kind == "_filter":
            any_of = str(cond.get("operand") or "AND").upper() == "OR"
            for f in cond.get("filters") or []:
                if await self._filter(f, ctx) == any_of:
                    return any_of  # short-circuit like Java's anyMatch/allMatch
            return not any_of
        return await C.test(cond, ctx, self.expressions)

    async def _sub_result(self, name: str, cond: Mapping[str, Any], ctx: C.Context) -> bool:
        """A sub-condition that cannot be evaluated is false (Kestra's ConditionService.isValid)."""
        try:
            return await self._sub_test(cond, ctx)
        except C.ConditionError as exc:
            log.debug("flow_trigger.condition_false", condition=name, error=str(exc))
            return False

    async def _filter(self, f: Mapping[str, Any], ctx: C.Context) -> bool:
        field = str(f.get("field", "")).upper()
        value: str | None
        if field == "FLOW_ID":
            value = ctx.execution_flow_id
        elif field == "NAMESPACE":
            value = ctx.namespace
        elif field == "STATE":
            value = ctx.state
        elif field == "EXPRESSION":
            try:
                value = str(await self.expressions.render_async(str(f.get("value", "")), ctx.variables))
            except EngineError as exc:
                raise C.ConditionError(f"preconditions filter: {exc}") from exc
        else:
            raise C.ConditionError(f"preconditions filter: unknown field {f.get('field')!r}")
        expected = f.get("value")
        kind = str(f.get("type", "")).upper()
        if kind == "EQUAL_TO":
            return value == expected
        if kind == "NOT_EQUAL_TO":
            return value != expected
        if kind == "IN":
            return value in (f.get("values") or [])
        if kind == "NOT_IN":
            return value not in (f.get("values") or [])
        if kind == "IS_TRUE":
            return C.truthy(value)
        if kind == "IS_FALSE":
            return not C.truthy(value)
        if kind == "IS_NULL":
            return value is None
        if kind == "IS_NOT_NULL":
            return value is not None
        if value is None:
            return False
        if kind == "STARTS_WITH":
            return value.startswith(str(expected))
        if kind == "ENDS_WITH":
            return value.endswith(str(expected))
        if kind == "REGEX":
            return re.fullmatch(str(expected), value) is not None
        if kind == "CONTAINS":
            return str(expected) in value
        raise C.ConditionError(f"preconditions filter: unknown type {f.get('type')!r}")

    def window_key(self, flow: Flow, trigger: Trigger, m: Multiple) -> str:
        return key("window", flow.namespace, flow.id, trigger.id, m.id)

    async def _record(
        self, flow: Flow, trigger: Trigger, m: Multiple, ctx: C.Context, fire_id: str, reset: bool
    ) -> Recorded:
        """Add this step's results to the window (one compare-and-set write).

        ``reset``: the write that completes the window resets it too, naming ``fire_id`` (this
        step's execution to start): nobody else can see it complete, so nobody else fires for it.
        Without, a completing write names the step (``completed_by``) for ``claim``.
        """
        results = {name: await self._sub_result(name, cond, ctx) for name, cond in m.conditions.items()}
        k = self.window_key(flow, trigger, m)
        for _ in range(20):
            now = self.now()
            stored, seq, fired = await self._read_window(k)
            if fire_id in fired:
                # Redelivered after its write: its results are in the window it consumed, not in this one.
                return Recorded(complete=True, mine=True)
            window = stored
            if (
                window is None
                or "start" not in window
                or not (parse_date(window["start"]) < now < parse_date(window["end"]))
            ):
                start, end = new_window(m.time_window, now)
                window = {"start": iso(start), "end": iso(end), "results": {}}
                if fired:
                    window["fired"] = fired
            before = dict(window.get("results") or {})
            merged = {**before, **{name: True for name, ok in results.items() if ok}}
            done = _complete(m, merged)
            # With ``reset`` a window is never stored complete (but by an older revision of the
            # trigger, or of this code): a step that finds it done completed it.
            completes = done and (reset or not _complete(m, before))
            if completes and reset:
                value = _reset(fired, fire_id)
            elif completes:
                value = {**window, "results": merged, "completed_by": fire_id}
            elif merged == before and seq:
                return Recorded(complete=done, mine=done and window.get("completed_by") == fire_id)
            else:
                value = {**window, "results": merged}
            if await self.kv.put(k, value, seq) is not None:
                return Recorded(complete=done, mine=completes)
        raise _too_contended(flow, m)

    async def _read_window(self, k: str) -> tuple[Any | None, int, list[str]]:
        """A window, its sequence, and the firings it remembers."""
        stored, seq = await self.kv.get(k)
        return stored, seq, list((stored or {}).get("fired") or [])

    async def claim(self, flow: Flow, trigger: Trigger, m: Multiple, fire_id: str) -> bool:
        """Reset a complete window for the firing ``fire_id`` (a trigger with several windows:
        each completes on its own step); False when it is no longer complete (another firing took it)."""
        k = self.window_key(flow, trigger, m)
        for _ in range(20):
            stored, seq, fired = await self._read_window(k)
            if fire_id in fired:
                return True
            if stored is None or not _complete(m, stored.get("results") or {}):
                return False
            if await self.kv.put(k, _reset(fired, fire_id), seq) is not None:
                return True
        raise _too_contended(flow, m)

    async def evaluate(self, flow: Flow, trigger: Trigger, up: Upstream) -> Plan | None:
        """The execution to start for this upstream state change, or None."""
        if up.state not in listened_states(trigger):
            return None
        tvars = trigger_variables(up)
        ctx = self.context(flow, up, tvars)
        conds = [
            c
            for c in trigger.props.get("conditions") or []
            if not (
                isinstance(c, Mapping) and C.condition_kind(str(c.get("type", ""))) == "MultipleCondition"
            )
        ]
        if not await C.all_true(conds, ctx, self.expressions):
            return None
        fire_id = make_id(
            "flow-trigger",
            flow.namespace,
            flow.id,
            trigger.id,
            up.execution.id,
            up.state,
            str(up.occurrence),
        )
        ms = multiples(trigger)
        # One window (the usual case): completed and reset by one write. Several: each is recorded,
        # then the step that completed one of them, finding them all complete, resets them in order;
        # the first reset decides between two such steps.
        single = len(ms) == 1
        recorded = [
            (m, await self._record(flow, trigger, m, ctx, fire_id, reset=single and m.reset_on_success))
            for m in ms
        ]
        if not all(r.complete for _, r in recorded):
            return None
        resetting = [m for m, _ in recorded if m.reset_on_success]
        if resetting:
            if not any(r.mine for _, r in recorded):
                return None  # complete, but another step completed it: that step fires
            if not single:
                if not await self.claim(flow, trigger, resetting[0], fire_id):
                    return None
                for m in resetting[1:]:
                    await self.claim(flow, trigger, m, fire_id)
        try:
            inputs = await self.expressions.render_value_async(
                dict(trigger.props.get("inputs") or {}), ctx.variables
            )
            labels = await self.expressions.render_value_async(
                trigger_labels(trigger.props.get("labels")), ctx.variables
            )
        except EngineError as exc:
            # A window this step completed stays consumed: the firing was this step's, and failed.
            log.warning(
                "flow_trigger.invalid_inputs",
                flow=f"{flow.namespace}.{flow.id}",
                trigger=trigger.id,
                upstream=up.execution.id,
                error=str(exc),
            )
            return None
        plan = Plan(
            flow=flow,
            execution_id=fire_id,
            inputs=typed_inputs(flow, inputs, self.expressions),
            labels=label_strings(labels),
            trigger=trigger_record(trigger, tvars),
        )
        return plan


def typed_inputs(flow: Flow, given: dict[str, Any], expressions: Any) -> dict[str, Any]:
    """Typed inputs when they validate; else the rendered values as given (Kestra does not validate
    the inputs of executions started by a Flow trigger)."""
    try:
        return resolve_inputs(flow, given, expressions.render)
    except InputError:
        return given
    except EngineError:
        return given
