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

The acknowledgements come back on one wildcard subscription per batcher, matched by a counter in
the reply subject: no task, no timer and no random token per message (``nc.request`` cost a third of
a publish's CPU here); one timer sweeps what waited past the timeout.

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

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.errors import APIError, NoStreamResponseError

# A commit costs several syncs (about 4.5 measured) where a plain publish costs one: a batch pays
# from about eight messages on, and a lone one is slower (4-13 ms against 0.5-1.2 ms here).
_MIN_ATOMIC = 8
_MAX_MESSAGES = 256  # the server takes up to 1,000 a batch; a smaller one keeps a commit's ack quick
_MAX_BYTES = 4 * 1024 * 1024
_TIMEOUT_S = 10.0
# A lingering batcher's posts wait up to its ``linger_s`` for company, or until this many queue.
_LINGER_COUNT = 32


class _Ack(msgspec.Struct):
    """The commit's acknowledgement: the last message's sequence and how many were stored."""

    seq: int = 0
    count: int = 0
    error: dict[str, object] | None = None


_decode_ack = msgspec.json.Decoder(_Ack).decode


class _Pending(msgspec.Struct):
    """One message on its way, and who waits for its sequence."""

    subject: str
    payload: bytes
    headers: dict[str, str] | None
    answer: asyncio.Future[int] | None  # None: nobody waits (a log line)
    alone: bool = False  # its batch was refused: it goes on its own, to get its own answer

    @property
    def size(self) -> int:
        return len(self.payload) + len(self.subject) + 64


class _Sent(msgspec.Struct):
    """A publish or a commit on its way: the messages its acknowledgement answers."""

    items: list[_Pending]
    atomic: bool
    deadline: float


class BatchCounts(msgspec.Struct):
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
        timeout: float = _TIMEOUT_S,
        linger_s: float = 0.0,
    ) -> None:
        self._nc = nc
        self._in_flight = in_flight
        self._timeout = timeout
        # Posts nobody reads at once (cleared marks) wait to leave as one commit; not log lines: a
        # line sent before its task's report is read by whoever sees the execution end.
        self._linger_s = linger_s
        self._queue: list[_Pending] = []
        self._waiting: dict[str, _Sent] = {}  # by reply token, in the order sent
        self._on_error = on_error  # for publishes nobody waits for
        self._inbox = ""
        self._sub: Subscription | None = None
        self._token = 0
        self._pump: asyncio.Task[None] | None = None
        self._sweep: asyncio.TimerHandle | None = None
        self._linger: asyncio.TimerHandle | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    async def publish(self, subject: str, payload: bytes, headers: dict[str, str] | None) -> int:
        """Store one message; returns its stream sequence. Raises what ``js.publish`` would raise."""
        answer: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        item = _Pending(subject, payload, headers, answer)
        if (
            self._sub is not None
            and self._pump is None
            and len(self._waiting) < self._in_flight
            and (not self._queue or self._only_lingering_apart_from(subject))
        ):
            await self._send([item], atomic=False)  # nothing before it: no hop through the pump
        else:
            self._queue.append(item)
            self._kick()
        return await answer

    def post(self, subject: str, payload: bytes, headers: dict[str, str] | None = None) -> None:
        """Store one message without waiting (a failure goes to ``on_error``)."""
        self._queue.append(_Pending(subject, payload, headers, None))
        if not self._linger_s or len(self._queue) >= _LINGER_COUNT:
            self._kick()
        elif self._linger is None:
            self._idle.clear()
            self._linger = asyncio.get_running_loop().call_later(self._linger_s, self._lingered)

    def _only_lingering_apart_from(self, subject: str) -> bool:
        """Is the queue only posts lingering for company, none to ``subject``? Then a publish, which
        someone waits for, need not join them: queued behind eight or more, it would wait for their
        atomic commit (4-13 ms here) where it costs about 1 ms alone. One to the same subject keeps
        its place (a mark written again after its clear must be stored after it)."""
        return self._linger is not None and all(item.subject != subject for item in self._queue)

    def _lingered(self) -> None:
        self._linger = None
        self._kick()

    def _kick(self) -> None:
        if self._queue:
            self._idle.clear()
            if self._pump is None and len(self._waiting) < self._in_flight:
                self._pump = asyncio.get_running_loop().create_task(self._run_pump())

    async def _run_pump(self) -> None:
        """Send what is queued while acknowledgements are awaited for fewer than ``in_flight``."""
        try:
            if self._sub is None:
                self._inbox = self._nc.new_inbox() + "."
                self._sub = await self._nc.subscribe(self._inbox + "*", cb=self._on_reply)
            while self._queue and len(self._waiting) < self._in_flight:
                items, atomic = self._take()
                await self._send(items, atomic)
        except BaseException as exc:  # the subscription failed (a closed connection): all waiters hear it
            items, self._queue = self._queue, []
            for item in items:
                self._fail(item, exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            self._pump = None
            self._settle()

    def _take(self) -> tuple[list[_Pending], bool]:
        queue = self._queue
        if len(queue) < _MIN_ATOMIC or queue[0].alone:
            return [queue.pop(0)], False
        take, size = 0, 0
        for item in queue:
            if item.alone or (take and (take >= _MAX_MESSAGES or size + item.size > _MAX_BYTES)):
                break
            take += 1
            size += item.size
        items, self._queue = queue[:take], queue[take:]
        return items, True

    async def _send(self, items: list[_Pending], atomic: bool) -> None:
        self._token += 1
        token = str(self._token)
        loop = asyncio.get_running_loop()
        self._waiting[token] = _Sent(items, atomic, loop.time() + self._timeout)
        self._idle.clear()
        if self._sweep is None:
            self._sweep = loop.call_later(1.0, self._expire)
        reply = self._inbox + token
        try:
            if not atomic:
                COUNTS.messages += 1
                COUNTS.commits += 1
                item = items[0]
                await self._nc.publish(item.subject, item.payload, reply=reply, headers=item.headers)
                return
            batch_id = uuid.uuid4().hex
            last = len(items) - 1
            for i, item in enumerate(items):
                headers = dict(item.headers or {})
                headers["Nats-Batch-Id"] = batch_id
                headers["Nats-Batch-Sequence"] = str(i + 1)
                if i < last:
                    await self._nc.publish(item.subject, item.payload, headers=headers)
                else:
                    headers["Nats-Batch-Commit"] = "1"
                    await self._nc.publish(item.subject, item.payload, reply=reply, headers=headers)
        except BaseException as exc:  # a closed connection: nothing (or half a batch: dropped) was stored
            if self._waiting.pop(token, None) is not None:
                for item in items:
                    self._fail(item, exc)
            if isinstance(exc, asyncio.CancelledError):
                raise

    async def _on_reply(self, msg: Msg) -> None:
        sent = self._waiting.pop(msg.subject[len(self._inbox) :], None)
        if sent is None:
            return  # it timed out meanwhile: its callers heard so
        try:
            if msg.headers and msg.headers.get("Status") == "503":
                raise NoStreamResponseError  # no stream takes this subject (no responders)
            ack = _decode_ack(msg.data)
            if sent.atomic:
                self._committed(sent.items, ack)
            elif ack.error is not None:
                raise APIError.from_error(ack.error)
            else:
                answer = sent.items[0].answer
                if answer is not None and not answer.done():
                    answer.set_result(ack.seq)
        except Exception as exc:
            for item in sent.items:
                self._fail(item, exc)
        self._kick()
        self._settle()

    def _committed(self, items: list[_Pending], ack: _Ack) -> None:
        if ack.error is not None or ack.count != len(items):
            # Nothing was stored: each goes again on its own, first, in order (two inputs of one
            # execution keep theirs), so that each caller gets its own answer.
            COUNTS.refused_batches += 1
            for item in items:
                item.alone = True
            self._queue[:0] = items
            return
        COUNTS.messages += len(items)
        COUNTS.commits += 1
        # A batch is stored in one piece: its messages have consecutive sequences.
        first = ack.seq - ack.count + 1
        for i, item in enumerate(items):
            if item.answer is not None and not item.answer.done():
                item.answer.set_result(first + i)

    def _expire(self) -> None:
        """Fail what waited past the timeout (sent in order, so the oldest come first)."""
        self._sweep = None
        now = asyncio.get_running_loop().time()
        while self._waiting:
            token, sent = next(iter(self._waiting.items()))
            if sent.deadline > now:
                break
            del self._waiting[token]
            for item in sent.items:
                self._fail(item, NatsTimeoutError())
        if self._waiting:
            self._sweep = asyncio.get_running_loop().call_later(1.0, self._expire)
        self._kick()
        self._settle()

    def _settle(self) -> None:
        if not self._queue and not self._waiting and self._pump is None:
            self._idle.set()

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
        await self._idle.wait()
