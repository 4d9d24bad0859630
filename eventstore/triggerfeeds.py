"""What the trigger role reads from the store besides its own state: the flows as they are
deployed, and every execution step as it is appended.

The trigger service keeps an index of the deployed flows (a snapshot, then every new revision in
order) and evaluates Flow triggers on each step of every execution (a durable consumer per EVENTS
shard, shared by the services of one queue group). The NATS handles stay here: the service sees
:class:`FlowRevision` values and :class:`StepDelivery` objects it acks or naks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nats.aio.msg import Msg
from nats.js import api as jsapi
from nats.js.errors import NotFoundError

from engine.core import events as ev
from eventstore import subjects as S
from eventstore.store import FlowRevision, Store


class Subscriptions:
    """Subscriptions opened for a caller, closed together."""

    def __init__(self) -> None:
        self._subs: list[Any] = []

    def add(self, sub: Any) -> None:
        self._subs.append(sub)

    async def close(self) -> None:
        subs, self._subs = self._subs, []
        for sub in subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()


async def follow_flows(
    store: Store, subs: Subscriptions, on_revision: Callable[[FlowRevision], None]
) -> None:
    """``on_revision`` for the latest revision of every deployed flow, then for each new one in order."""
    info = await store.js.stream_info(S.FLOWS)
    last = int(info.state.last_seq or 0)
    for rev in await store.list_flows():
        on_revision(rev)

    async def on_flow(msg: Msg) -> None:
        headers = msg.headers or {}
        ns, fid = S.parse_flow(msg.subject)
        on_revision(
            FlowRevision(
                ns,
                fid,
                int(headers.get("Engine-Revision", "1")),
                (msg.data or b"").decode(),
                int(msg.metadata.sequence.stream),
                headers.get("Engine-Deleted") == "1",
            )
        )

    subs.add(
        await store.js.subscribe(
            "flow.>",
            stream=S.FLOWS,
            ordered_consumer=True,
            cb=on_flow,
            config=jsapi.ConsumerConfig(
                deliver_policy=jsapi.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=last + 1
            ),
        )
    )


@dataclass
class StepDelivery:
    """One execution step delivered to a consumer: ack it once handled, nak it to see it again."""

    execution_id: str
    data: bytes
    msg: Msg

    @property
    def stored_at(self) -> datetime:
        """When the server stored the step."""
        return self.msg.metadata.timestamp

    @property
    def seq(self) -> int:
        """The step's stream sequence (parsed from the reply subject when asked: most steps are
        acknowledged without it, when no flow trigger listens)."""
        return int(self.msg.metadata.sequence.stream)

    async def ack(self) -> None:
        await self.msg.ack()

    async def nak(self, delay: float) -> None:
        await self.msg.nak(delay=delay)


async def consume_steps(
    store: Store,
    subs: Subscriptions,
    durable: str,
    on_step: Callable[[int, StepDelivery], Awaitable[None]],
    inactive_threshold: float | None = None,
    since: datetime | None = None,
) -> None:
    """Every new execution step to ``on_step(shard, delivery)``, through a durable consumer per shard.

    Services sharing ``durable`` share the steps (queue group); an unacked step is delivered again.
    A consumer made here starts with the steps stored from ``since`` on (None: from now on); one
    that exists goes on from where it was.
    """
    for k in range(S.SHARDS):

        async def on_msg(msg: Msg, k: int = k) -> None:
            step = StepDelivery(msg.subject.split(".", 2)[2], msg.data, msg)
            await on_step(k, step)

        config = jsapi.ConsumerConfig(
            deliver_policy=jsapi.DeliverPolicy.NEW if since is None else jsapi.DeliverPolicy.BY_START_TIME,
            opt_start_time=since,
            ack_wait=60,
            max_ack_pending=10_000,
            inactive_threshold=inactive_threshold,
        )
        subs.add(
            await store.js.subscribe(
                "ev.>",
                queue=durable,
                durable=durable,
                stream=f"{S.EVENTS}_{k}",
                cb=on_msg,
                manual_ack=True,
                config=config,
            )
        )


async def steps_backlog(store: Store, durable: str) -> int | None:
    """The steps the consumers ``durable`` still hold: stored and not delivered yet, or delivered and
    not acknowledged (a service acks a step once it has handled it and sent its creations). None
    while a shard has no such consumer (the service has not subscribed yet)."""
    held = 0
    for k in range(S.SHARDS):
        try:
            info = await store.js.consumer_info(f"{S.EVENTS}_{k}", durable)
        except NotFoundError:
            return None
        held += int(info.num_pending or 0) + int(info.num_ack_pending or 0)
    return held


async def first_step(store: Store, execution_id: str) -> list[ev.Event]:
    """The events of an execution's first step (its ExecutionCreated); empty when it cannot be read."""
    try:
        msg = await store.js.get_msg(
            S.events_stream(execution_id), seq=1, subject=S.events(execution_id), direct=True, next=True
        )
    except Exception:
        return []
    return ev.decode(msg.data or b"")
