"""Executor inputs (INBOX streams), worker work (WORK streams), kill notices and executor pings."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import api as jsapi
from nats.js.errors import APIError, NotFoundError

from engine.core.events import Input, encode_input
from engine.core.ports import Delivery, InputDelivery, Subscription
from eventstore import subjects as S
from eventstore.jetstream import Connection, JetStreamDelivery, patiently


class Messaging(Connection):
    """``Inputs``, ``InputConsumers``, ``WorkQueue``, ``Kills`` and ``Presence`` on NATS."""

    # ---- inputs and work -------------------------------------------------------------

    async def send_input(self, execution_id: str, item: Input, msg_id: str | None = None) -> None:
        headers = {"Nats-Msg-Id": msg_id} if msg_id else None
        stream, subject = S.inbox_stream(execution_id), S.inbox(execution_id)
        await self._publish_once(stream, subject, encode_input(item), headers)

    async def pending_input(self, execution_id: str, msg_id: str) -> bytes | None:
        # The inbox is a work queue: what is still stored is what the executor has not consumed.
        # A few messages per execution at most; asked only for a work message delivered again.
        stream, subject, seq = S.inbox_stream(execution_id), S.inbox(execution_id), 1
        while True:
            try:
                msg = await self.js.get_msg(stream, seq=seq, subject=subject, next=True)
            except NotFoundError:
                return None
            if (msg.headers or {}).get("Nats-Msg-Id") == msg_id:
                return msg.data or b""
            seq = int(msg.seq or seq) + 1

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
        k = S.shard(execution_id)
        await self._publish_once(f"{S.WORK}_{k}", S.work(group, k), payload, {"Nats-Msg-Id": msg_id})

    async def consume_work(
        self, group: str, on_work: Callable[[Delivery], Awaitable[None]], max_pending: int
    ) -> list[Subscription]:
        """One durable queue consumer of the group per WORK shard, shared by the group's workers."""

        async def on_msg(msg: Msg) -> None:
            await on_work(JetStreamDelivery(msg))

        subs: list[Subscription] = []
        for k in range(S.SHARDS):

            async def subscribe(k: int = k) -> Subscription:
                sub: Subscription = await self.js.subscribe(
                    S.work(group, k),
                    queue=f"workers-{group}",
                    durable=f"workers-{group}",
                    stream=f"{S.WORK}_{k}",
                    cb=on_msg,
                    manual_ack=True,
                    config=jsapi.ConsumerConfig(ack_wait=30, max_ack_pending=max_pending),
                )
                return sub

            # Started while a node is down, the consumer lookup can time out: wait out the election.
            subs.append(await patiently(subscribe, f"subscribing to {S.WORK}_{k}"))
        return subs

    # ---- an executor's partitions ------------------------------------------------------

    async def prepare_executor(self) -> None:
        async def drop_legacy(k: int) -> None:
            # Before partition leases every executor shared one consumer of the whole shard; it
            # would overlap the per-partition ones (a work queue refuses overlapping consumers).
            async def delete() -> None:
                with contextlib.suppress(NotFoundError):
                    await self.js.delete_consumer(f"{S.INBOX}_{k}", "executor")

            await patiently(delete, "removing the shared executor consumer")

        await asyncio.gather(*(drop_legacy(k) for k in range(S.SHARDS)))

    async def consume_inputs(
        self, partition: int, on_input: Callable[[InputDelivery], Awaitable[None]]
    ) -> Subscription:
        """A fresh consumer of the partition's inputs: inputs a previous owner left unacked come at
        once (not after their ack wait), and a deposed owner's subscription gets nothing more."""
        stream, durable = f"{S.INBOX}_{partition % S.SHARDS}", f"executor-p{partition}"
        deliver = self.nc.new_inbox()

        async def on_msg(msg: Msg) -> None:
            await on_input(JetStreamDelivery(msg))

        # Subscribed before the consumer exists, so nothing it pushes is missed.
        sub: Subscription = await self.nc.subscribe(deliver, cb=on_msg)
        config = jsapi.ConsumerConfig(
            durable_name=durable,
            deliver_subject=deliver,
            filter_subject=S.inbox_partition(partition),
            ack_policy=jsapi.AckPolicy.EXPLICIT,
            ack_wait=30,
            max_ack_pending=20_000,
            # Recreated at every change of owner, so its state need not survive anything: in memory
            # it is created in a third of the time. A lost one is noticed (inputs_consumed).
            mem_storage=True,
        )
        try:
            try:
                await self.js.add_consumer(stream, config)
            except APIError:  # it exists (a previous owner's): replace it
                with contextlib.suppress(NotFoundError):
                    await self.js.delete_consumer(stream, durable)
                await self.js.add_consumer(stream, config)
        except BaseException:
            await sub.unsubscribe()
            raise
        return sub

    async def inputs_consumed(self, partition: int, subscription: Subscription) -> bool:
        try:
            info = await self.js.consumer_info(f"{S.INBOX}_{partition % S.SHARDS}", f"executor-p{partition}")
        except NotFoundError:
            return False
        # Recreated by another executor since (a deposed owner's late recreation): it pushes to
        # that executor's inbox, and ours hears nothing (chaos seed 120 left an execution stuck).
        ours: str | None = getattr(subscription, "subject", None)
        theirs: str | None = info.config.deliver_subject
        return theirs is not None and theirs == ours

    # ---- kills and pings ---------------------------------------------------------------

    async def kill(self, execution_id: str) -> None:
        await self.nc.publish(S.kill(execution_id), b"")

    async def watch_kills(self, on_kill: Callable[[str], Awaitable[None]]) -> Subscription:
        async def on_msg(msg: Msg) -> None:
            await on_kill(msg.subject.split(".", 1)[1])

        sub: Subscription = await self.nc.subscribe("kill.>", cb=on_msg)
        return sub

    async def answer_pings(self, executor_id: str) -> Subscription:
        async def pong(msg: Msg) -> None:
            await msg.respond(b"")

        sub: Subscription = await self.nc.subscribe(S.ping(executor_id), cb=pong)
        return sub

    async def is_alive(self, executor_id: str) -> bool:
        """Is that executor's connection up? "No responders" comes from the server at once when not."""
        try:
            await self.nc.request(S.ping(executor_id), b"", timeout=0.5)
        except NoRespondersError:
            return False
        except (TimeoutError, NatsTimeoutError):
            return True  # slow, not gone: its lease will tell
        return True
