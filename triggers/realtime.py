"""Realtime triggers: a long-lived listener per deployed trigger, one execution per event.

A realtime source is a plugin: subclass :class:`RealtimeSource`, name the Kestra types it serves,
and register it (``@register_realtime`` in an imported module, or an ``engine.triggers`` entry
point whose target is that module or the class)::

    @register_realtime
    class KafkaRealtime(RealtimeSource):
        types = ("io.kestra.plugin.kafka.RealtimeTrigger",)

        async def start(self) -> None: ...          # connect and subscribe (raise to be retried)
        def events(self) -> AsyncIterator[RealtimeEvent]: ...   # yield until stopped or broken
        async def ack(self, event: RealtimeEvent) -> None: ...  # the execution is created
        async def stop(self) -> None: ...

The :class:`RealtimeListener` owns one source: it renders the trigger's properties (so
``{{ secret('X') }}`` works), starts the source, creates an execution per event (several in flight,
each acked once its creation is acknowledged by the store), and when the source fails it logs one
warning, then retries forever with a capped back-off and logs once more when it is back.

An event with a ``key`` (a stable identity, e.g. a JetStream stream sequence) gets the execution id
``make_id("realtime", namespace, flow, trigger, key)``: a redelivery creates nothing twice (the
executor accepts one ExecutionCreated per id). An event without a key gets a fresh id.

:class:`RealtimeManager` is driven by the TriggerService: ``reconcile(wanted)`` starts a listener
for each enabled realtime trigger of the deployed flows, stops those whose trigger is gone or
disabled, restarts one whose properties changed, and hands a new revision with the same trigger
properties to the running listener without a restart (no gap in a core NATS subscription).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from engine.core.errors import EngineError
from engine.core.model import Flow, Trigger
from engine.core.tree import base62_id, make_id
from engine.logs import get_logger
from triggers.plugins import PluginTable

log = get_logger("triggers.realtime")

# Executions being created at once by one listener. Creations share the executor's inbox with the
# workers' results: with 256 in flight a flood of messages started executions as fast as with 16 but
# ended ten times fewer (bench/realtime.py: 260-300 RUNNING/s, 27-32 ended/s; with 16: 366-496 and
# 366-494), a backlog without bound. 16 keeps the trigger alone above 2,300 creations/s here.
MAX_INFLIGHT = 16
BACKOFF_FIRST = 0.05
BACKOFF_MAX = 2.0


class SourceError(EngineError):
    """A realtime source that cannot start as configured (not retried until the flow changes)."""


@dataclass
class RealtimeEvent:
    """One event of a source: the ``trigger.*`` variables of the execution it starts."""

    variables: dict[str, Any]
    key: str | None = None  # stable identity: the execution id derives from it (None: a fresh id)
    handle: Any = None  # what the source needs to ack it


class RealtimeSource(abc.ABC):
    """A connection to an event source for one trigger. Built with the trigger's rendered properties."""

    types: ClassVar[tuple[str, ...]] = ()

    def __init__(self, props: dict[str, Any], where: str) -> None:
        self.props = props
        self.where = where  # "trigger 'x' of flow ns.id", for messages
        self._on_state: Callable[[str | None], None] = lambda reason: None

    def watch(self, on_state: Callable[[str | None], None]) -> None:
        """The listener's callback: ``down(reason)`` while the source is unreachable, ``None`` when back."""
        self._on_state = on_state

    def down(self, reason: str) -> None:
        self._on_state(reason)

    def up(self) -> None:
        self._on_state(None)

    @abc.abstractmethod
    async def start(self) -> None:
        """Connect and subscribe. Raise SourceError for a configuration that can never work."""

    @abc.abstractmethod
    def events(self) -> AsyncIterator[RealtimeEvent]:
        """The events, as they arrive; ends (or raises) when the source broke and must restart."""

    async def ack(self, event: RealtimeEvent) -> None:  # noqa: B027 - at-most-once sources need none
        """The event's execution is created (durably): the source may forget it."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Release everything (never raises, never hangs)."""


_PLUGINS: PluginTable[type[RealtimeSource]] = PluginTable(RealtimeSource, ("triggers.nats",))
register_realtime = _PLUGINS.register  # class decorator

realtime_source = _PLUGINS.get
realtime_types = _PLUGINS.types


def realtime_execution_id(flow: Flow, trigger: Trigger, key: str | None) -> str:
    """The id of an event's execution: derived from the event's key, fresh when it has none."""
    if not key:
        return base62_id(uuid.uuid4().int)
    return make_id("realtime", flow.namespace, flow.id, trigger.id, key)


CreateFn = Callable[[Flow, Trigger, RealtimeEvent], Awaitable[str | None]]


@dataclass
class ListenerStats:
    received: int = 0  # events received (redeliveries included)
    created: int = 0  # creations acknowledged by the store (a redelivered key counts again)
    failed: int = 0
    restarts: int = 0
    ids: list[str] = field(default_factory=list)  # the last execution ids (bounded)


@dataclass(eq=False)
class RealtimeListener:
    """Runs one source for one trigger until stopped."""

    flow: Flow  # swapped by the manager when a new revision keeps the trigger unchanged
    trigger: Trigger
    source_cls: type[RealtimeSource]
    render: Callable[[Flow, dict[str, Any]], Awaitable[dict[str, Any]]]
    create: CreateFn
    max_inflight: int = MAX_INFLIGHT
    stats: ListenerStats = field(default_factory=ListenerStats, init=False)
    task: asyncio.Task[None] | None = field(default=None, init=False)
    source: RealtimeSource | None = field(default=None, init=False)
    connected: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _outage: str | None = field(default=None, init=False)
    _stopping: bool = field(default=False, init=False)

    @property
    def where(self) -> str:
        return f"trigger '{self.trigger.id}' of flow {self.flow.namespace}.{self.flow.id}"

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"realtime {self.where}")

    async def stop(self) -> None:
        self._stopping = True
        task, self.task = self.task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task}, timeout=5)  # not wait_for: a client may swallow the cancellation
            if task.done() and not task.cancelled():
                task.exception()
        source, self.source = self.source, None
        if source is not None:
            await _bounded(source.stop())

    def _on_state(self, reason: str | None) -> None:
        if reason is None:
            if self._outage is not None:
                log.warning("triggers.realtime_back", trigger=self.where)
            self._outage = None
            self.connected.set()
            return
        self.connected.clear()
        if self._outage is None:  # one warning per outage, however long it lasts
            log.warning("triggers.realtime_unavailable", trigger=self.where, error=reason[:300])
        self._outage = reason

    async def _run(self) -> None:
        delay = BACKOFF_FIRST
        while not self._stopping:
            started = time.monotonic()
            try:
                props = await self.render(self.flow, dict(self.trigger.props))
                source = self.source_cls(props, self.where)
                source.watch(self._on_state)
                self.source = source
                await source.start()
                self._on_state(None)
                await self._consume(source)
                raise ConnectionError("the source ended its event stream")
            except asyncio.CancelledError:
                raise
            except SourceError as exc:
                log.error("triggers.realtime_invalid", trigger=self.where, error=str(exc)[:300])
                return  # waits for a new revision (the manager restarts it then)
            except Exception as exc:
                if self._stopping:
                    return
                self._on_state(f"{type(exc).__name__}: {exc}")
                self.stats.restarts += 1
            broken, self.source = self.source, None
            if broken is not None:
                await _bounded(broken.stop())
            if time.monotonic() - started > 10:
                delay = BACKOFF_FIRST  # it ran a while: a new outage starts with a short wait
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    async def _consume(self, source: RealtimeSource) -> None:
        slots = asyncio.Semaphore(self.max_inflight)
        pending: set[asyncio.Task[None]] = set()
        try:
            async for event in source.events():
                self.stats.received += 1
                await slots.acquire()
                task = asyncio.create_task(self._one(source, event, slots))
                pending.add(task)
                task.add_done_callback(pending.discard)
        finally:
            if pending:  # creations in flight finish (or are abandoned unacked: redelivered later)
                await asyncio.wait(pending, timeout=5)

    async def _one(self, source: RealtimeSource, event: RealtimeEvent, slots: asyncio.Semaphore) -> None:
        try:
            eid = await self.create(self.flow, self.trigger, event)
        except Exception as exc:
            self.stats.failed += 1
            log.warning("triggers.realtime_create_failed", trigger=self.where, error=str(exc)[:300])
            slots.release()
            return  # not acked: a durable source redelivers it
        slots.release()
        if eid is not None:
            self.stats.created += 1
            self.stats.ids.append(eid)
            if len(self.stats.ids) > 10_000:
                del self.stats.ids[:5_000]
        with contextlib.suppress(Exception):
            await source.ack(event)


async def _bounded(coro: Awaitable[Any], timeout: float = 3.0) -> None:
    task = asyncio.ensure_future(coro)
    await asyncio.wait({task}, timeout=timeout)
    if not task.done():
        task.cancel()
    elif not task.cancelled():
        task.exception()


Ident = tuple[str, str, str]  # namespace, flow id, trigger id


class RealtimeManager:
    """The listeners of a TriggerService, kept in line with the deployed flows."""

    def __init__(
        self,
        render: Callable[[Flow, dict[str, Any]], Awaitable[dict[str, Any]]],
        create: CreateFn,
    ) -> None:
        self.render = render
        self.create = create
        self.listeners: dict[Ident, RealtimeListener] = {}
        self._reported: set[str] = set()

    async def reconcile(self, wanted: list[tuple[Flow, Trigger]]) -> None:
        """Start, stop, restart or update listeners so that exactly ``wanted`` run."""
        want: dict[Ident, tuple[Flow, Trigger]] = {}
        for flow, trigger in wanted:
            want[(flow.namespace, flow.id, trigger.id)] = (flow, trigger)
        for ident in [i for i in self.listeners if i not in want]:
            listener = self.listeners.pop(ident)
            await listener.stop()
            log.info("triggers.realtime_stopped", trigger=listener.where)
        for ident, (flow, trigger) in want.items():
            current = self.listeners.get(ident)
            if current is not None:
                if current.trigger == trigger and current.task is not None and not current.task.done():
                    current.flow = flow  # same trigger, new revision: no reconnection
                    continue
                if current.trigger == trigger and current.flow.revision == flow.revision:
                    continue  # ended on a configuration error: waits for a new revision
                await current.stop()
                del self.listeners[ident]
            source_cls = realtime_source(trigger.type)
            if source_cls is None:
                once = f"{ident}:{trigger.type}"
                if once not in self._reported:
                    self._reported.add(once)
                    log.warning("triggers.realtime_unknown_type", trigger=str(ident), type=trigger.type)
                continue
            listener = RealtimeListener(flow, trigger, source_cls, self.render, self.create)
            self.listeners[ident] = listener
            listener.start()
            log.info("triggers.realtime_started", trigger=listener.where)

    async def stop(self) -> None:
        listeners, self.listeners = list(self.listeners.values()), {}
        await asyncio.gather(*(listener.stop() for listener in listeners))
