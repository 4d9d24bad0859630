"""Group commit: publishes to one stream that meet in time leave together, as one atomic batch.

With ``sync_interval: always`` the server syncs its file once per stored message, but once per
committed atomic batch: 2,000 single publishes cost 2,022 fsyncs here, the same 2,000 messages in
batches of 50 cost 182 (strace, nats-server 2.15). Executions are independent, so their steps, the
workers' reports, the dispatches and the log lines of many executions can share one commit.

A commit is slow alone, though (about 4.5 syncs, 4-13 ms against 0.5-1.2 ms for a plain publish
here), so a batch is only worth it from about eight messages. Up to ``in_flight`` (64) plain publishes
leave at once, side by side: a lone execution waits for nothing. What arrives while they are all
outstanding queues, and a queue of eight messages or more leaves as one atomic batch when one of
them ends: the busier the stream, the larger the batch, and the fewer syncs per message.

A batch is all or nothing (every message's own ``Nats-Expected-Last-Subject-Sequence`` and
``Nats-Msg-Id`` are checked before any is stored). When the server refuses it (one execution's
append conflicts, or a message repeats a stored id), its messages are published again one by one,
in order, so that each caller gets its own answer: the conflict for the one that conflicts, a
duplicate's acknowledgement for the duplicate, and a stored sequence for every other.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec
from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.js.errors import APIError, NoStreamResponseError

# A commit costs several syncs (about 4.5 measured) where a plain publish costs one: a batch pays
# from about eight messages on, and a lone one is slower (4-13 ms against 0.5-1.2 ms here).
_MIN_ATOMIC = 8
_MAX_MESSAGES = 256  # the server takes up to 1,000 a batch; a smaller one keeps a commit's ack quick
_MAX_BYTES = 4 * 1024 * 1024
_TIMEOUT_S = 10.0


class _Ack(msgspec.Struct):
    """The commit's acknowledgement: the last message's sequence and how many were stored."""

    seq: int = 0
    count: int = 0
    error: dict[str, object] | None = None


_decode_ack = msgspec.json.Decoder(_Ack).decode


@dataclass(slots=True)
class _Pending:
    """One message on its way, and who waits for its sequence."""

    subject: str
    payload: bytes
    headers: dict[str, str] | None
    answer: asyncio.Future[int] | None  # None: nobody waits (a log line)
    size: int = field(init=False)

    def __post_init__(self) -> None:
        self.size = len(self.payload) + len(self.subject) + 64


@dataclass
class BatchCounts:
    """What a process's batchers sent: messages, and commits (one fsync each with sync always)."""

    messages: int = 0
    commits: int = 0
    refused_batches: int = 0


COUNTS = BatchCounts()


class Batcher:
    """The publishes of one stream (atomic batches never span two streams)."""

    def __init__(
        self,
        nc: Client,
        # 64, not 8: with 8 the worker processes of the 5-process shape queued their reports (669-768
        # taskruns/s against 735-845 before group commit, alternated); with 64, 706-784 against 714.
        in_flight: int = 64,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self._nc = nc
        self._in_flight = in_flight
        self._flying = 0
        self._queue: list[_Pending] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._on_error = on_error  # for publishes nobody waits for

    async def publish(self, subject: str, payload: bytes, headers: dict[str, str] | None) -> int:
        """Store one message; returns its stream sequence. Raises what ``js.publish`` would raise."""
        answer: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(subject, payload, headers, answer))
        self._kick()
        return await answer

    def post(self, subject: str, payload: bytes, headers: dict[str, str] | None = None) -> None:
        """Store one message without waiting (a failure goes to ``on_error``)."""
        self._queue.append(_Pending(subject, payload, headers, None))
        self._kick()

    def _kick(self) -> None:
        while self._queue and self._flying < self._in_flight:
            if len(self._queue) < _MIN_ATOMIC:
                items, self._queue = self._queue[:1], self._queue[1:]
                atomic = False
            else:
                take, size = 0, 0
                for item in self._queue:
                    if take and (take >= _MAX_MESSAGES or size + item.size > _MAX_BYTES):
                        break
                    take += 1
                    size += item.size
                items, self._queue = self._queue[:take], self._queue[take:]
                atomic = True
            self._flying += 1
            task = asyncio.get_running_loop().create_task(self._send(items, atomic))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, items: list[_Pending], atomic: bool) -> None:
        try:
            if not atomic or not await self._atomic(items):
                for item in items:  # in order: two inputs of one execution keep theirs
                    await self._single(item)
        except BaseException as exc:  # a timeout, a closed connection: every waiter hears it
            for item in items:
                self._fail(item, exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            self._flying -= 1
            if self._queue:
                self._kick()

    async def _single(self, item: _Pending) -> None:
        """One plain publish: ``js.publish`` as nats-py does it, the acknowledgement decoded by
        msgspec (a third of its CPU went to ``json.loads`` and the ``PubAck`` dataclass)."""
        COUNTS.messages += 1
        COUNTS.commits += 1
        try:
            try:
                reply = await self._nc.request(
                    item.subject, item.payload, timeout=_TIMEOUT_S, headers=item.headers
                )
            except NoRespondersError as exc:
                raise NoStreamResponseError from exc
            ack = _decode_ack(reply.data)
            if ack.error is not None:
                raise APIError.from_error(ack.error)
        except Exception as exc:
            self._fail(item, exc)
            return
        if item.answer is not None and not item.answer.done():
            item.answer.set_result(ack.seq)

    async def _atomic(self, items: list[_Pending]) -> bool:
        """Publish ``items`` as one batch; False when the server refused it (nothing was stored)."""
        batch_id = uuid.uuid4().hex
        last = len(items) - 1
        for i, item in enumerate(items):
            headers = dict(item.headers or {})
            headers["Nats-Batch-Id"] = batch_id
            headers["Nats-Batch-Sequence"] = str(i + 1)
            if i < last:
                await self._nc.publish(item.subject, item.payload, headers=headers)
                continue
            headers["Nats-Batch-Commit"] = "1"
            reply = await self._nc.request(item.subject, item.payload, headers=headers, timeout=_TIMEOUT_S)
        ack = _decode_ack(reply.data)
        if ack.error is not None or ack.count != len(items):
            COUNTS.refused_batches += 1
            return False
        COUNTS.messages += len(items)
        COUNTS.commits += 1
        # A batch is stored in one piece: its messages have consecutive sequences.
        first = ack.seq - ack.count + 1
        for i, item in enumerate(items):
            if item.answer is not None and not item.answer.done():
                item.answer.set_result(first + i)
        return True

    def _fail(self, item: _Pending, exc: BaseException) -> None:
        if item.answer is None:
            if self._on_error is not None and not isinstance(exc, asyncio.CancelledError):
                self._on_error(exc)
        elif not item.answer.done():
            if isinstance(exc, asyncio.CancelledError):
                item.answer.cancel()
            else:
                item.answer.set_exception(exc)

    async def drain(self) -> None:
        """Wait until everything published so far is answered."""
        while self._queue or self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
            if self._queue and not self._tasks:
                self._kick()
