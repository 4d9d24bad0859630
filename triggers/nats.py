"""``io.kestra.plugin.nats.RealtimeTrigger``: one execution per message of a NATS subject.

Properties as Kestra's plugin-nats: ``url`` (``nats://host:port``, credentials may be in it),
``subject``, ``username``/``password``, ``token``, ``creds`` (the content of a .creds file),
``durableId``, ``deliverPolicy`` (All, Last, New, ByStartTime, LastPerSubject), ``since`` (ISO
date-time: ByStartTime), ``batchSize`` (the consumer's max unacknowledged messages is 10x it).

- With ``durableId``: a durable JetStream consumer (push, explicit acks, deliver group =
  durableId so several schedulers share it). The subject must be covered by a stream on the
  source server. Each message is acked once its execution's creation is acknowledged; the
  execution id derives from (stream, stream sequence), so a redelivery creates nothing twice.
- Without ``durableId``: a core NATS subscription (queue group per trigger so several schedulers
  share it): at-most-once, messages published while no listener runs are not seen, ids are fresh.
  (Kestra uses an ephemeral JetStream consumer here; a core subscription also works with a plain
  NATS server and costs no stream.)

``trigger.data`` (text), ``trigger.headers`` (name -> list of values), ``trigger.subject``,
``trigger.timestamp`` (the stream's timestamp, or the receive time for core NATS).

The client reconnects forever; the listener logs one warning while the server is away and one
line when it is back. If the server is down when the listener starts, it retries the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import nats
from nats.aio.msg import Msg
from nats.js import api as jsapi
from nats.js.errors import NotFoundError

from engine.clock import utcnow
from triggers.realtime import RealtimeEvent, RealtimeSource, SourceError, register_realtime
from triggers.types import DELIVER_POLICIES, NATS_REALTIME_TYPES

_POLICIES = {
    "All": jsapi.DeliverPolicy.ALL,
    "Last": jsapi.DeliverPolicy.LAST,
    "New": jsapi.DeliverPolicy.NEW,
    "ByStartTime": jsapi.DeliverPolicy.BY_START_TIME,
    "LastPerSubject": jsapi.DeliverPolicy.LAST_PER_SUBJECT,
}


def _headers(msg: Msg) -> dict[str, list[str]]:
    return {str(k): [str(v)] for k, v in (msg.headers or {}).items()}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


@register_realtime
class NatsRealtime(RealtimeSource):
    types = NATS_REALTIME_TYPES

    def __init__(self, props: dict[str, Any], where: str) -> None:
        super().__init__(props, where)
        self.nc: Any = None
        self.sub: Any = None
        self.stream: str | None = None
        self._creds: str | None = None
        self._closed = asyncio.Event()

    def _check(self) -> tuple[str, str, str | None]:
        url = str(self.props.get("url") or "").strip()
        subject = str(self.props.get("subject") or "").strip()
        if not url:
            raise SourceError(f"{self.where}: 'url' is empty")
        if not subject:
            raise SourceError(f"{self.where}: 'subject' is empty")
        durable = self.props.get("durableId")
        durable = str(durable).strip() if durable not in (None, "") else None
        if durable is not None and any(c in durable for c in ". *>"):
            raise SourceError(f"{self.where}: durableId {durable!r} may not contain '.', '*', '>' or spaces")
        policy = str(self.props.get("deliverPolicy") or "All")
        if policy not in DELIVER_POLICIES:
            raise SourceError(f"{self.where}: deliverPolicy {policy!r} is not one of {', '.join(_POLICIES)}")
        if policy == "ByStartSequence":
            raise SourceError(f"{self.where}: deliverPolicy ByStartSequence needs a sequence: use since")
        return url, subject, durable

    async def start(self) -> None:
        url, subject, durable = self._check()
        options: dict[str, Any] = {
            "servers": [url if "://" in url else f"nats://{url}"],
            "allow_reconnect": True,
            "max_reconnect_attempts": -1,  # forever
            "reconnect_time_wait": 0.25,
            "connect_timeout": 2,
            "name": f"engine realtime {self.where}",
            "disconnected_cb": self._disconnected,
            "reconnected_cb": self._reconnected,
            "error_cb": self._error,
            "closed_cb": self._on_closed,
        }
        if self.props.get("username") is not None:
            options["user"] = str(self.props["username"])
            options["password"] = str(self.props.get("password") or "")
        if self.props.get("token") is not None:
            options["token"] = str(self.props["token"])
        if self.props.get("creds"):
            fd, self._creds = tempfile.mkstemp(prefix="engine-nats-", suffix=".creds")
            with os.fdopen(fd, "w") as f:
                f.write(str(self.props["creds"]))
            options["user_credentials"] = self._creds
        self.nc = await nats.connect(**options)
        if durable is None:
            self.sub = await self.nc.subscribe(subject, queue=f"engine-realtime-{_group(self)}")
            return
        js = self.nc.jetstream()
        try:
            self.stream = await js.find_stream_name_by_subject(subject)
        except NotFoundError:
            raise ConnectionError(f"no JetStream stream on {url} covers subject {subject!r}") from None
        batch = max(1, int(self.props.get("batchSize") or 10))
        policy = _POLICIES.get(str(self.props.get("deliverPolicy") or "All"), jsapi.DeliverPolicy.ALL)
        since = self.props.get("since")
        config = jsapi.ConsumerConfig(
            durable_name=durable,
            deliver_group=durable,
            ack_policy=jsapi.AckPolicy.EXPLICIT,
            ack_wait=30,
            max_ack_pending=max(100, batch * 10),
            deliver_policy=policy,
            filter_subject=subject,
        )
        if since:
            config.deliver_policy = jsapi.DeliverPolicy.BY_START_TIME
            try:
                config.opt_start_time = datetime.fromisoformat(str(since).replace("Z", "+00:00"))
            except ValueError:
                raise SourceError(f"{self.where}: since {since!r} is not an ISO date-time") from None
        self.sub = await js.subscribe(
            subject, queue=durable, durable=durable, stream=self.stream, manual_ack=True, config=config
        )

    async def events(self) -> AsyncIterator[RealtimeEvent]:
        assert self.sub is not None
        durable = self.stream is not None
        async for msg in self.sub.messages:
            if durable:
                meta = msg.metadata
                yield RealtimeEvent(
                    {
                        "subject": msg.subject,
                        "headers": _headers(msg),
                        "data": _text(msg.data),
                        "timestamp": _iso(meta.timestamp),
                    },
                    key=f"{meta.stream}:{meta.sequence.stream}",
                    handle=msg,
                )
            else:
                yield RealtimeEvent(
                    {
                        "subject": msg.subject,
                        "headers": _headers(msg),
                        "data": _text(msg.data),
                        "timestamp": utcnow(),
                    }
                )

    async def ack(self, event: RealtimeEvent) -> None:
        if event.handle is not None and self.nc is not None and not self.nc.is_closed:
            await event.handle.ack()

    async def stop(self) -> None:
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

    async def _disconnected(self) -> None:
        if self.nc is not None and not self.nc.is_closed:
            self.down(f"disconnected from {self.props.get('url')}; reconnecting")

    async def _reconnected(self) -> None:
        self.up()

    async def _error(self, exc: Exception) -> None:
        if self.nc is not None and not self.nc.is_connected and not self.nc.is_closed:
            self.down(f"{type(exc).__name__}: {exc}")

    async def _on_closed(self) -> None:
        self._closed.set()


def _group(source: NatsRealtime) -> str:
    """A queue group per trigger: schedulers running the same trigger share its messages."""
    from engine.core.tree import make_id

    return make_id("realtime-group", source.where)
