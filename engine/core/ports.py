"""What the core and the roles need from the outside, as typed protocols (no implementation here).

``Templates`` is the expression language bound to one step of the decider: everything a
template may ask for that is not in the execution (``now()``, ``uuid()``, ``randomInt()``,
``envs``, ``secret()``) is derived from that step (its time and a seed made of the execution
id and the step's stream sequence) or fixed for the process, so the same history always
decides the same thing.

The other protocols are the walls between the executor or the worker and the store:
``eventstore`` implements them on NATS JetStream, ``engine.testing`` in memory. What they
promise (the tests of both implementations hold them to it):

- an execution's history is a list of steps, each a stream sequence and its events; an append
  names the sequence it expects to be the last one and is refused (``ConcurrencyConflict``)
  when another writer came first, never merged;
- a publish with a message id is stored once, however often it is sent again;
- a delivered message that is neither acknowledged nor terminated is delivered again: at
  once to the next consumer, after ``nak``'s delay, or after the consumer's ack wait;
- leases, memberships and heartbeats expire a given time after their last write.

The KV store and the files a task reaches are the plugin SDK's ports (``plugins.api.KVStore``
and ``FileStorage``): the worker is given one of each; timers are ``Inputs.schedule_input``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any, Protocol

import msgspec

from engine.core.events import Event, Input
from engine.core.events import LogLine as LogLine


class Templates(Protocol):
    """Renders Kestra expressions for one decider step."""

    @property
    def envs(self) -> Mapping[str, str]:
        """``envs.*``: the process's ``ENV_*`` variables, read once."""
        ...

    def render_value(self, value: Any, variables: Mapping[str, Any]) -> Any:
        """Every string inside ``value`` rendered against ``variables``."""
        ...

    def load_yaml(self, text: str) -> Any:
        """Parse a YAML value (a YAML-typed flow output); raises on bad YAML."""
        ...

    def masked(self, value: Any) -> Any:
        """``value`` with the secrets this step's renderings read (``secret()``) masked."""
        ...


# ---- records the ports carry --------------------------------------------------------------

StoredStep = tuple[int, list[Event]]  # one stored fold step: its stream sequence and its events


class FlowRevision(msgspec.Struct, frozen=True):
    namespace: str
    flow_id: str
    revision: int
    source: str
    seq: int
    deleted: bool = False
    date: str | None = None  # when it was saved (ISO-8601, UTC), where the store knows it


# ---- messages ---------------------------------------------------------------------------------


class Subscription(Protocol):
    async def unsubscribe(self) -> None: ...


class Delivery(Protocol):
    """One message handed to a consumer: delivered again until acknowledged or terminated."""

    @property
    def data(self) -> bytes: ...

    @property
    def redelivered(self) -> bool:
        """Was it handed out before (and not acknowledged)? Its previous holder may have handled it."""
        ...

    async def ack(self) -> None: ...

    async def nak(self, delay: float | None = None) -> None:
        """Not handled: deliver it again (after ``delay`` seconds)."""
        ...

    async def term(self) -> None:
        """Never deliver it again (it cannot be handled by anyone)."""
        ...


class InputDelivery(Delivery, Protocol):
    """An executor input (a command or a worker's report) for one execution."""

    @property
    def execution_id(self) -> str: ...

    @property
    def partition(self) -> int: ...


# ---- the execution's history ----------------------------------------------------------------


class EventLog(Protocol):
    """Executions' histories, one append per fold step, guarded by the expected last sequence."""

    @property
    def replicas(self) -> int:
        """How many copies the log keeps: above 1, a read may be served by a replica a moment behind."""
        ...

    async def append(self, execution_id: str, events: list[Event], expected_last_seq: int) -> int:
        """Append one step after ``expected_last_seq`` (0: a new execution); returns its sequence.
        Raises ConcurrencyConflict when the last step is not that one."""
        ...

    async def last_seq(self, execution_id: str, leader: bool = False) -> int:
        """The sequence of the execution's last step (0: none); ``leader``: the authoritative answer."""
        ...

    async def read_after(self, execution_id: str, after: int) -> list[StoredStep]:
        """The steps after sequence ``after``, oldest first (possibly from a replica a moment behind)."""
        ...

    async def read_from_leader(self, execution_id: str, after: int, upto: int) -> list[StoredStep]:
        """The steps after ``after`` up to ``upto``, from the authoritative copy."""
        ...

    async def read_many(self, after: Mapping[str, int]) -> dict[str, list[StoredStep]]:
        """``read_after`` of many executions at once (execution id -> its ``after``)."""
        ...

    async def watch_events(
        self, execution_id: str, on_events: Callable[[list[Event]], Awaitable[None]]
    ) -> Subscription:
        """Call ``on_events`` with each step appended from now on (live, no history, may miss some)."""
        ...


class Snapshots(Protocol):
    """An execution's folded state every N steps, so that a load folds only the tail."""

    async def put_snapshot(self, execution_id: str, data: bytes) -> None: ...

    async def get_snapshot(self, execution_id: str) -> bytes | None: ...

    async def get_snapshots(self, execution_ids: Sequence[str]) -> dict[str, bytes]:
        """The snapshot of each execution that has one."""
        ...

    async def drop_snapshot(self, execution_id: str) -> None: ...


class HistoryStore(EventLog, Snapshots, Protocol):
    """What a reader of executions needs (``eventstore.reader.read_execution``)."""


# ---- inputs, work, kills --------------------------------------------------------------------


class Inputs(Protocol):
    """Commands and reports to an execution's executor partition."""

    async def send_input(self, execution_id: str, item: Input, msg_id: str | None = None) -> None:
        """Deliver ``item`` to the execution's executor; a ``msg_id`` makes it stored once."""
        ...

    def check_size(self, payload: bytes, headers: dict[str, str] | None) -> None:
        """Raise PayloadTooLarge for a message the store could never take."""
        ...

    async def schedule_input(self, execution_id: str, key: str, at: str, item: Input) -> None:
        """Deliver ``item`` at ``at`` (ISO UTC), even across restarts; one pending timer per ``key``."""
        ...

    async def pending_input(self, execution_id: str, msg_id: str) -> bytes | None:
        """The input sent with ``msg_id`` if it still waits for the executor (not yet consumed), else None.

        Read from the leader: a worker asks it to know whether a report it cannot remember sending
        (a work message delivered again after its holder died) was in fact sent."""
        ...


class InputConsumers(Protocol):
    """An executor's side of the inputs: one fresh consumer per partition it owns."""

    async def prepare_executor(self) -> None:
        """Remove what an older engine left that would overlap the per-partition consumers."""
        ...

    async def consume_inputs(
        self, partition: int, on_input: Callable[[InputDelivery], Awaitable[None]]
    ) -> Subscription:
        """Become the partition's only consumer: what a previous one left unacknowledged comes at once."""
        ...

    async def inputs_consumed(self, partition: int, subscription: Subscription) -> bool:
        """Does the partition's consumer still exist (a server restart can lose it), and deliver to
        ``subscription``? An executor that lost the partition may have replaced it since: the
        owner's subscription then gets nothing, and would wait for ever."""
        ...


class WorkQueue(Protocol):
    """Runnable taskruns for worker groups: each one handed to one worker of the group at a time."""

    async def dispatch(self, execution_id: str, group: str | None, payload: bytes, msg_id: str) -> None:
        """Queue work for ``group`` (None: the default group), stored once per ``msg_id``."""
        ...

    async def consume_work(
        self, group: str, on_work: Callable[[Delivery], Awaitable[None]], max_pending: int
    ) -> list[Subscription]:
        """Join ``group``'s consumers; at most ``max_pending`` unacknowledged deliveries at a time."""
        ...


class Kills(Protocol):
    """Fire-and-forget notices that an execution's running attempts must stop."""

    async def kill(self, execution_id: str) -> None: ...

    async def watch_kills(self, on_kill: Callable[[str], Awaitable[None]]) -> Subscription: ...


# ---- executors and workers being alive ----------------------------------------------------------


class Leases(Protocol):
    """Partition leases and executor memberships, each expiring ``ttl_s`` after its last write."""

    async def lease_holder(self, partition: int) -> tuple[str, int]:
        """(owner, revision); owner "" when free (revision 0: none or expired)."""
        ...

    async def lease_write(self, partition: int, owner: str, revision: int, ttl_s: float) -> int | None:
        """Compare-and-set on ``revision``: the new revision, or None when the lease changed meanwhile."""
        ...

    async def announce_member(self, executor_id: str, ttl_s: float) -> None: ...

    async def leave(self, executor_id: str) -> None: ...

    async def members(self) -> list[str]: ...


class Presence(Protocol):
    """Is an executor's process still there? Answered at once when its connection is gone."""

    async def answer_pings(self, executor_id: str) -> Subscription: ...

    async def is_alive(self, executor_id: str) -> bool:
        """False only when nobody answers for sure; slow is alive (its lease will tell)."""
        ...


class Liveness(Protocol):
    """Worker heartbeats, and the attempts each worker holds (to notice a lost worker's ones)."""

    async def heartbeat(self, worker_id: str, info: dict[str, Any], ttl_s: int) -> None: ...

    async def live_workers(self) -> dict[str, Any]: ...

    async def mark_running(
        self, worker_id: str, execution_id: str, taskrun_id: str, attempt: int
    ) -> None: ...

    async def clear_running(self, worker_id: str, execution_id: str, taskrun_id: str) -> None: ...

    async def running_attempts(self) -> list[tuple[str, str, str, int]]:
        """(worker, execution, taskrun, attempt) of every attempt announced and not ended."""
        ...

    async def running_attempt(self, worker_id: str, execution_id: str, taskrun_id: str) -> int | None:
        """The attempt ``worker_id`` marked running for this taskrun, read from the leader: None when
        there is no such mark (never set, or cleared once its end was stored)."""
        ...


class HeldWork(Protocol):
    """The executions whose work an executor may have handed to its process's worker in memory,
    recorded durably so that whoever owns their partition next can dispatch again what a dead
    process held (nothing else would: such an execution may wait for no input)."""

    async def mark_held(self, execution_id: str) -> None:
        """Stored before the execution's first work goes into memory."""
        ...

    def clear_held(self, execution_id: str) -> None:
        """Fire-and-forget, once it ended: a mark left behind only costs its next owner a read."""
        ...

    async def held_executions(self, partitions: Collection[int]) -> list[tuple[str, int]]:
        """(execution, partition) of the marked executions of ``partitions`` (and of some that
        ended a moment ago)."""
        ...


class Logs(Protocol):
    def post_log(self, execution_id: str, line: LogLine) -> None:
        """Fire-and-forget: logs never slow down or fail a task."""
        ...

    async def store_log(self, execution_id: str, line: LogLine, msg_id: str) -> None:
        """Acknowledged once stored, once per ``msg_id``."""
        ...

    async def store_lines(self, execution_id: str, lines: Sequence[LogLine], key: str) -> None:
        """``store_log`` of each line, ``key:i`` the ``i``-th one's message id: a retry stores none twice."""
        ...

    async def read_logs(self, execution_id: str) -> list[LogLine]: ...


class Flows(Protocol):
    """Flow sources by revision."""

    async def put_flow(self, namespace: str, flow_id: str, source: str) -> FlowRevision: ...

    async def get_flow(
        self, namespace: str, flow_id: str, revision: int | None = None
    ) -> FlowRevision | None: ...

    async def delete_flow(self, namespace: str, flow_id: str) -> bool:
        """A deletion as the next revision (false: no such flow); a later save is the revision after it."""
        ...


class Slots(Protocol):
    async def update_slots(self, namespace: str, flow_id: str, change: Any) -> Any:
        """Read-modify-write a flow's {running, queued} record: ``change(record) -> (new|None, result)``."""
        ...


# ---- what each role is given ------------------------------------------------------------------


class ExecutorStore(
    HistoryStore,
    Inputs,
    InputConsumers,
    WorkQueue,
    Kills,
    Leases,
    Presence,
    Liveness,
    HeldWork,
    Logs,
    Flows,
    Slots,
    Protocol,
):
    """Everything the executor reaches outside itself."""


class WorkerStore(HistoryStore, Inputs, WorkQueue, Kills, Liveness, Logs, Protocol):
    """Everything the worker reaches outside itself (its tasks get a KV store and files besides)."""
