"""Every port of ``engine.core.ports`` in memory: the real executor and worker run on it, no server.

The semantics are the JetStream store's (``eventstore.store.Store``): an append names the
sequence it expects to be last and is refused (``ConcurrencyConflict``) when another came first;
a message id is stored once (within ``dedup_window_s``); work and inputs not acknowledged are
delivered again; leases, memberships, heartbeats and KV keys expire by ``clock`` (injected, in
seconds: a test moves it to expire them). Sequences are one counter for everything, as one
stream's would be.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from engine.core import events as ev
from engine.core.errors import ConcurrencyConflict
from engine.core.ports import Delivery, FlowRevision, InputDelivery, LogLine, StoredStep, Subscription
from engine.testing.queues import Callbacks, Message, Pump, Queue
from eventstore import subjects as S
from eventstore.storage import MemoryStorage

ACK_WAIT_S = 30.0  # the JetStream consumers' ack_wait
DEDUP_WINDOW_S = 120.0  # the streams' duplicate_window


class MemoryStore:
    """The engine's store in memory (``ExecutorStore`` and ``WorkerStore``), plus ``kv`` and ``files``."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        replicas: int = 1,
        ack_wait_s: float = ACK_WAIT_S,
        dedup_window_s: float = DEDUP_WINDOW_S,
    ) -> None:
        self.clock = clock
        self._replicas = replicas
        self.ack_wait_s = ack_wait_s
        self.dedup_window_s = dedup_window_s
        self._seq = itertools.count(1)
        self._seen: dict[str, float] = {}  # message id -> until when a copy is a duplicate
        self.history: dict[str, list[StoredStep]] = {}
        self.snapshots: dict[str, bytes] = {}
        self._inputs = {p: Queue() for p in range(S.PARTITIONS)}
        self._work: dict[str, Queue] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._events: dict[str, Callbacks] = {}
        self._kills = Callbacks()
        self._answering: dict[str, int] = {}  # executor id -> its ping subscriptions
        self._leases: dict[int, tuple[str, int, float]] = {}  # partition -> (owner, revision, until)
        self._members: dict[str, float] = {}
        self._heartbeats: dict[str, tuple[dict[str, Any], float]] = {}
        self._running: dict[tuple[str, str, str], int] = {}
        self.held: set[str] = set()  # executions whose work may be in a process's memory
        self.logs: dict[str, list[LogLine]] = {}
        self._flows: dict[tuple[str, str], list[FlowRevision]] = {}
        self._slots: dict[tuple[str, str], dict[str, Any]] = {}
        self.kv = MemoryKV(clock)
        self.files = MemoryStorage()

    @property
    def replicas(self) -> int:
        return self._replicas

    def _first(self, msg_id: str | None) -> bool:
        """Is this the first copy of ``msg_id`` within the duplicate window? (None: always.)"""
        if msg_id is None:
            return True
        now = self.clock()
        if self._seen.get(msg_id, -1.0) > now:
            return False
        self._seen[msg_id] = now + self.dedup_window_s
        return True

    # ---- the event log and snapshots --------------------------------------------------------

    async def append(self, execution_id: str, events: list[ev.Event], expected_last_seq: int) -> int:
        steps = self.history.setdefault(execution_id, [])
        last = steps[-1][0] if steps else 0
        if last != expected_last_seq:  # checked before the message id, as JetStream does
            raise ConcurrencyConflict(
                f"execution {execution_id}: another writer appended after seq {expected_last_seq}"
            )
        seq = next(self._seq)
        steps.append((seq, list(events)))
        callbacks = self._events.get(execution_id)
        if callbacks is not None:
            callbacks.fire(list(events))
        return seq

    async def last_seq(self, execution_id: str, leader: bool = False) -> int:
        steps = self.history.get(execution_id)
        return steps[-1][0] if steps else 0

    async def read_after(self, execution_id: str, after: int) -> list[StoredStep]:
        return [step for step in self.history.get(execution_id, ()) if step[0] > after]

    async def read_from_leader(self, execution_id: str, after: int, upto: int) -> list[StoredStep]:
        return [step for step in self.history.get(execution_id, ()) if after < step[0] <= upto]

    async def read_many(self, after: Mapping[str, int]) -> dict[str, list[StoredStep]]:
        # Through read_after, so that a test store overriding it (a failure, a delay) sees every read.
        return {eid: await self.read_after(eid, seq) for eid, seq in after.items()}

    async def read(self, execution_id: str) -> list[StoredStep]:
        return await self.read_after(execution_id, 0)

    async def watch_events(
        self, execution_id: str, on_events: Callable[[list[ev.Event]], Awaitable[None]]
    ) -> Subscription:
        return self._events.setdefault(execution_id, Callbacks()).listen(on_events)

    async def put_snapshot(self, execution_id: str, data: bytes) -> None:
        self.snapshots[execution_id] = data

    async def get_snapshot(self, execution_id: str) -> bytes | None:
        return self.snapshots.get(execution_id)

    async def get_snapshots(self, execution_ids: Sequence[str]) -> dict[str, bytes]:
        found = {eid: await self.get_snapshot(eid) for eid in execution_ids}
        return {eid: data for eid, data in found.items() if data is not None}

    async def drop_snapshot(self, execution_id: str) -> None:
        self.snapshots.pop(execution_id, None)

    # ---- inputs, work, kills --------------------------------------------------------------

    async def send_input(self, execution_id: str, item: ev.Input, msg_id: str | None = None) -> None:
        if self._first(msg_id):
            self._input(execution_id, ev.encode_input(item), msg_id)

    def check_size(self, payload: bytes, headers: dict[str, str] | None) -> None:
        return None  # no server limit in memory

    def _input(self, execution_id: str, data: bytes, msg_id: str | None = None) -> None:
        p = S.partition(execution_id)
        self._inputs[p].add(Message(next(self._seq), data, execution_id, p, msg_id))

    async def pending_input(self, execution_id: str, msg_id: str) -> bytes | None:
        queue = self._inputs[S.partition(execution_id)]
        return next((m.data for m in queue.messages.values() if m.msg_id == msg_id), None)

    async def schedule_input(self, execution_id: str, key: str, at: str, item: ev.Input) -> None:
        timer = f"{execution_id}:timer:{key}"
        if not self._first(timer):
            return
        moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
        delay = max(0.0, (moment - datetime.now(UTC)).total_seconds())
        data = ev.encode_input(item)

        def fire() -> None:
            self._timers.pop(timer, None)
            self._input(execution_id, data)

        self._timers[timer] = asyncio.get_running_loop().call_later(delay, fire)

    async def prepare_executor(self) -> None:
        return None  # no consumer of an older engine to remove

    async def consume_inputs(
        self, partition: int, on_input: Callable[[InputDelivery], Awaitable[None]]
    ) -> Subscription:
        return Pump(self._inputs[partition].consume(self.ack_wait_s, 20_000), on_input)

    async def inputs_consumed(self, partition: int, subscription: Subscription) -> bool:
        consumer = self._inputs[partition].consumer
        return consumer is not None and consumer is getattr(subscription, "consumer", None)

    async def dispatch(self, execution_id: str, group: str | None, payload: bytes, msg_id: str) -> None:
        if self._first(msg_id):
            queue = self._work_queue(group or "default")
            queue.add(Message(next(self._seq), payload, execution_id, S.partition(execution_id)))

    def _work_queue(self, group: str) -> Queue:
        queue = self._work.get(group)
        if queue is None:
            queue = self._work[group] = Queue()
        return queue

    async def consume_work(
        self, group: str, on_work: Callable[[Delivery], Awaitable[None]], max_pending: int
    ) -> list[Subscription]:
        """Subscribers of a group share its one durable consumer, as a queue group does."""
        queue = self._work_queue(group)
        consumer = queue.consumer or queue.consume(self.ack_wait_s, max_pending)
        return [Pump(consumer, on_work)]

    async def kill(self, execution_id: str) -> None:
        self._kills.fire(execution_id)

    async def watch_kills(self, on_kill: Callable[[str], Awaitable[None]]) -> Subscription:
        return self._kills.listen(on_kill)

    async def answer_pings(self, executor_id: str) -> Subscription:
        self._answering[executor_id] = self._answering.get(executor_id, 0) + 1
        return _StopAnswering(self._answering, executor_id)

    async def is_alive(self, executor_id: str) -> bool:
        return self._answering.get(executor_id, 0) > 0

    # ---- leases, members, heartbeats --------------------------------------------------------

    async def lease_holder(self, partition: int) -> tuple[str, int]:
        owner, revision, until = self._leases.get(partition, ("", 0, 0.0))
        return (owner, revision) if until > self.clock() else ("", 0)

    async def lease_write(self, partition: int, owner: str, revision: int, ttl_s: float) -> int | None:
        if (await self.lease_holder(partition))[1] != revision:
            return None
        new = next(self._seq)
        self._leases[partition] = (owner, new, self.clock() + max(1, round(ttl_s)))
        return new

    async def announce_member(self, executor_id: str, ttl_s: float) -> None:
        self._members[executor_id] = self.clock() + max(1, round(ttl_s))

    async def leave(self, executor_id: str) -> None:
        self._members.pop(executor_id, None)

    async def members(self) -> list[str]:
        now = self.clock()
        return sorted(m for m, until in self._members.items() if until > now)

    async def heartbeat(self, worker_id: str, info: dict[str, Any], ttl_s: int = S.HEARTBEAT_TTL_S) -> None:
        self._heartbeats[worker_id] = (dict(info), self.clock() + ttl_s)

    async def live_workers(self) -> dict[str, Any]:
        now = self.clock()
        return {w: info for w, (info, until) in self._heartbeats.items() if until > now}

    async def mark_running(self, worker_id: str, execution_id: str, taskrun_id: str, attempt: int) -> None:
        self._running[(worker_id, execution_id, taskrun_id)] = attempt

    async def clear_running(self, worker_id: str, execution_id: str, taskrun_id: str) -> None:
        self._running.pop((worker_id, execution_id, taskrun_id), None)

    async def running_attempts(self) -> list[tuple[str, str, str, int]]:
        return [(w, e, t, attempt) for (w, e, t), attempt in self._running.items()]

    async def running_attempt(self, worker_id: str, execution_id: str, taskrun_id: str) -> int | None:
        return self._running.get((worker_id, execution_id, taskrun_id))

    async def mark_held(self, execution_id: str) -> None:
        self.held.add(execution_id)

    def clear_held(self, execution_id: str) -> None:
        self.held.discard(execution_id)

    async def held_executions(self, partitions: Collection[int]) -> list[tuple[str, int]]:
        return sorted((eid, S.partition(eid)) for eid in self.held if S.partition(eid) in partitions)

    # ---- logs, flows, slots -----------------------------------------------------------------

    def post_log(self, execution_id: str, line: LogLine) -> None:
        self.logs.setdefault(execution_id, []).append(line)

    async def store_log(self, execution_id: str, line: LogLine, msg_id: str) -> None:
        if self._first(msg_id):
            self.post_log(execution_id, line)

    async def store_lines(self, execution_id: str, lines: Sequence[LogLine], key: str) -> None:
        for i, line in enumerate(lines):
            await self.store_log(execution_id, line, f"{key}:{i}")

    async def read_logs(self, execution_id: str) -> list[LogLine]:
        inline = [line for _, events in await self.read(execution_id) for line in ev.lines_in(events)]
        return ev.in_order(list(self.logs.get(execution_id, ())), inline)

    async def put_flow(self, namespace: str, flow_id: str, source: str) -> FlowRevision:
        revisions = self._flows.setdefault((namespace, flow_id), [])
        latest = revisions[-1] if revisions else None
        if latest is not None and latest.source == source and not latest.deleted:
            return latest
        rev = FlowRevision(namespace, flow_id, latest.revision + 1 if latest else 1, source, next(self._seq))
        revisions.append(rev)
        return rev

    async def delete_flow(self, namespace: str, flow_id: str) -> bool:
        revisions = self._flows.get((namespace, flow_id)) or []
        if not revisions or revisions[-1].deleted:
            return False
        last = revisions[-1]
        deleted = FlowRevision(namespace, flow_id, last.revision + 1, "", next(self._seq), deleted=True)
        revisions.append(deleted)
        return True

    async def get_flow(
        self, namespace: str, flow_id: str, revision: int | None = None
    ) -> FlowRevision | None:
        revisions = self._flows.get((namespace, flow_id)) or []
        if revision is None:
            return revisions[-1] if revisions and not revisions[-1].deleted else None
        return next((rev for rev in revisions if rev.revision == revision), None)

    async def update_slots(self, namespace: str, flow_id: str, change: Any) -> Any:
        record = self._slots.get((namespace, flow_id), {})
        new, result = change({"running": [], "queued": [], **record})
        if new is not None:  # no await between the read and the write: nobody can come in between
            self._slots[(namespace, flow_id)] = new
        return result


class _StopAnswering:
    def __init__(self, answering: dict[str, int], executor_id: str) -> None:
        self._answering, self._id = answering, executor_id

    async def unsubscribe(self) -> None:
        self._answering[self._id] = max(0, self._answering.get(self._id, 0) - 1)


class MemoryKV:
    """The ``kv()`` store in memory (``plugins.api.KVStore``), keys expiring by the injected clock."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.values: dict[tuple[str, str], tuple[Any, float | None]] = {}

    async def get(self, namespace: str, key: str) -> Any | None:
        value, until = self.values.get((namespace, key), (None, None))
        return None if until is not None and until <= self.clock() else value

    async def set(self, namespace: str, key: str, value: Any, ttl_s: float | None = None) -> None:
        until = None if ttl_s is None else self.clock() + max(1, round(ttl_s))
        self.values[(namespace, key)] = (value, until)

    async def delete(self, namespace: str, key: str) -> bool:
        existed = await self.get(namespace, key) is not None
        self.values.pop((namespace, key), None)
        return existed

    async def keys(self, namespace: str, prefix: str = "") -> list[str]:
        names = [k for ns, k in self.values if ns == namespace and k.startswith(prefix)]
        return sorted([k for k in names if await self.get(namespace, k) is not None])
