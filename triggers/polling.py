"""Polling triggers: every ``interval``, ask something whether to start an execution.

A polling trigger is a plugin: subclass :class:`PollingTrigger`, name the Kestra types it serves
and register it (``@register_polling`` in an imported module, or an ``engine.triggers`` entry
point)::

    @register_polling
    class FileWatch(PollingTrigger):
        types = ("io.kestra.plugin.fs.local.Trigger",)

        async def poll(self, ctx: PollContext) -> dict[str, Any] | None:
            ...  # None: nothing this time; a dict: start an execution with these trigger.* variables

:class:`PollingRunner` (run by the TriggerService) keeps, per trigger, the time of the last poll in
KV_triggers (``poll.<ns>.<flow>.<trigger>``). A trigger is due ``interval`` after its last poll (at
once the first time). The runner claims the poll with a compare-and-set write of the new time
before polling, so a restarted scheduler does not poll in a burst and two schedulers never poll
the same trigger twice for one interval; the execution id derives from the claimed time. The
clock is injectable (``now``), as for schedules.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

from engine.core.dates import parse as parse_date
from engine.core.durations import parse_duration
from engine.core.errors import EngineError
from engine.core.model import Flow, Trigger
from engine.core.tree import make_id
from engine.logs import get_logger
from eventstore.triggerstate import TriggerKV, key
from triggers.plugins import PluginTable
from triggers.schedule import utc_key

log = get_logger("triggers.polling")

POLL_TIMEOUT = 120.0  # one poll may not take longer than this


class PollingError(EngineError):
    """A polling trigger that cannot poll as configured."""


@dataclass
class PollContext:
    """What a poll may use: the flow's variables and the expression engine."""

    flow: Flow
    trigger: Trigger
    now: datetime
    expressions: Any

    @property
    def where(self) -> str:
        return f"trigger '{self.trigger.id}' of flow {self.flow.namespace}.{self.flow.id}"

    def variables(self) -> dict[str, Any]:
        flow = self.flow
        return {"flow": {"id": flow.id, "namespace": flow.namespace, "revision": flow.revision}}

    async def render(self, value: Any, extra: dict[str, Any] | None = None) -> Any:
        return await self.expressions.render_value_async(value, {**self.variables(), **(extra or {})})


class PollingTrigger(abc.ABC):
    """One polling trigger of one flow revision."""

    types: ClassVar[tuple[str, ...]] = ()
    default_interval: ClassVar[float] = 60.0

    def __init__(self, flow: Flow, trigger: Trigger) -> None:
        self.flow = flow
        self.trigger = trigger

    def interval(self) -> float:
        """Seconds between two polls (``interval``, a Kestra duration)."""
        raw = self.trigger.props.get("interval")
        if raw is None:
            return self.default_interval
        try:
            seconds = parse_duration(raw)
        except ValueError as exc:
            raise PollingError(f"interval: {exc}") from None
        if seconds <= 0:
            raise PollingError(f"interval {raw!r} must be positive")
        return seconds

    @abc.abstractmethod
    async def poll(self, ctx: PollContext) -> dict[str, Any] | None:
        """Poll once: the ``trigger.*`` variables of the execution to start, or None."""


_PLUGINS: PluginTable[type[PollingTrigger]] = PluginTable(PollingTrigger, ("triggers.http",))
register_polling = _PLUGINS.register  # class decorator

polling_trigger = _PLUGINS.get
polling_types = _PLUGINS.types


def poll_key(namespace: str, flow_id: str, trigger_id: str) -> str:
    return key("poll", namespace, flow_id, trigger_id)


def poll_execution_id(flow: Flow, trigger: Trigger, moment: datetime) -> str:
    return make_id("polling", flow.namespace, flow.id, trigger.id, utc_key(moment))


CreateFn = Callable[[Flow, Trigger, str, dict[str, Any]], Awaitable[str]]


@dataclass(eq=False)
class PollingRunner:
    """Polls the due triggers; ``tick(wanted)`` returns the seconds until the next one is due."""

    kv: TriggerKV
    expressions: Any
    now: Callable[[], datetime]
    create: CreateFn
    report: Callable[[str, Flow, Trigger, str], None]
    inflight: dict[tuple[str, str, str], asyncio.Task[None]] = field(default_factory=dict, init=False)
    polls: int = field(default=0, init=False)  # polls started (tests, metrics)

    async def tick(self, wanted: list[tuple[Flow, Trigger]]) -> float:
        soonest = 3600.0
        for flow, trigger in wanted:
            ident = (flow.namespace, flow.id, trigger.id)
            if ident in self.inflight:
                continue
            cls = polling_trigger(trigger.type)
            if cls is None:
                continue
            instance = cls(flow, trigger)
            try:
                interval = instance.interval()
            except PollingError as exc:
                self.report(f"{ident}:{exc}", flow, trigger, str(exc))
                continue
            k = poll_key(*ident)
            state, seq = await self.kv.get(k)
            state = state or {}
            if state.get("disabled"):
                continue
            now = self.now()
            last = state.get("last_poll")
            if last:
                due = parse_date(last) + timedelta(seconds=interval)
                if now < due:
                    soonest = min(soonest, (due - now).total_seconds())
                    continue
            if await self.kv.put(k, {**state, "last_poll": utc_key(now)}, seq) is None:
                continue  # another scheduler claimed this poll
            soonest = min(soonest, interval)
            self.polls += 1
            task = asyncio.create_task(self._poll(instance, now))
            self.inflight[ident] = task
            task.add_done_callback(lambda _t, ident=ident: self.inflight.pop(ident, None))  # type: ignore[misc]
        return soonest

    async def _poll(self, instance: PollingTrigger, now: datetime) -> None:
        flow, trigger = instance.flow, instance.trigger
        ctx = PollContext(flow, trigger, now, self.expressions)
        try:
            async with asyncio.timeout(POLL_TIMEOUT):
                variables = await instance.poll(ctx)
            if variables is None:
                return
            await self.create(flow, trigger, poll_execution_id(flow, trigger, now), variables)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}" if not isinstance(exc, EngineError) else str(exc)
            self.report(f"{ctx.where}:{message}", flow, trigger, message)

    async def stop(self) -> None:
        tasks = list(self.inflight.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
