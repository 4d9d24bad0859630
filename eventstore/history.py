"""Executions' histories in the EVENTS streams (one message per fold step) and their snapshots."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from nats.aio.msg import Msg
from nats.js import api as jsapi
from nats.js.errors import APIError, NotFoundError

from engine.core.errors import ConcurrencyConflict, ServerError
from engine.core.events import Event, decode, encode
from engine.core.ports import StoredStep, Subscription
from eventstore import subjects as S
from eventstore.jetstream import OCC_CONFLICTS, Connection, json_encoder

_READ_BATCH = 256


class History(Connection):
    """The event log (``engine.core.ports.EventLog``) and the snapshots (``Snapshots``)."""

    async def append(self, execution_id: str, events: list[Event], expected_last_seq: int) -> int:
        """Append one fold step; ``expected_last_seq`` is 0 for a new execution. Returns the new seq."""
        headers = {
            "Nats-Expected-Last-Subject-Sequence": str(expected_last_seq),
            "Nats-Msg-Id": f"{execution_id}:{expected_last_seq}",
        }
        payload = encode(events)
        self.check_size(payload, headers)
        try:
            return await self.batcher(S.events_stream(execution_id)).publish(
                S.events(execution_id), payload, headers
            )
        except APIError as exc:
            if exc.err_code in OCC_CONFLICTS:
                raise ConcurrencyConflict(
                    f"execution {execution_id}: another writer appended after seq {expected_last_seq}"
                ) from exc
            raise

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

    async def read_from_leader(self, execution_id: str, after: int, upto: int) -> list[StoredStep]:
        """The steps after ``after`` up to ``upto``, from the stream's leader (one request a step:
        only for what a lagging replica had not served)."""
        stream, subject = S.events_stream(execution_id), S.events(execution_id)
        out: list[StoredStep] = []
        seq = after + 1
        while seq <= upto:
            msg = await self.js.get_msg(stream, seq=seq, subject=subject, next=True)
            got = int(msg.seq or 0)
            if got > upto or not got:
                break
            out.append((got, decode(msg.data or b"")))
            seq = got + 1
        return out

    async def read(self, execution_id: str) -> list[StoredStep]:
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

    async def read_after(self, execution_id: str, after: int) -> list[StoredStep]:
        """The fold steps of one execution after stream sequence ``after`` (a snapshot's), oldest first.

        Batched direct gets (server 2.11+): one request returns up to 256 steps, from any replica,
        with no consumer to create (an ordered consumer per read cost ~10x more on a takeover).
        """
        stream, subject = S.events_stream(execution_id), S.events(execution_id)
        out: list[StoredStep] = []
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
            request = json_encoder.encode({"seq": start, "next_by_subj": subject, "batch": batch})
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

    async def watch_events(
        self, execution_id: str, on_events: Callable[[list[Event]], Awaitable[None]]
    ) -> Subscription:
        async def on_msg(msg: Msg) -> None:
            await on_events(decode(msg.data))

        sub: Subscription = await self.nc.subscribe(S.events(execution_id), cb=on_msg)
        return sub
