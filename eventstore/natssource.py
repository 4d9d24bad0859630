"""A NATS server as a source of messages (the realtime NATS trigger's client side).

Connects to any NATS server (not the engine's), reconnecting forever, and subscribes either with
core NATS (a queue group, at-most-once) or with a durable JetStream consumer (explicit acks). The
trigger (``triggers.nats``) decides what to subscribe to and what each message starts; it sees
:class:`SourceMessage` values and never a NATS handle.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import nats
from nats.aio.msg import Msg
from nats.errors import SlowConsumerError
from nats.js import api as jsapi
from nats.js.errors import NotFoundError

# Messages received and not yet taken by the trigger. Past it the callback waits, so the client's own
# bounds apply: a core subscription's pending limits (nats-py drops and reports a slow consumer), a
# durable consumer's max_ack_pending (the server stops delivering).
BUFFER = 1024
# What a core subscription's client holds beyond the buffer before it drops (nats-py's defaults are
# 524,288 messages and 128 MiB): at-most-once by nature, so dropping is said, not avoided.
PENDING_MSGS = 65_536
PENDING_BYTES = 64 * 1024 * 1024

POLICIES = {
    "All": jsapi.DeliverPolicy.ALL,
    "Last": jsapi.DeliverPolicy.LAST,
    "New": jsapi.DeliverPolicy.NEW,
    "ByStartTime": jsapi.DeliverPolicy.BY_START_TIME,
    "LastPerSubject": jsapi.DeliverPolicy.LAST_PER_SUBJECT,
}


@dataclass
class Credentials:
    username: str | None = None
    password: str | None = None
    token: str | None = None
    creds: str | None = None  # the content of a .creds file


@dataclass
class SourceMessage:
    subject: str
    headers: dict[str, list[str]]
    data: bytes
    timestamp: datetime | None  # the stream's (None from core NATS)
    key: str | None  # "<stream>:<stream sequence>" from a durable consumer (None from core NATS)
    handle: Msg | None  # what ack() needs (None: nothing to ack)


def _headers(msg: Msg) -> dict[str, list[str]]:
    return {str(k): [str(v)] for k, v in (msg.headers or {}).items()}


class NatsSource:
    """One connection and one subscription; ``on_down(reason)`` while the server is away, ``on_up()`` back,
    ``on_dropped(reason)`` for each message a core subscription dropped because the trigger fell behind."""

    def __init__(
        self,
        name: str,
        on_down: Callable[[str], None],
        on_up: Callable[[], None],
        on_dropped: Callable[[str], None] | None = None,
        pending_msgs: int = PENDING_MSGS,
    ) -> None:
        self.name = name
        self.on_down = on_down
        self.on_up = on_up
        self.on_dropped = on_dropped or (lambda reason: None)
        self.pending_msgs = pending_msgs
        self.nc: Any = None
        self.sub: Any = None
        self.stream: str | None = None
        self.url = ""
        self._creds: str | None = None
        # A callback feeding a queue rather than nats-py's message iterator, which starts a task and
        # an asyncio.wait for every message: one scheduling hop less between the socket and the trigger.
        self._received: asyncio.Queue[SourceMessage | None] = asyncio.Queue(BUFFER)

    async def connect(self, url: str, credentials: Credentials) -> None:
        self.url = url
        options: dict[str, Any] = {
            "servers": [url if "://" in url else f"nats://{url}"],
            "allow_reconnect": True,
            "max_reconnect_attempts": -1,  # forever
            "reconnect_time_wait": 0.25,
            "connect_timeout": 2,
            "name": self.name,
            "disconnected_cb": self._disconnected,
            "reconnected_cb": self._reconnected,
            "error_cb": self._error,
            "closed_cb": self._closed,
        }
        if credentials.username is not None:
            options["user"] = credentials.username
            options["password"] = credentials.password or ""
        if credentials.token is not None:
            options["token"] = credentials.token
        if credentials.creds:
            fd, self._creds = tempfile.mkstemp(prefix="engine-nats-", suffix=".creds")
            with os.fdopen(fd, "w") as f:
                f.write(credentials.creds)
            options["user_credentials"] = self._creds
        self.nc = await nats.connect(**options)

    async def subscribe(self, subject: str, queue: str) -> None:
        """Core NATS: messages published while nobody listens are not seen."""
        self.sub = await self.nc.subscribe(
            subject,
            queue=queue,
            cb=self._on_core,
            pending_msgs_limit=self.pending_msgs,
            pending_bytes_limit=PENDING_BYTES,
        )
        # Round trip: once this returns the server has the subscription, so a listener that says it is
        # connected sees the next message (a test published right after and lost it under load).
        await self.nc.flush()

    async def subscribe_durable(
        self, subject: str, durable: str, batch: int, policy: str, since: datetime | None
    ) -> None:
        """A durable JetStream consumer (deliver group ``durable``) on the stream covering ``subject``."""
        js = self.nc.jetstream()
        try:
            self.stream = await js.find_stream_name_by_subject(subject)
        except NotFoundError:
            raise ConnectionError(f"no JetStream stream on {self.url} covers subject {subject!r}") from None
        config = jsapi.ConsumerConfig(
            durable_name=durable,
            deliver_group=durable,
            ack_policy=jsapi.AckPolicy.EXPLICIT,
            ack_wait=30,
            max_ack_pending=max(100, batch * 10),
            deliver_policy=POLICIES.get(policy, jsapi.DeliverPolicy.ALL),
            filter_subject=subject,
        )
        if since is not None:
            config.deliver_policy = jsapi.DeliverPolicy.BY_START_TIME
            config.opt_start_time = since
        self.sub = await js.subscribe(
            subject,
            queue=durable,
            durable=durable,
            stream=self.stream,
            manual_ack=True,
            config=config,
            cb=self._on_durable,
        )

    async def _on_core(self, msg: Msg) -> None:
        await self._received.put(SourceMessage(msg.subject, _headers(msg), msg.data, None, None, None))

    async def _on_durable(self, msg: Msg) -> None:
        meta = msg.metadata
        key = f"{meta.stream}:{meta.sequence.stream}"
        message = SourceMessage(msg.subject, _headers(msg), msg.data, meta.timestamp, key, msg)
        await self._received.put(message)

    async def messages(self) -> AsyncIterator[SourceMessage]:
        """The messages as they arrive; ends when the connection is closed."""
        assert self.sub is not None
        while (msg := await self._received.get()) is not None:
            yield msg

    async def ack(self, message: SourceMessage) -> None:
        if message.handle is not None and self.nc is not None and not self.nc.is_closed:
            await message.handle.ack()

    async def close(self) -> None:
        """Never raises, never hangs."""
        self._end()
        nc, self.nc = self.nc, None
        if nc is not None:
            task = asyncio.ensure_future(nc.close())
            await asyncio.wait({task}, timeout=2)
            if not task.done():
                task.cancel()
            elif not task.cancelled():
                task.exception()
        if self._creds:
            with contextlib.suppress(OSError):
                os.unlink(self._creds)
            self._creds = None

    def _end(self) -> None:
        """Ends messages(): what it has not yielded yet is dropped (a durable consumer redelivers it)."""
        while self._received.full():
            self._received.get_nowait()
        self._received.put_nowait(None)

    async def _closed(self) -> None:
        self._end()

    async def _disconnected(self) -> None:
        if self.nc is not None and not self.nc.is_closed:
            self.on_down(f"disconnected from {self.url}; reconnecting")

    async def _reconnected(self) -> None:
        self.on_up()

    async def _error(self, exc: Exception) -> None:
        if isinstance(exc, SlowConsumerError):
            self.on_dropped(str(exc))
            return
        if self.nc is not None and not self.nc.is_connected and not self.nc.is_closed:
            self.on_down(f"{type(exc).__name__}: {exc}")
