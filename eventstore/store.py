"""The JetStream log: streams, appends with optimistic concurrency, reads, flows, logs and KV.

Every write that matters is acknowledged by the server after it is on disk (the embedded
server runs with ``sync_interval: always``). Appends to an execution carry
``Nats-Expected-Last-Subject-Sequence``: a second writer is refused, never merged.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js import api as jsapi
from nats.js.errors import APIError, KeyNotFoundError, NotFoundError, ServiceUnavailableError

from engine.core.errors import ConcurrencyConflict, ServerError
from engine.core.events import Event, Input, decode, encode, encode_input
from engine.settings import settings
from eventstore import subjects as S

# "wrong last sequence": 10071 names the sequence; a clustered stream may answer 10164 instead.
_OCC_CONFLICTS = frozenset({10071, 10164})
_DUPLICATE_IN_PROCESS = 10158  # a retried publish whose first copy is still being replicated
_NO_PLACEMENT = 10005  # "no suitable peers for placement": a peer is (re)starting or just died
_SETUP_DEADLINE_S = 30.0  # a stream leader or meta leader being elected (a node of the cluster died)
_READ_BATCH = 256
_json = msgspec.json.Encoder()


def _close_replaced_connections() -> None:
    """Make nats-py close a failed reconnect attempt's socket before it opens the next one.

    nats-py (2.16) reconnects in a loop; when a server accepts the TCP connection but the NATS
    handshake then fails (a node starting, stopping or frozen: no INFO within connect_timeout), the
    next attempt connects the same ``TcpTransport`` again and drops the previous StreamWriter
    without closing it. The socket stays open until the garbage collector finds it, with a
    ResourceWarning in whatever code runs then. Installed once, for every client of the process.
    """
    from nats.aio.transport import TcpTransport

    connect = TcpTransport.connect
    if getattr(connect, "_closes_previous", False):
        return

    async def connect_closing_previous(self: Any, *args: Any, **kwargs: Any) -> Any:
        for writer in (self._io_writer, self._bare_io_writer):
            if writer is not None and not writer.transport.is_closing():
                writer.transport.abort()  # a dead connection: nothing to flush
        return await connect(self, *args, **kwargs)

    connect_closing_previous._closes_previous = True  # type: ignore[attr-defined]
    TcpTransport.connect = connect_closing_previous  # type: ignore[method-assign]


_close_replaced_connections()


def default_replicas(servers: int) -> int:
    """ENGINE_REPLICAS, else 3 when given the URLs of a cluster of three or more nodes, else 1."""
    replicas = settings().replicas
    if replicas is None:
        return 3 if servers >= 3 else 1
    return replicas


T = TypeVar("T")


async def patiently(op: Callable[[], Awaitable[T]], what: str) -> T:
    """Run a JetStream management call, waiting out a leader election (a node of the cluster died)
    for up to _SETUP_DEADLINE_S seconds, then failing with one clear error."""
    deadline = asyncio.get_running_loop().time() + _SETUP_DEADLINE_S
    delay = 0.2
    while True:
        try:
            return await op()
        except (NatsTimeoutError, NoRespondersError, APIError) as exc:
            refused = isinstance(exc, APIError) and not isinstance(exc, ServiceUnavailableError)
            if refused and getattr(exc, "err_code", None) != _NO_PLACEMENT:
                raise
            if asyncio.get_running_loop().time() + delay > deadline:
                raise ServerError(
                    f"JetStream did not answer while {what} for {_SETUP_DEADLINE_S:g}s "
                    f"({type(exc).__name__}): is a majority of the cluster up?"
                ) from exc
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


@dataclass(frozen=True)
class FlowRevision:
    namespace: str
    flow_id: str
    revision: int
    source: str
    seq: int
    deleted: bool = False


class LogLine(msgspec.Struct, frozen=True, array_like=True):
    date: str
    level: str
    message: str
    taskrun_id: str | None = None
    task_id: str | None = None
    attempt: int | None = None


_log_enc = msgspec.msgpack.Encoder()
_log_dec = msgspec.msgpack.Decoder(LogLine)


class Store:
    """One connection to NATS and everything the engine stores there."""

    def __init__(self, nc: Client, replicas: int = 1) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.replicas = replicas

    @classmethod
    async def connect(
        cls, url: str | list[str], *, replicas: int | None = None, name: str = "engine"
    ) -> Store:
        servers = url if isinstance(url, list) else [u.strip() for u in url.split(",")]
        if replicas is None:
            replicas = default_replicas(len(servers))
        from engine.logs import get_logger

        log = get_logger("eventstore.nats")

        async def on_error(exc: Exception) -> None:
            log.warning("nats.error", error=f"{type(exc).__name__}: {exc}")

        async def on_disconnect() -> None:
            if not nc.is_closed and not nc.is_draining:  # an unplanned loss, not our own close
                log.warning("nats.disconnected")

        async def on_reconnect() -> None:
            log.info("nats.reconnected")

        nc = Client()
        try:
            await nc.connect(
                servers=servers,
                name=name,
                error_cb=on_error,
                disconnected_cb=on_disconnect,
                reconnected_cb=on_reconnect,
                connect_timeout=5,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.25,  # type: ignore[arg-type]  # seconds, a float works
                allow_reconnect=True,
            )
        except Exception as exc:  # nats raises several unrelated types here
            raise ServerError(f"cannot connect to NATS at {', '.join(servers)}: {exc}") from exc
        store = cls(nc, replicas=replicas)
        try:
            await store.setup()
        except BaseException:  # e.g. replicas the server cannot place: the connection must not leak
            await store.close()
            raise
        return store

    async def close(self) -> None:
        """Flush what was published, then close; never hang on exit."""
        if self.nc.is_closed:
            return
        # Not wait_for: on a timeout it waits for the cancelled drain to finish, and nats-py can
        # swallow that cancellation; asyncio.wait returns at the deadline whatever the task does.
        drain = asyncio.ensure_future(self.nc.drain())
        done, _ = await asyncio.wait({drain}, timeout=5)
        if not done or drain.exception() is not None:
            drain.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.nc.close(), 2)

    async def setup(self) -> None:
        """Create the streams if missing (idempotent: several processes may race here)."""
        r = self.replicas
        file = jsapi.StorageType.FILE
        configs = []
        for k in range(S.SHARDS):
            parts = S.shard_partitions(k)
            configs += [
                jsapi.StreamConfig(
                    name=f"{S.EVENTS}_{k}",
                    subjects=[f"ev.{p}.>" for p in parts],
                    storage=file,
                    num_replicas=r,
                    allow_direct=True,
                    deny_delete=True,
                    duplicate_window=120,
                ),
                jsapi.StreamConfig(
                    name=f"{S.INBOX}_{k}",
                    subjects=[f"in.{p}.>" for p in parts] + [f"sched.{p}.>" for p in parts],
                    storage=file,
                    num_replicas=r,
                    retention=jsapi.RetentionPolicy.WORK_QUEUE,
                    duplicate_window=120,
                    allow_msg_schedules=True,
                ),
                jsapi.StreamConfig(
                    name=f"{S.WORK}_{k}",
                    subjects=[f"work.*.{k}"],
                    storage=file,
                    num_replicas=r,
                    retention=jsapi.RetentionPolicy.WORK_QUEUE,
                    duplicate_window=120,
                ),
            ]
        configs += [
            jsapi.StreamConfig(
                name=S.LOGS,
                subjects=["log.>"],
                storage=file,
                num_replicas=r,
                max_age=30 * 24 * 3600,
                allow_direct=True,
            ),
            jsapi.StreamConfig(
                name=S.FLOWS,
                subjects=["flow.>"],
                storage=file,
                num_replicas=r,
                allow_direct=True,
            ),
            jsapi.StreamConfig(
                name=S.KV,
                subjects=[f"$KV.{S.KV_BUCKET}.>"],
                storage=file,
                num_replicas=r,
                allow_direct=True,
                allow_rollup_hdrs=True,
                deny_delete=True,
                max_msgs_per_subject=1,
                allow_msg_ttl=True,
                discard=jsapi.DiscardPolicy.NEW,
            ),
        ]

        def bucket(name: str, bucket: str, **extra: Any) -> jsapi.StreamConfig:
            """A key-value stream: the last message of each subject is the key's value."""
            return jsapi.StreamConfig(
                name=name,
                subjects=[f"$KV.{bucket}.>"],
                storage=file,
                num_replicas=r,
                allow_direct=True,
                allow_rollup_hdrs=True,
                max_msgs_per_subject=1,
                **extra,
            )

        configs += [
            bucket(S.RUNNING, "running"),
            bucket(S.WORKERS, "workers", allow_msg_ttl=True, subject_delete_marker_ttl=S.HEARTBEAT_TTL_S),
            bucket(S.LEASES, "leases", allow_msg_ttl=True),
            bucket(S.SNAPSHOTS, "snap"),
        ]
        for cfg in configs:
            await self._ensure_stream(cfg)

    async def _ensure_stream(self, cfg: jsapi.StreamConfig) -> None:
        async def create_or_update() -> None:
            try:
                await self.js.add_stream(cfg)
            except APIError as exc:
                if exc.err_code != 10058:  # stream name already in use with a different config
                    raise
                await self.js.update_stream(cfg)

        await patiently(create_or_update, f"creating stream {cfg.name}")

    # ---- execution history -------------------------------------------------------------

    async def append(self, execution_id: str, events: list[Event], expected_last_seq: int) -> int:
        """Append one fold step; ``expected_last_seq`` is 0 for a new execution. Returns the new seq."""
        headers = {
            "Nats-Expected-Last-Subject-Sequence": str(expected_last_seq),
            "Nats-Msg-Id": f"{execution_id}:{expected_last_seq}",
        }
        try:
            ack = await self.js.publish(S.events(execution_id), encode(events), headers=headers, timeout=10)
        except APIError as exc:
            if exc.err_code in _OCC_CONFLICTS:
                raise ConcurrencyConflict(
                    f"execution {execution_id}: another writer appended after seq {expected_last_seq}"
                ) from exc
            raise
        return int(ack.seq)

    async def last_seq(self, execution_id: str, leader: bool = False) -> int:
        """The stream sequence of the execution's last step (0: none). ``leader``: asked of the
        stream's leader, which has every acknowledged write (a replica may be a moment behind)."""
        try:
            msg = await self.js.get_last_msg(
                S.events_stream(execution_id), S.events(execution_id), direct=not leader
            )
        except NotFoundError:
            return 0
        return int(msg.seq or 0)

    async def read_from_leader(
        self, execution_id: str, after: int, upto: int
    ) -> list[tuple[int, list[Event]]]:
        """The steps after ``after`` up to ``upto``, from the stream's leader (one request a step:
        only for what a lagging replica had not served)."""
        stream, subject = S.events_stream(execution_id), S.events(execution_id)
        out: list[tuple[int, list[Event]]] = []
        seq = after + 1
        while seq <= upto:
            msg = await self.js.get_msg(stream, seq=seq, subject=subject, next=True)
            got = int(msg.seq or 0)
            if got > upto or not got:
                break
            out.append((got, decode(msg.data or b"")))
            seq = got + 1
        return out

    async def read(self, execution_id: str) -> list[tuple[int, list[Event]]]:
        """Every fold step of one execution, oldest first, with its stream sequence."""
        return await self.read_after(execution_id, 0)

    async def _scan(
        self, stream: str, subject: str, *, upto: int, start: int = 1
    ) -> AsyncIterator[tuple[int, bytes]]:
        """Messages of ``subject`` from ``start`` to ``upto`` (inclusive) with an ordered consumer."""
        sub = await self.js.subscribe(
            subject,
            stream=stream,
            ordered_consumer=True,
            config=jsapi.ConsumerConfig(
                deliver_policy=jsapi.DeliverPolicy.BY_START_SEQUENCE
                if start > 1
                else jsapi.DeliverPolicy.ALL,
                opt_start_seq=start if start > 1 else None,
            ),
        )
        try:
            while True:
                msg = await sub.next_msg(timeout=10)
                seq = int(msg.metadata.sequence.stream)
                yield seq, msg.data
                if seq >= upto or msg.metadata.num_pending == 0:
                    return
        finally:
            await sub.unsubscribe()

    async def read_after(self, execution_id: str, after: int) -> list[tuple[int, list[Event]]]:
        """The fold steps of one execution after stream sequence ``after`` (a snapshot's), oldest first.

        Batched direct gets (server 2.11+): one request returns up to 256 steps, from any replica,
        with no consumer to create (an ordered consumer per read cost ~10x more on a takeover).
        """
        stream, subject = S.events_stream(execution_id), S.events(execution_id)
        out: list[tuple[int, list[Event]]] = []
        start = after + 1
        while True:
            got = await self._direct_batch(stream, subject, start, _READ_BATCH)
            out += [(seq, decode(data)) for seq, data in got]
            if len(got) < _READ_BATCH:
                return out
            start = got[-1][0] + 1

    async def _direct_batch(
        self, stream: str, subject: str, start: int, batch: int
    ) -> list[tuple[int, bytes]]:
        """Messages of ``subject`` from sequence ``start`` on, at most ``batch`` (nats-py has no helper)."""
        inbox = self.nc.new_inbox()
        got: list[tuple[int, bytes]] = []
        done = asyncio.get_running_loop().create_future()

        async def on_msg(msg: Msg) -> None:
            headers = msg.headers or {}
            status = headers.get("Status")
            if status is not None:  # 204: end of the batch; 404: nothing (more) to read
                if status not in ("204", "404"):
                    why = headers.get("Description", "")
                    exc = ServerError(f"direct get {stream} {subject}: {status} {why}")
                    if not done.done():
                        done.set_exception(exc)
                elif not done.done():
                    done.set_result(None)
                return
            got.append((int(headers["Nats-Sequence"]), msg.data))

        sub = await self.nc.subscribe(inbox, cb=on_msg)
        try:
            request = _json.encode({"seq": start, "next_by_subj": subject, "batch": batch})
            await self.nc.publish(f"$JS.API.DIRECT.GET.{stream}", request, reply=inbox)
            await asyncio.wait_for(done, 10)
        finally:
            await sub.unsubscribe()
        return got

    # ---- snapshots -----------------------------------------------------------------------

    async def put_snapshot(self, execution_id: str, data: bytes) -> None:
        await self.js.publish(S.snapshot(execution_id), data, timeout=10)

    async def get_snapshot(self, execution_id: str) -> bytes | None:
        try:
            msg = await self.js.get_last_msg(S.SNAPSHOTS, S.snapshot(execution_id), direct=True)
        except NotFoundError:
            return None
        return msg.data or None

    async def drop_snapshot(self, execution_id: str) -> None:
        await self.js.purge_stream(S.SNAPSHOTS, subject=S.snapshot(execution_id))

    # ---- executor partition leases ---------------------------------------------------------

    async def lease_holder(self, partition: int) -> tuple[str, int]:
        """(owner, revision) of a partition's lease; owner "" when free (revision 0: none or expired)."""
        try:
            msg = await self.js.get_last_msg(S.LEASES, S.lease(partition), direct=True)
        except NotFoundError:
            return "", 0
        return (msg.data or b"").decode(), int(msg.seq or 0)

    async def lease_write(self, partition: int, owner: str, revision: int, ttl_s: float) -> int | None:
        """Take, renew (``owner``) or give back (``owner`` "") a lease whose revision is ``revision``.

        Returns the new revision, or None when the lease changed meanwhile (someone else holds it).
        """
        headers = {
            "Nats-Expected-Last-Subject-Sequence": str(revision),
            "Nats-TTL": f"{max(1, round(ttl_s))}s",
        }
        try:
            ack = await self.js.publish(S.lease(partition), owner.encode(), headers=headers, timeout=5)
        except APIError as exc:
            if exc.err_code in _OCC_CONFLICTS:
                return None
            raise
        return int(ack.seq)

    async def announce_member(self, executor_id: str, ttl_s: float) -> None:
        headers = {"Nats-TTL": f"{max(1, round(ttl_s))}s"}
        await self.js.publish(S.member(executor_id), b"1", headers=headers, timeout=5)

    async def leave(self, executor_id: str) -> None:
        await self.js.purge_stream(S.LEASES, subject=S.member(executor_id))

    async def members(self) -> list[str]:
        """Executors whose membership key has not expired."""
        info = await self.js.stream_info(S.LEASES, subjects_filter="$KV.leases.m.>")
        out = []
        for subject, count in (info.state.subjects or {}).items():
            if count:
                out.append(subject.rsplit(".", 1)[1])
        return sorted(out)

    # ---- inputs and work -------------------------------------------------------------

    async def send_input(self, execution_id: str, item: Input, msg_id: str | None = None) -> None:
        headers = {"Nats-Msg-Id": msg_id} if msg_id else None
        await self._publish_once(S.inbox(execution_id), encode_input(item), headers)

    async def _publish_once(self, subject: str, payload: bytes, headers: dict[str, str] | None) -> None:
        """A publish with a message id: "duplicate in process" means its first copy is being stored."""
        try:
            await self.js.publish(subject, payload, headers=headers, timeout=10)
        except APIError as exc:
            if exc.err_code != _DUPLICATE_IN_PROCESS or not headers:
                raise

    async def schedule_input(self, execution_id: str, key: str, at: str, item: Input) -> None:
        """Deliver ``item`` to the execution's inbox at ``at`` (ISO UTC), even across restarts.

        The server's message scheduler holds the timer; ``key`` names it (one pending timer per key).
        """
        moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
        if moment.microsecond:  # the scheduler takes whole seconds: round up, never fire early
            moment = moment.replace(microsecond=0) + timedelta(seconds=1)
        when = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        headers = {
            "Nats-Schedule": f"@at {when}",
            "Nats-Schedule-Target": S.inbox(execution_id),
            "Nats-Msg-Id": f"{execution_id}:timer:{key}",
        }
        await self.js.publish(S.timer(execution_id, key), encode_input(item), headers=headers, timeout=10)

    async def dispatch(self, execution_id: str, group: str | None, payload: bytes, msg_id: str) -> None:
        await self._publish_once(S.work(group, S.shard(execution_id)), payload, {"Nats-Msg-Id": msg_id})

    # ---- flows ---------------------------------------------------------------------------

    async def put_flow(self, namespace: str, flow_id: str, source: str) -> FlowRevision:
        """Store a new revision unless the source is unchanged. Concurrent saves: one wins, one retries."""
        subject = S.flow(namespace, flow_id)
        for _ in range(5):
            latest = await self.get_flow(namespace, flow_id)
            if latest is not None and latest.source == source and not latest.deleted:
                return latest
            revision = latest.revision + 1 if latest else 1
            headers = {
                "Nats-Expected-Last-Subject-Sequence": str(latest.seq if latest else 0),
                "Engine-Revision": str(revision),
            }
            try:
                ack = await self.js.publish(subject, source.encode(), headers=headers, timeout=10)
            except APIError as exc:
                if exc.err_code in _OCC_CONFLICTS:
                    continue
                raise
            return FlowRevision(namespace, flow_id, revision, source, int(ack.seq))
        raise ConcurrencyConflict(f"flow {namespace}.{flow_id}: too many concurrent saves")

    async def delete_flow(self, namespace: str, flow_id: str) -> bool:
        latest = await self.get_flow(namespace, flow_id)
        if latest is None:
            return False
        headers = {
            "Engine-Revision": str(latest.revision + 1),
            "Engine-Deleted": "1",
            "Nats-Expected-Last-Subject-Sequence": str(latest.seq),
        }
        await self.js.publish(S.flow(namespace, flow_id), b"", headers=headers, timeout=10)
        return True

    @staticmethod
    def _revision(namespace: str, flow_id: str, msg: Any) -> FlowRevision:
        headers = msg.headers or {}
        return FlowRevision(
            namespace,
            flow_id,
            int(headers.get("Engine-Revision", "1")),
            (msg.data or b"").decode(),
            int(msg.seq),
            headers.get("Engine-Deleted") == "1",
        )

    async def get_flow(
        self, namespace: str, flow_id: str, revision: int | None = None
    ) -> FlowRevision | None:
        if not (S.valid_name(namespace) and S.valid_name(flow_id)):
            return None  # no flow can have that name
        try:
            msg = await self.js.get_last_msg(S.FLOWS, S.flow(namespace, flow_id), direct=True)
        except NotFoundError:
            return None
        latest = self._revision(namespace, flow_id, msg)
        if revision is None or revision == latest.revision:
            return None if (revision is None and latest.deleted) else latest
        for rev in await self.flow_revisions(namespace, flow_id):
            if rev.revision == revision:
                return rev
        return None

    async def flow_revisions(self, namespace: str, flow_id: str) -> list[FlowRevision]:
        subject = S.flow(namespace, flow_id)
        try:
            last = await self.js.get_last_msg(S.FLOWS, subject, direct=True)
        except NotFoundError:
            return []
        out = []
        sub = await self.js.subscribe(subject, stream=S.FLOWS, ordered_consumer=True)
        try:
            while True:
                msg = await sub.next_msg(timeout=10)
                out.append(
                    FlowRevision(
                        namespace,
                        flow_id,
                        int((msg.headers or {}).get("Engine-Revision", "1")),
                        (msg.data or b"").decode(),
                        int(msg.metadata.sequence.stream),
                        (msg.headers or {}).get("Engine-Deleted") == "1",
                    )
                )
                if int(msg.metadata.sequence.stream) >= int(last.seq or 0):
                    break
        finally:
            await sub.unsubscribe()
        return out

    async def list_flows(self) -> list[FlowRevision]:
        info = await self.js.stream_info(S.FLOWS, subjects_filter="flow.>")
        out = []
        for subject in sorted((info.state.subjects or {}).keys()):
            ns, fid = S.parse_flow(subject)
            rev = await self.get_flow(ns, fid)
            if rev is not None:
                out.append(rev)
        return out

    # ---- flow concurrency slots -------------------------------------------------------------

    async def update_slots(self, namespace: str, flow_id: str, change: Any) -> Any:
        """Read-modify-write the flow's {running: [...], queued: [...]} record with optimistic concurrency.

        ``change(record) -> (record, result)`` is retried on a conflicting write; returns its result.
        """
        subject = S.kv_subject("system.concurrency", f"{namespace}.{flow_id}".replace(":", "_"))
        for _ in range(100):
            try:
                msg = await self.js.get_last_msg(S.KV, subject, direct=True)
                seq, record = int(msg.seq or 0), msgspec.json.decode(msg.data) if msg.data else {}
            except NotFoundError:
                seq, record = 0, {}
            record.setdefault("running", [])
            record.setdefault("queued", [])
            new, result = change(record)
            if new is None:
                return result
            try:
                await self.js.publish(
                    subject,
                    _json.encode(new),
                    headers={"Nats-Expected-Last-Subject-Sequence": str(seq)},
                    timeout=10,
                )
            except APIError as exc:
                if exc.err_code in _OCC_CONFLICTS:
                    continue
                raise
            return result
        raise ConcurrencyConflict(f"flow {namespace}.{flow_id}: concurrency slots too contended")

    # ---- worker liveness -----------------------------------------------------------------

    async def heartbeat(self, worker_id: str, info: dict[str, Any], ttl_s: int = S.HEARTBEAT_TTL_S) -> None:
        """Renew a worker's liveness key; it expires after ``ttl_s`` without renewal."""
        await self.js.publish(
            S.heartbeat(worker_id),
            _json.encode(info),
            headers={"Nats-TTL": f"{ttl_s}s"},
            timeout=10,
        )

    async def mark_running(self, worker_id: str, execution_id: str, taskrun_id: str, attempt: int) -> None:
        """Record that a worker holds an attempt, so that its loss can be noticed after any restart."""
        subject = S.running(worker_id, execution_id, taskrun_id)
        await self.js.publish(subject, _json.encode({"attempt": attempt}), timeout=10)

    async def clear_running(self, worker_id: str, execution_id: str, taskrun_id: str) -> None:
        subject = S.running(worker_id, execution_id, taskrun_id)
        headers = {"KV-Operation": "PURGE", "Nats-Rollup": "sub"}
        await self.js.publish(subject, b"", headers=headers, timeout=10)

    async def running_attempts(self) -> list[tuple[str, str, str, int]]:
        """(worker, execution, taskrun, attempt) of every attempt a worker announced and did not end."""
        info = await self.js.stream_info(S.RUNNING, subjects_filter="$KV.running.>")
        out = []
        for subject in info.state.subjects or {}:
            try:
                msg = await self.js.get_last_msg(S.RUNNING, subject, direct=True)
            except NotFoundError:
                continue
            if not msg.data:
                continue
            _, _, worker, execution, taskrun = subject.split(".", 4)
            out.append((worker, execution, taskrun, int(msgspec.json.decode(msg.data)["attempt"])))
        return out

    async def live_workers(self) -> dict[str, Any]:
        info = await self.js.stream_info(S.WORKERS, subjects_filter="$KV.workers.>")
        out: dict[str, Any] = {}
        for subject in info.state.subjects or {}:
            try:
                msg = await self.js.get_last_msg(S.WORKERS, subject, direct=True)
            except NotFoundError:
                continue
            if msg.data:
                out[subject.rsplit(".", 1)[1]] = msgspec.json.decode(msg.data)
        return out

    # ---- logs ----------------------------------------------------------------------------

    async def publish_log(self, execution_id: str, line: LogLine) -> None:
        """Fire-and-forget: logs never slow down or fail a task."""
        await self.nc.publish(S.logs(execution_id), _log_enc.encode(line))

    async def store_log(self, execution_id: str, line: LogLine, msg_id: str) -> None:
        """A log line acknowledged once stored (the engine's own, rare lines: why something failed)."""
        headers = {"Nats-Msg-Id": msg_id}
        await self.js.publish(S.logs(execution_id), _log_enc.encode(line), headers=headers, timeout=10)

    @staticmethod
    def decode_log(data: bytes) -> LogLine:
        return _log_dec.decode(data)

    async def read_logs(self, execution_id: str) -> list[LogLine]:
        subject = S.logs(execution_id)
        try:
            last = await self.js.get_last_msg(S.LOGS, subject, direct=True)
        except NotFoundError:
            return []
        return [self.decode_log(d) async for _, d in self._scan(S.LOGS, subject, upto=int(last.seq or 0))]


class JetStreamKV:
    """The ``kv()`` store: one JetStream KV bucket, keys namespaced, values JSON, optional per-key TTL."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def get(self, namespace: str, key: str) -> Any | None:
        try:
            msg = await self.store.js.get_last_msg(S.KV, S.kv_subject(namespace, key), direct=True)
        except (NotFoundError, KeyNotFoundError):
            return None
        headers = msg.headers or {}
        if headers.get("KV-Operation") in ("DEL", "PURGE") or not msg.data:
            return None
        return msgspec.json.decode(msg.data)

    async def set(self, namespace: str, key: str, value: Any, ttl_s: float | None = None) -> None:
        headers: dict[str, str] = {}
        if ttl_s is not None:
            headers["Nats-TTL"] = f"{max(1, round(ttl_s))}s"
        await self.store.js.publish(
            S.kv_subject(namespace, key), _json.encode(value), headers=headers or None, timeout=10
        )

    async def delete(self, namespace: str, key: str) -> bool:
        existed = await self.get(namespace, key) is not None
        if existed:
            await self.store.js.publish(
                S.kv_subject(namespace, key),
                b"",
                headers={"KV-Operation": "PURGE", "Nats-Rollup": "sub"},
                timeout=10,
            )
        return existed

    async def keys(self, namespace: str, prefix: str = "") -> list[str]:
        base = S.kv_key(namespace, "")
        info = await self.store.js.stream_info(S.KV, subjects_filter=f"$KV.{S.KV_BUCKET}.>")
        out = []
        for subject in info.state.subjects or {}:
            k = subject[len(f"$KV.{S.KV_BUCKET}.") :]
            name = k[len(base) :]
            if k.startswith(base) and name.startswith(prefix) and await self.get(namespace, name) is not None:
                out.append(name)
        return sorted(out)
