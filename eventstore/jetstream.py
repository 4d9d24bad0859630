"""The JetStream connection every store module builds on: connect, create the streams, wait out elections.

Every write that matters is acknowledged by the server after it is on disk (the embedded
server runs with ``sync_interval: always``). Appends to an execution carry
``Nats-Expected-Last-Subject-Sequence``: a second writer is refused, never merged.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any, Self, TypeVar

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js import api as jsapi
from nats.js.errors import APIError, NotFoundError, ServiceUnavailableError

from engine.core.errors import PayloadTooLarge, ServerError
from engine.logs import get_logger
from engine.settings import settings
from eventstore import subjects as S
from eventstore.batching import Batcher

# "wrong last sequence": 10071 names the sequence; a clustered stream may answer 10164 instead.
OCC_CONFLICTS = frozenset({10071, 10164})
_DUPLICATE_IN_PROCESS = 10158  # a retried publish whose first copy is still being replicated
HELD_LINGER_S = 0.05  # ~20 clears a commit at 400 executions/s, not one each
_NO_PLACEMENT = 10005  # "no suitable peers for placement": a peer is (re)starting or just died
_SETUP_DEADLINE_S = 30.0  # a stream leader or meta leader being elected (a node of the cluster died)
json_encoder = msgspec.json.Encoder()
# Compared even at nats-py's default value: a stream made with other ones must be updated.
_ALWAYS_COMPARED = frozenset({"subjects", "retention", "storage", "num_replicas"})


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


class Connection:
    """One connection to NATS, its JetStream context and the streams the engine uses."""

    def __init__(self, nc: Client, replicas: int = 1) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.replicas = replicas
        self._batchers: dict[str, Batcher] = {}

    def batcher(self, stream: str) -> Batcher:
        """The group-commit publisher of ``stream`` (``eventstore.batching``): one per connection."""
        found = self._batchers.get(stream)
        if found is None:
            # A cleared mark read late costs a takeover one load: its clears leave together.
            linger = HELD_LINGER_S if stream == S.HELD else 0.0
            found = self._batchers[stream] = Batcher(self.nc, on_error=self._post_failed, linger_s=linger)
        return found

    def _post_failed(self, exc: BaseException) -> None:
        get_logger("eventstore.nats").debug("nats.post_failed", error=f"{type(exc).__name__}: {exc}")

    @classmethod
    async def connect(
        cls, url: str | list[str], *, replicas: int | None = None, name: str = "engine"
    ) -> Self:
        servers = url if isinstance(url, list) else [u.strip() for u in url.split(",")]
        if replicas is None:
            replicas = default_replicas(len(servers))
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
        if self._batchers:  # what was posted without waiting (log lines) leaves first, boundedly
            pending = asyncio.gather(*(b.drain() for b in self._batchers.values()))
            with contextlib.suppress(Exception):
                await asyncio.wait({pending}, timeout=2)
            if not pending.done():
                pending.cancel()
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

        def stream(name: str, subjects: list[str], **extra: Any) -> jsapi.StreamConfig:
            """A stream on disk with the store's replica count."""
            return jsapi.StreamConfig(
                name=name,
                subjects=subjects,
                storage=jsapi.StorageType.FILE,
                num_replicas=self.replicas,
                **extra,
            )

        def bucket(name: str, bucket: str, **extra: Any) -> jsapi.StreamConfig:
            """A key-value stream: the last message of each subject is the key's value."""
            return stream(
                name,
                [f"$KV.{bucket}.>"],
                allow_direct=True,
                allow_rollup_hdrs=True,
                max_msgs_per_subject=1,
                **extra,
            )

        work_queue = jsapi.RetentionPolicy.WORK_QUEUE
        configs = []
        for k in range(S.SHARDS):
            parts = S.shard_partitions(k)
            configs += [
                stream(
                    f"{S.EVENTS}_{k}",
                    [f"ev.{p}.>" for p in parts],
                    allow_direct=True,
                    deny_delete=True,
                    duplicate_window=120,
                    allow_atomic=True,
                ),
                stream(
                    f"{S.INBOX}_{k}",
                    [f"in.{p}.>" for p in parts] + [f"sched.{p}.>" for p in parts],
                    retention=work_queue,
                    duplicate_window=120,
                    allow_msg_schedules=True,
                    allow_atomic=True,
                ),
                stream(
                    f"{S.WORK}_{k}",
                    [f"work.*.{k}"],
                    retention=work_queue,
                    duplicate_window=120,
                    allow_atomic=True,
                ),
            ]
        configs += [
            stream(S.LOGS, ["log.>"], max_age=30 * 24 * 3600, allow_direct=True, allow_atomic=True),
            stream(S.FLOWS, ["flow.>"], allow_direct=True),
            bucket(
                S.KV,
                S.KV_BUCKET,
                deny_delete=True,
                allow_msg_ttl=True,
                discard=jsapi.DiscardPolicy.NEW,
            ),
            bucket(S.RUNNING, "running", allow_msg_ttl=True),
            bucket(S.HELD, "held", allow_msg_ttl=True, allow_atomic=True),
            bucket(S.WORKERS, "workers", allow_msg_ttl=True, subject_delete_marker_ttl=S.HEARTBEAT_TTL_S),
            bucket(S.LEASES, "leases", allow_msg_ttl=True),
            bucket(S.SNAPSHOTS, "snap"),
        ]
        # At once, not one after the other: each is a round trip, and on a new data directory the
        # server creates the 19 streams' files in parallel (cold `engine run`: 51-137 ms before).
        created = await self._to_ensure(configs)
        await asyncio.gather(*(self._ensure_stream(cfg) for cfg in created))
        if self.replicas > 1:
            # Created at once on a cluster, a stream may not have elected its leader (nor its direct
            # get responders) when the create returns: the first read then met "no responders" (the
            # small chaos test, in CI). Each one answers before setup returns.
            await asyncio.gather(*(self._answering(cfg) for cfg in created))

    async def _answering(self, cfg: jsapi.StreamConfig) -> None:
        name = cfg.name or ""

        async def ask() -> None:
            info = await self.js.stream_info(name)
            if info.cluster is not None and not info.cluster.leader:
                raise NatsTimeoutError  # no leader yet: asked again
            if cfg.allow_direct:
                with contextlib.suppress(NotFoundError):  # an empty stream answers 404: it answers
                    await self.js.get_msg(name, seq=1, direct=True)

        await patiently(ask, f"waiting for stream {name} to elect its leader")

    async def _to_ensure(self, configs: list[jsapi.StreamConfig]) -> list[jsapi.StreamConfig]:
        """The streams that are missing or differ from ``configs`` in a property the engine sets.

        One listing instead of a create per stream when the data directory has them all (every
        command but the first: 8 ms of 19 round trips, 1.5 ms for the listing). A property the
        engine leaves at nats-py's default is not compared: the server fills those in (a
        duplicate window of 0 reads back as 120 s). When the listing fails (an election), every
        stream goes through the create-or-update path."""
        try:
            infos = await self.js.streams_info()
        except (NatsTimeoutError, NoRespondersError, APIError):
            return configs
        have = {info.config.name: info.config for info in infos}

        def same(want: jsapi.StreamConfig, got: jsapi.StreamConfig | None) -> bool:
            if got is None:
                return False
            for f in dataclasses.fields(want):
                value = getattr(want, f.name)
                compared = f.name in _ALWAYS_COMPARED or value != f.default
                if value is not None and compared and getattr(got, f.name) != value:
                    return False
            return True

        return [cfg for cfg in configs if not same(cfg, have.get(cfg.name or ""))]

    async def _ensure_stream(self, cfg: jsapi.StreamConfig) -> None:
        async def create_or_update() -> None:
            try:
                await self.js.add_stream(cfg)
            except APIError as exc:
                if exc.err_code != 10058:  # stream name already in use with a different config
                    raise
                await self.js.update_stream(cfg)

        await patiently(create_or_update, f"creating stream {cfg.name}")

    def check_size(self, payload: bytes, headers: dict[str, str] | None) -> None:
        """Refuse a message over the server's max_payload (headers count): it would be refused at
        every attempt, and a caller that retries on errors would retry it forever."""
        size = len(payload) + sum(len(k) + len(v) + 4 for k, v in (headers or {}).items()) + 12
        if size > self.nc.max_payload:
            raise PayloadTooLarge(size, self.nc.max_payload)

    async def _publish_once(
        self, stream: str, subject: str, payload: bytes, headers: dict[str, str] | None
    ) -> None:
        """A publish with a message id: "duplicate in process" means its first copy is being stored."""
        self.check_size(payload, headers)
        try:
            await self.batcher(stream).publish(subject, payload, headers)
        except APIError as exc:
            if exc.err_code != _DUPLICATE_IN_PROCESS or not headers:
                raise


class JetStreamDelivery:
    """A JetStream message as the ports hand it over (``engine.core.ports.InputDelivery``)."""

    __slots__ = ("_msg",)

    def __init__(self, msg: Msg) -> None:
        self._msg = msg

    @property
    def data(self) -> bytes:
        return self._msg.data

    @property
    def redelivered(self) -> bool:
        return self._msg.metadata.num_delivered > 1

    @property
    def execution_id(self) -> str:
        return self._msg.subject.split(".", 2)[2]  # in.<partition>.<execution>

    @property
    def partition(self) -> int:
        return int(self._msg.subject.split(".", 2)[1])

    async def ack(self) -> None:
        await self._msg.ack()

    async def nak(self, delay: float | None = None) -> None:
        await self._msg.nak(delay=delay)

    async def term(self) -> None:
        await self._msg.term()
