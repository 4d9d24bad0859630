"""Work-queue streams in memory, as JetStream's behave for the engine.

A ``Queue`` keeps every message until it is acknowledged or terminated. Its ``Consumer``
hands each message to one subscriber at a time and hands it out again when it is not
acknowledged: after ``nak``'s delay, after the ack wait, or at once to a consumer that replaces
it (an executor taking a partition over). A subscriber's handler is awaited message after
message, as nats-py awaits a subscription's callback, so a slow handler holds back its
subscription only.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from engine.logs import get_logger

log = get_logger("engine.testing")


@dataclass(frozen=True)
class Message:
    id: int
    data: bytes
    execution_id: str
    partition: int
    msg_id: str | None = None


class Queue:
    """The messages of one subject filter not yet acknowledged, oldest first."""

    def __init__(self) -> None:
        self.messages: dict[int, Message] = {}
        self.consumer: Consumer | None = None

    def add(self, msg: Message) -> None:
        self.messages[msg.id] = msg
        if self.consumer is not None:
            self.consumer.offer(msg)

    def consume(self, ack_wait: float, max_pending: int) -> Consumer:
        """A fresh consumer: the previous one gets nothing more, what it held comes again at once."""
        if self.consumer is not None:
            self.consumer.close()
        self.consumer = Consumer(self, ack_wait, max_pending)
        return self.consumer


class Consumer:
    def __init__(self, queue: Queue, ack_wait: float, max_pending: int) -> None:
        self.queue = queue
        self.ack_wait = ack_wait
        self.max_pending = max_pending
        self.ready: deque[Message] = deque(queue.messages.values())
        self.inflight: dict[int, int] = {}  # message id -> its delivery's number
        self.deliveries: dict[int, int] = {}  # message id -> how many times it was handed out
        self.closed = False
        self._wakeup = asyncio.Event()
        self._numbers = itertools.count(1)
        self._timers: set[asyncio.TimerHandle] = set()
        if self.ready:
            self._wakeup.set()

    def offer(self, msg: Message) -> None:
        self.ready.append(msg)
        self._wakeup.set()

    def close(self) -> None:
        self.closed = True
        for timer in self._timers:
            timer.cancel()
        self._wakeup.set()

    async def next(self) -> MemoryDelivery:
        """The next message to handle; waits for one (and for room under ``max_pending``)."""
        while True:
            if self.closed:
                raise asyncio.CancelledError
            while self.ready and len(self.inflight) < self.max_pending:
                msg = self.ready.popleft()
                if msg.id not in self.queue.messages or msg.id in self.inflight:
                    continue  # acknowledged meanwhile, or delivered again already
                number = next(self._numbers)
                self.inflight[msg.id] = number
                self.deliveries[msg.id] = self.deliveries.get(msg.id, 0) + 1
                self._later(self.ack_wait, self._expire, msg, number)
                return MemoryDelivery(self, msg, number)
            self._wakeup.clear()
            await self._wakeup.wait()

    def settle(self, msg: Message, number: int, *, remove: bool, again_after: float | None = None) -> None:
        """An acknowledgement (``remove``), a termination (``remove``) or a nak (``again_after``)."""
        if self.closed:
            return  # a deposed consumer's answer: the message goes to its new consumer
        if self.inflight.get(msg.id) == number:
            del self.inflight[msg.id]
            self._wakeup.set()
        if remove:
            self.queue.messages.pop(msg.id, None)
            self.deliveries.pop(msg.id, None)
        elif again_after is not None:
            self._later(again_after, self.offer, msg)

    def _expire(self, msg: Message, number: int) -> None:
        if self.inflight.get(msg.id) == number:  # not acknowledged within the ack wait
            del self.inflight[msg.id]
            self.offer(msg)

    def _later(self, delay: float, fn: Callable[..., None], *args: Any) -> None:
        def fire() -> None:
            self._timers.discard(handle)
            if not self.closed:
                fn(*args)

        handle = asyncio.get_running_loop().call_later(delay, fire)
        self._timers.add(handle)


class MemoryDelivery:
    """``engine.core.ports.InputDelivery`` for a message of a memory queue."""

    __slots__ = ("_consumer", "_msg", "_number")

    def __init__(self, consumer: Consumer, msg: Message, number: int) -> None:
        self._consumer, self._msg, self._number = consumer, msg, number

    @property
    def data(self) -> bytes:
        return self._msg.data

    @property
    def redelivered(self) -> bool:
        return self._consumer.deliveries.get(self._msg.id, 0) > 1

    @property
    def execution_id(self) -> str:
        return self._msg.execution_id

    @property
    def partition(self) -> int:
        return self._msg.partition

    async def ack(self) -> None:
        self._consumer.settle(self._msg, self._number, remove=True)

    async def nak(self, delay: float | None = None) -> None:
        self._consumer.settle(self._msg, self._number, remove=False, again_after=delay or 0.0)

    async def term(self) -> None:
        self._consumer.settle(self._msg, self._number, remove=True)


class Pump:
    """A subscription: hands the consumer's messages to ``handler``, one after the other."""

    def __init__(self, consumer: Consumer, handler: Callable[[MemoryDelivery], Awaitable[None]]) -> None:
        self.consumer = consumer
        self._task = asyncio.create_task(self._run(consumer, handler))

    @staticmethod
    async def _run(consumer: Consumer, handler: Callable[[MemoryDelivery], Awaitable[None]]) -> None:
        while True:
            delivery = await consumer.next()
            try:
                await handler(delivery)
            except Exception:  # nats-py reports a failing callback and goes on: so does this
                log.exception("memory.handler_failed")

    async def unsubscribe(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class Callbacks:
    """A core-NATS-like subject: fire-and-forget calls to whoever listens now."""

    def __init__(self) -> None:
        self.listeners: dict[int, Callable[..., Awaitable[None]]] = {}
        self._ids = itertools.count()
        self._tasks: set[asyncio.Task[None]] = set()

    def listen(self, cb: Callable[..., Awaitable[None]]) -> Listening:
        key = next(self._ids)
        self.listeners[key] = cb
        return Listening(self, key)

    def fire(self, *args: Any) -> None:
        for cb in list(self.listeners.values()):
            task = asyncio.ensure_future(cb(*args))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)


class Listening:
    def __init__(self, callbacks: Callbacks, key: int) -> None:
        self._callbacks, self._key = callbacks, key

    async def unsubscribe(self) -> None:
        self._callbacks.listeners.pop(self._key, None)
