"""The trigger role: Flow triggers (on other executions' state changes) and Schedule triggers.

``TriggerService(runtime)`` runs as an asyncio task next to the executor and the worker::

    triggers = TriggerService(rt)
    roles.append(asyncio.create_task(triggers.run()))

- Deployed flows with triggers are indexed in memory: a snapshot of FLOWS at start, then an
  ordered consumer on FLOWS keeps the index current (new revisions, deletions).
- Flow triggers: a durable consumer per EVENTS shard stream (queue group ``triggers``: several
  services share the work) reads every execution step; a state change that some Flow trigger
  listens to is folded (history up to that step) and evaluated; the message is acked once the
  creates are sent. Creation ids are deterministic, so a redelivery starts nothing twice. Made
  only once a Flow trigger or a ``stopAfter`` is deployed (until then no step is delivered); steps
  stored before that moment, which an earlier service's consumer may hold, are acked unread.
- Schedule triggers: every ``poll_interval`` (and at each due slot) ``tick()`` creates the
  executions of the slots that came due. The cursor (last slot handled) is in KV_triggers,
  written with compare-and-set; slot ids are deterministic, so two services or a restart create
  each slot once. When a service first sees a trigger whose cursor is behind, the missed slots
  follow ``recoverMissedSchedules`` (ALL: every one, LAST: the latest, NONE: none).
- ``stopAfter``: an execution started by a Schedule or polling trigger that ends in one of these
  states disables the trigger (in KV; ``engine triggers enable`` turns it back on).
- Realtime triggers (``triggers.realtime``): a listener per enabled trigger, reconciled with the
  flow index whenever it changes and every ``poll_interval`` (so a trigger disabled in KV stops).
- Polling triggers (``triggers.polling``): each polled when its ``interval`` since the last poll
  (kept in KV) has passed.
- Backfills (``triggers.backfill``): every RUNNING backfill advances every ``poll_interval``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from engine.core import events as ev
from engine.core.context import variables as execution_variables
from engine.core.dates import parse as parse_date
from engine.core.errors import EngineError, FlowValidationError
from engine.core.execution import Execution, evolve
from engine.core.model import Flow, Trigger
from engine.core.tree import index_tasks
from engine.expressions import env_vars
from engine.loader.loader import load_flow_revision
from engine.logs import get_logger
from eventstore import subjects as S
from eventstore.store import FlowRevision
from eventstore.triggerfeeds import StepDelivery, Subscriptions, consume_steps, first_step, follow_flows
from eventstore.triggerstate import TriggerKV, schedule_key, set_disabled
from triggers import backfill as B
from triggers import conditions as C
from triggers.flow import FlowTriggers, Upstream, listened_states
from triggers.plan import Plan, TriggerRuntime, event_plan, flow_variables, slot_plan, start_plan
from triggers.polling import PollingRunner, polling_types
from triggers.realtime import RealtimeEvent, RealtimeManager, realtime_execution_id, realtime_types
from triggers.schedule import (
    FLOW_TYPES,
    SCHEDULE_TYPES,
    ScheduleError,
    ScheduleSpec,
    iso,
    schedule_spec,
    utc_key,
)

log = get_logger("triggers")

GRACE = timedelta(seconds=1)  # a slot younger than this at start-up is on time, not missed
MAX_SLOTS_PER_TICK = 10_000

T = TypeVar("T")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Meta:
    namespace: str
    flow_id: str


@dataclass(frozen=True)
class _StepListeners:
    flow_triggers: list[tuple[Flow, Trigger]]  # enabled Flow triggers of enabled flows
    stoppers: dict[tuple[str, str], list[tuple[Flow, Trigger]]]  # stopAfter triggers by (namespace, flow)


class TriggerService:
    """The trigger role. ``run()`` until cancelled, or ``start()`` / ``stop()``."""

    def __init__(
        self,
        runtime: TriggerRuntime,
        *,
        now: Callable[[], datetime] | None = None,
        poll_interval: float = 1.0,
        durable: str = "triggers",
        inactive_threshold: float | None = None,
        schedules: bool = True,
        flow_triggers: bool = True,
        namespace: str | None = None,
        realtime: bool = True,
        polling: bool = True,
        backfills: bool = True,
    ) -> None:
        self.rt = runtime
        self.namespace = namespace  # only flows in this namespace and below (None: every flow)
        self.store = runtime.store
        self.expressions = runtime.expressions
        self.kv = TriggerKV(self.store)
        self.now = now or utc_now
        self.poll_interval = poll_interval
        self.durable = durable
        self.inactive_threshold = inactive_threshold
        self.schedules_enabled = schedules
        self.flow_triggers_enabled = flow_triggers
        self.flow_triggers = FlowTriggers(self.kv, self.expressions, self.now)
        self.realtime_enabled = realtime
        self.polling_enabled = polling
        self.backfills_enabled = backfills
        self.realtime = RealtimeManager(self._render_props, self._realtime_create)
        self.polling = PollingRunner(self.kv, self.expressions, self.now, self._polling_create, self._report)
        self._realtime_wake = asyncio.Event()
        self._polling_wake = asyncio.Event()
        self.index: dict[tuple[str, str], Flow] = {}  # deployed flows that have triggers
        self._specs: dict[tuple[str, str, int, str], ScheduleSpec | ScheduleError] = {}
        self._recovered: set[tuple[str, str, str]] = set()
        self._meta: OrderedDict[str, _Meta] = OrderedDict()
        self._step_listeners: _StepListeners | None = None  # derived from the index, rebuilt when it changes
        # Steps are subscribed to only once something listens to them (a Flow trigger, stopAfter):
        # set while waiting for that; then the moment it first did (steps before it are not read).
        self._steps_wake: asyncio.Event | None = None
        self._steps_since: datetime | None = None
        self.steps_subscribed = False
        self._subs = Subscriptions()
        self._tasks: list[asyncio.Task[None]] = []
        self._tick_lock = asyncio.Lock()
        self._stopping = False
        self._wake = asyncio.Event()
        self._reported: set[str] = set()
        self.created: list[str] = []  # execution ids this service sent creates for (tests, metrics)

    # ---- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        await self.kv.setup()
        await self._watch_flows()
        if self.flow_triggers_enabled:
            if self._steps_listened():
                await self._subscribe_events()
            else:
                self._steps_wake = asyncio.Event()
                self._tasks.append(asyncio.create_task(self._subscribe_when_listened(self._steps_wake)))
        if self.schedules_enabled:
            self._tasks.append(asyncio.create_task(self._schedule_loop()))
        if self.realtime_enabled:
            loop = self._every(
                self._reconcile_realtime, "triggers.realtime_reconcile_failed", self._realtime_wake
            )
            self._tasks.append(asyncio.create_task(loop))
        if self.polling_enabled:
            loop = self._every(self._poll, "triggers.polling_failed", self._polling_wake)
            self._tasks.append(asyncio.create_task(loop))
        if self.backfills_enabled:
            loop = self._every(self._advance_backfills, "triggers.backfill_failed", asyncio.Event())
            self._tasks.append(asyncio.create_task(loop))

    async def stop(self) -> None:
        self._stopping = True
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            # a client call may turn our cancellation into its own error: the loops also check _stopping
            await asyncio.wait(tasks, timeout=5)
        await self.realtime.stop()
        await self.polling.stop()
        await self._subs.close()

    async def run(self) -> None:
        await self.start()
        try:
            await asyncio.gather(*self._tasks)
            await asyncio.Event().wait()  # nothing to do but consume (flow triggers only)
        finally:
            await self.stop()

    # ---- the flow index ------------------------------------------------------------------------

    def _index_flow(self, namespace: str, flow_id: str, revision: int, source: str, deleted: bool) -> None:
        if self.namespace and not (namespace == self.namespace or namespace.startswith(self.namespace + ".")):
            return
        current = self.index.get((namespace, flow_id))
        if current is not None and current.revision > revision:
            return
        self._step_listeners = None
        if deleted:
            self.index.pop((namespace, flow_id), None)
            return
        try:
            flow = load_flow_revision(source, revision)
        except (FlowValidationError, EngineError) as exc:
            log.warning("triggers.flow_invalid", flow=f"{namespace}.{flow_id}", error=str(exc)[:200])
            self.index.pop((namespace, flow_id), None)
            return
        if flow.triggers:
            self.index[(namespace, flow_id)] = flow
        else:
            self.index.pop((namespace, flow_id), None)
        self._wake.set()
        self._realtime_wake.set()
        self._polling_wake.set()
        if self._steps_wake is not None and self._steps_since is None and self._steps_listened():
            self._steps_since = datetime.now(UTC)  # before the subscription: nothing after is missed
            self._steps_wake.set()

    async def _watch_flows(self) -> None:
        def on_revision(rev: FlowRevision) -> None:
            self._index_flow(rev.namespace, rev.flow_id, rev.revision, rev.source, rev.deleted)

        await follow_flows(self.store, self._subs, on_revision)

    def triggers_of(self, types: frozenset[str]) -> list[tuple[Flow, Trigger]]:
        out = []
        for flow in self.index.values():
            if flow.disabled:
                continue
            for trigger in flow.triggers:
                if trigger.type in types and not trigger.disabled:
                    out.append((flow, trigger))
        return out

    # ---- flow triggers -------------------------------------------------------------------------

    def _steps_listened(self) -> bool:
        listeners = self.step_listeners()
        return bool(listeners.flow_triggers or listeners.stoppers)

    async def _subscribe_when_listened(self, wake: asyncio.Event) -> None:
        """Nothing listened to execution steps when the service started: they are not even delivered
        (two per execution, and the server's work for a durable consumer: about a tenth of the CPU
        per execution of bench/realtime.py, engine and server) until a Flow trigger or a stopAfter
        is deployed. Then the consumer starts at that moment; one left by an earlier run goes on
        from where it stopped, and what it holds from before that moment is acknowledged unread,
        as it would have been, delivered while nothing listened."""
        await wake.wait()
        while not self._stopping:
            try:
                await self._subscribe_events(self._steps_since)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                if self._stopping:
                    return
                log.exception("triggers.subscribe_failed")
                await asyncio.sleep(1.0)

    async def _subscribe_events(self, since: datetime | None = None) -> None:
        queues: list[asyncio.Queue[StepDelivery]] = [asyncio.Queue() for _ in range(S.SHARDS)]

        async def on_step(shard: int, step: StepDelivery) -> None:
            if since is not None and step.stored_at < since:
                with contextlib.suppress(Exception):
                    await step.ack()  # stored while nothing listened
                return
            if not self._steps_listened():
                # Nothing listens to steps: acknowledged here, not queued for ``handle`` (which would
                # do nothing with it either). Two per execution, in the process that runs it.
                with contextlib.suppress(Exception):
                    await step.ack()
                return
            queues[shard].put_nowait(step)

        await consume_steps(self.store, self._subs, self.durable, on_step, self.inactive_threshold, since)
        self._tasks += [asyncio.create_task(self._consume(queue)) for queue in queues]
        self.steps_subscribed = True

    async def _consume(self, queue: asyncio.Queue[StepDelivery]) -> None:
        while not self._stopping:
            step = await queue.get()
            try:
                await self.handle(step.execution_id, step.seq, step.data)
            except asyncio.CancelledError:
                raise
            except Exception:
                if self._stopping:
                    return  # not acked: redelivered to whoever consumes next
                log.exception("triggers.event_failed", execution=step.execution_id, seq=step.seq)
                with contextlib.suppress(Exception):
                    await step.nak(delay=1)
                continue
            with contextlib.suppress(Exception):
                await step.ack()

    async def _meta_of(self, execution_id: str, events: list[ev.Event]) -> _Meta | None:
        for event in events:
            if isinstance(event, ev.ExecutionCreated):
                meta = _Meta(event.namespace, event.flow_id)
                self._meta[execution_id] = meta
                if len(self._meta) > 100_000:
                    self._meta.popitem(last=False)
                return meta
        cached = self._meta.get(execution_id)
        if cached is not None:
            return cached
        for event in await first_step(self.store, execution_id):
            if isinstance(event, ev.ExecutionCreated):
                meta = _Meta(event.namespace, event.flow_id)
                self._meta[execution_id] = meta
                return meta
        return None

    def step_listeners(self) -> _StepListeners:
        """What execution steps matter to: asked at every step of every execution, so computed once
        per change of the flow index rather than by scanning every deployed flow each time."""
        if self._step_listeners is None:
            stoppable = SCHEDULE_TYPES | polling_types()
            stoppers: dict[tuple[str, str], list[tuple[Flow, Trigger]]] = {}
            for key, flow in self.index.items():
                found = [(flow, t) for t in flow.triggers if t.type in stoppable and t.props.get("stopAfter")]
                if found:
                    stoppers[key] = found
            self._step_listeners = _StepListeners(self.triggers_of(FLOW_TYPES), stoppers)
        return self._step_listeners

    async def handle(self, execution_id: str, seq: int, data: bytes) -> list[str]:
        """Process one execution step (stream sequence ``seq``); returns the execution ids created."""
        listeners = self.step_listeners()
        if not listeners.flow_triggers and not listeners.stoppers:
            # Nothing listens to steps (a realtime-only scheduler, say): not even decoded. The
            # namespace and flow of an execution are read back from its first step if needed later.
            return []
        events = ev.decode(data)
        changes = [
            e.state for e in events if isinstance(e, ev.ExecutionStateChanged) and e.state != "CREATED"
        ]
        meta = await self._meta_of(execution_id, events)
        if not changes or meta is None:
            return []
        candidates = [
            (flow, trigger)
            for flow, trigger in listeners.flow_triggers
            if (flow.namespace, flow.id) != (meta.namespace, meta.flow_id)
            and any(s in listened_states(trigger) for s in changes)
        ]
        stoppers = listeners.stoppers.get((meta.namespace, meta.flow_id), [])
        if not candidates and not stoppers:
            return []
        folded = await self._fold(execution_id, seq)
        if folded is None:
            return []
        state, transitions = folded
        created: list[str] = []
        if candidates:
            variables = await self._upstream_variables(state)
            for to_state, occurrence in transitions:
                up = Upstream(execution=state, state=to_state, occurrence=occurrence, variables=variables)
                for flow, trigger in candidates:
                    try:
                        plan = await self.flow_triggers.evaluate(flow, trigger, up)
                    except C.ConditionError as exc:
                        self._report(
                            f"{flow.namespace}.{flow.id}:{trigger.id}:{exc}", flow, trigger, str(exc)
                        )
                        continue
                    if plan is not None:
                        created.append(await self._create(plan))
        for to_state, _ in transitions:
            for flow, trigger in stoppers:
                await self._maybe_stop(flow, trigger, state, to_state)
        return created

    async def _fold(self, execution_id: str, seq: int) -> tuple[Execution, list[tuple[str, int]]] | None:
        """The execution right after step ``seq``, and the state changes that step made (with occurrence)."""
        state: Execution | None = None
        transitions: list[tuple[str, int]] = []
        for step_seq, events in await self.store.read(execution_id):
            if step_seq > seq:
                break
            for event in events:
                before = len(state.histories) if state is not None else 0
                state = evolve(state, event)
                if (
                    step_seq == seq
                    and state is not None
                    and isinstance(event, ev.ExecutionStateChanged)
                    and len(state.histories) > before
                    and event.state != "CREATED"
                ):
                    occurrence = sum(1 for h in state.histories if h.state == event.state)
                    transitions.append((event.state, occurrence))
        if state is None:
            return None
        state.seq = seq
        return state, transitions

    async def _upstream_variables(self, state: Execution) -> dict[str, Any]:
        try:
            flow = await self.rt.flows.get(state.namespace, state.flow_id, state.flow_revision)
        except EngineError:
            return {
                "execution": {"id": state.id, "state": state.state},
                "inputs": state.inputs,
                "outputs": {},
                "labels": state.labels,
            }
        return execution_variables(state, flow, index_tasks(flow), envs=env_vars())

    async def _create(self, plan: Plan) -> str:
        eid = await start_plan(self.rt, plan)
        self.created.append(eid)
        log.info(
            "triggers.fired",
            flow=f"{plan.flow.namespace}.{plan.flow.id}",
            trigger=plan.trigger.get("id"),
            execution=eid,
        )
        return eid

    def _report(self, once: str, flow: Flow, trigger: Trigger, error: str) -> None:
        if once in self._reported:
            return
        self._reported.add(once)
        log.warning(
            "triggers.trigger_error", flow=f"{flow.namespace}.{flow.id}", trigger=trigger.id, error=error
        )

    async def _maybe_stop(self, flow: Flow, trigger: Trigger, state: Execution, to_state: str) -> None:
        if not state.trigger or state.trigger.get("id") != trigger.id:
            return
        if to_state not in [str(s) for s in trigger.props.get("stopAfter") or []]:
            return
        await set_disabled(self.kv, flow.namespace, flow.id, trigger.id, True, reason=f"stopAfter {to_state}")
        log.info("triggers.stopped", flow=f"{flow.namespace}.{flow.id}", trigger=trigger.id, state=to_state)

    # ---- realtime and polling triggers ---------------------------------------------------------

    async def enabled_triggers(self, types: frozenset[str]) -> list[tuple[Flow, Trigger]]:
        """The triggers of these types that are neither disabled in the flow nor in KV."""
        out = []
        for flow, trigger in self.triggers_of(types):
            state, _ = await self.kv.get(schedule_key(flow.namespace, flow.id, trigger.id))
            if not (state or {}).get("disabled"):
                out.append((flow, trigger))
        return out

    async def _render_props(self, flow: Flow, props: dict[str, Any]) -> dict[str, Any]:
        rendered: dict[str, Any] = await self.expressions.render_value_async(
            props, {"flow": flow_variables(flow)}
        )
        return rendered

    async def _realtime_create(self, flow: Flow, trigger: Trigger, event: RealtimeEvent) -> str:
        eid = realtime_execution_id(flow, trigger, event.key)
        plan = event_plan(flow, trigger, eid, event.variables, self.expressions)
        # A keyless event's id is random (a redelivery of it could not be recognised anyway); a keyed
        # one's is the same for a redelivery of the event.
        return await start_plan(self.rt, plan, fresh=not event.key, keyed=bool(event.key))

    async def _polling_create(
        self, flow: Flow, trigger: Trigger, execution_id: str, variables: dict[str, Any]
    ) -> str:
        return await self._create(event_plan(flow, trigger, execution_id, variables, self.expressions))

    async def _attempt(self, step: Callable[[], Awaitable[T]], failed: str) -> T | None:
        """``step()``; an error is logged and gives None (said nothing once the service is stopping)."""
        try:
            return await step()
        except asyncio.CancelledError:
            raise
        except Exception:
            if not self._stopping:
                log.exception(failed)
            return None

    async def _every(self, step: Callable[[], Awaitable[float]], failed: str, wake: asyncio.Event) -> None:
        """``step()`` again after the delay it returns (at most ``poll_interval``), or as soon as ``wake``."""
        while not self._stopping:
            wake.clear()
            delay = await self._attempt(step, failed)
            if self._stopping:
                return
            if delay is None:
                delay = self.poll_interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=max(0.01, min(delay, self.poll_interval)))

    async def _reconcile_realtime(self) -> float:
        await self.realtime.reconcile(await self.enabled_triggers(realtime_types()))
        return self.poll_interval

    async def _poll(self) -> float:
        return await self.polling.tick(await self.enabled_triggers(polling_types()))

    async def _advance_backfills(self) -> float:
        await self.advance_backfills()
        return self.poll_interval

    async def advance_backfills(self) -> list[str]:
        """One step of every RUNNING backfill (of this service's namespace); returns the ids created."""
        created: list[str] = []
        for k in await self.kv.keys("backfill."):
            state, _ = await self.kv.get(k)
            if not state or state.get("status") != B.RUNNING:
                continue
            ns = str(state.get("namespace", ""))
            if self.namespace and not (ns == self.namespace or ns.startswith(self.namespace + ".")):
                continue
            _, ids = await B.advance_backfill(self.rt, self.kv, k)
            created += ids
        return created

    # ---- schedules -----------------------------------------------------------------------------

    def spec(self, flow: Flow, trigger: Trigger) -> ScheduleSpec | None:
        k = (flow.namespace, flow.id, flow.revision, trigger.id)
        spec = self._specs.get(k)
        if spec is None:
            try:
                spec = schedule_spec(flow, trigger)
            except ScheduleError as exc:
                spec = exc
            self._specs[k] = spec
        if isinstance(spec, ScheduleError):
            self._report(str(spec), flow, trigger, str(spec))
            return None
        return spec

    async def _schedule_loop(self) -> None:
        while not self._stopping:
            await self._attempt(self.tick, "triggers.tick_failed")
            if self._stopping:
                return
            delay = self.poll_interval
            now = self.now()
            for flow, trigger in self.triggers_of(SCHEDULE_TYPES):
                spec = self.spec(flow, trigger)
                if spec is not None:
                    delay = min(delay, max(0.0, (spec.next_after(now) - now).total_seconds()) + 0.005)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(delay, 0.01))

    async def tick(self) -> list[str]:
        """Create the executions of every slot that came due; returns their ids."""
        async with self._tick_lock:
            now = self.now()
            created: list[str] = []
            active = set()
            for flow, trigger in self.triggers_of(SCHEDULE_TYPES):
                spec = self.spec(flow, trigger)
                if spec is None:
                    continue
                active.add((flow.namespace, flow.id, trigger.id))
                try:
                    created += await self._run_schedule(flow, trigger, spec, now)
                except EngineError as exc:
                    self._report(f"{spec.where}:{exc}", flow, trigger, str(exc))
            self._recovered &= active  # a trigger disabled or removed recovers again when it comes back
            return created

    async def _run_schedule(
        self, flow: Flow, trigger: Trigger, spec: ScheduleSpec, now: datetime
    ) -> list[str]:
        k = schedule_key(flow.namespace, flow.id, trigger.id)
        ident = (flow.namespace, flow.id, trigger.id)
        state, seq = await self.kv.get(k)
        if state is None or "cursor" not in state:
            await self.kv.put(k, {**(state or {}), "cursor": utc_key(now)}, seq)
            self._recovered.add(ident)
            return []
        if state.get("disabled"):
            self._recovered.discard(ident)
            return []
        cursor = parse_date(state["cursor"])
        if ident not in self._recovered:
            self._recovered.add(ident)
            last_missed = spec.previous_before(now - GRACE + timedelta(microseconds=1))
            if last_missed > cursor and spec.recover != "ALL":
                new_cursor = last_missed if spec.recover == "NONE" else spec.previous_before(last_missed)
                if new_cursor > cursor:
                    log.info(
                        "triggers.missed_skipped",
                        trigger=spec.where,
                        policy=spec.recover,
                        upto=iso(new_cursor),
                    )
                    new_seq = await self.kv.put(k, {**state, "cursor": utc_key(new_cursor)}, seq)
                    if new_seq is None:
                        return []  # someone else moved it: next tick
                    cursor, seq = new_cursor, new_seq
        created: list[str] = []
        for slot in spec.slots(cursor, now, limit=MAX_SLOTS_PER_TICK):
            eid = await self.fire_slot(flow, spec, slot)
            if eid is not None:
                created.append(eid)
            state = {**state, "cursor": utc_key(slot), "last_slot": iso(slot), "last_execution": eid}
            new_seq = await self.kv.put(k, state, seq)
            if new_seq is None:
                break  # another scheduler advanced the cursor: it handles what follows
            seq = new_seq
        return created

    async def fire_slot(
        self,
        flow: Flow,
        spec: ScheduleSpec,
        slot: datetime,
        extra_inputs: dict[str, Any] | None = None,
        extra_labels: dict[str, str] | None = None,
    ) -> str | None:
        plan = await slot_plan(self.expressions, flow, spec, slot, extra_inputs, extra_labels)
        if plan is None:
            return None
        return await self._create(plan)
