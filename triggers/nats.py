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

The NATS client is ``eventstore.natssource``; this module decides what to subscribe to and what
each message starts. The client reconnects forever; the listener logs one warning while the server
is away and one line when it is back. If the server is down when the listener starts, it retries
the same way.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from engine.clock import utcnow
from engine.core.tree import make_id
from engine.logs import get_logger
from eventstore.natssource import POLICIES, Credentials, NatsSource, SourceMessage
from plugins.core.trigger_types import DELIVER_POLICIES, NATS_REALTIME_TYPES
from triggers.realtime import RealtimeEvent, RealtimeSource, SourceError, register_realtime

log = get_logger("triggers.realtime")

DROPPED_LOG_EVERY = 10.0  # seconds: a flood of drops is one warning with a count, not one per message


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _optional(value: Any) -> str | None:
    return None if value is None else str(value)


@register_realtime
class NatsRealtime(RealtimeSource):
    types = NATS_REALTIME_TYPES

    def __init__(self, props: dict[str, Any], where: str) -> None:
        super().__init__(props, where)
        self.client = NatsSource(f"engine realtime {where}", self.down, self.up, self._dropped)
        self.dropped = 0  # messages of a core subscription dropped because the trigger fell behind
        self._dropped_said = 0.0

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
            raise SourceError(f"{self.where}: deliverPolicy {policy!r} is not one of {', '.join(POLICIES)}")
        if policy == "ByStartSequence":
            raise SourceError(f"{self.where}: deliverPolicy ByStartSequence needs a sequence: use since")
        return url, subject, durable

    def _since(self) -> datetime | None:
        since = self.props.get("since")
        if not since:
            return None
        try:
            return datetime.fromisoformat(str(since).replace("Z", "+00:00"))
        except ValueError:
            raise SourceError(f"{self.where}: since {since!r} is not an ISO date-time") from None

    async def start(self) -> None:
        url, subject, durable = self._check()
        credentials = Credentials(
            username=_optional(self.props.get("username")),
            password=_optional(self.props.get("password")),
            token=_optional(self.props.get("token")),
            creds=str(self.props["creds"]) if self.props.get("creds") else None,
        )
        await self.client.connect(url, credentials)
        if durable is None:
            await self.client.subscribe(subject, queue=f"engine-realtime-{_group(self)}")
            return
        batch = max(1, int(self.props.get("batchSize") or 10))
        policy = str(self.props.get("deliverPolicy") or "All")
        await self.client.subscribe_durable(subject, durable, batch, policy, self._since())

    async def events(self) -> AsyncIterator[RealtimeEvent]:
        async for msg in self.client.messages():
            stamp = _iso(msg.timestamp) if msg.timestamp is not None else utcnow()
            variables = {
                "subject": msg.subject,
                "headers": msg.headers,
                "data": _text(msg.data),
                "timestamp": stamp,
            }
            yield RealtimeEvent(variables, key=msg.key, handle=msg)

    async def ack(self, event: RealtimeEvent) -> None:
        if isinstance(event.handle, SourceMessage):
            await self.client.ack(event.handle)

    async def stop(self) -> None:
        await self.client.close()

    def _dropped(self, reason: str) -> None:
        self.dropped += 1
        now = time.monotonic()
        if now - self._dropped_said >= DROPPED_LOG_EVERY:
            self._dropped_said = now
            log.warning(
                "triggers.realtime_dropped", trigger=self.where, dropped=self.dropped, error=reason[:200]
            )


def _group(source: NatsRealtime) -> str:
    """A queue group per trigger: schedulers running the same trigger share its messages."""
    return make_id("realtime-group", source.where)
