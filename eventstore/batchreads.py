"""Reads of many executions at once: what an executor that takes partitions over needs.

An executor that takes a dead peer's partitions gets thousands of inputs for executions it has
never seen, and reads each one's snapshot and tail before its first step. Read one by one, that is
two requests, a subscription and a timer per execution, all in the executor's one Python thread.
Here the snapshots of up to ``_MULTI`` executions come in one multi-subject direct get
(``multi_last``, server 2.11+), and every tail is one batched direct get, all of them sent at once
on one subscription and awaited together.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from nats.aio.msg import Msg

from engine.core.errors import ServerError
from engine.core.events import decode
from engine.core.ports import StoredStep
from eventstore import subjects as S
from eventstore.jetstream import Connection, json_encoder

# Subjects per multi_last request: the server refuses (413) an answer of more than 1024 messages.
_MULTI = 512
_READ_BATCH = 256  # steps per direct get request (as History.read_after)
_TIMEOUT_S = 10.0

# One answer: (subject, stream sequence, data) of each message, in stream order.
_Answer = list[tuple[str, int, bytes]]


class BatchReads(Connection):
    """``get_snapshots`` and ``read_many`` of ``engine.core.ports``."""

    async def get_snapshots(self, execution_ids: Sequence[str]) -> dict[str, bytes]:
        """The latest snapshot of each execution that has one."""
        by_subject = {S.snapshot(eid): eid for eid in execution_ids}
        subjects = list(by_subject)
        requests = [
            (S.SNAPSHOTS, {"multi_last": chunk, "batch": len(chunk)})
            for chunk in (subjects[i : i + _MULTI] for i in range(0, len(subjects), _MULTI))
        ]
        out: dict[str, bytes] = {}
        for answer in await self._direct_gets(requests):
            for subject, _, data in answer:
                eid = by_subject.get(subject)
                if eid is not None and data:
                    out[eid] = data
        return out

    async def read_many(self, after: Mapping[str, int]) -> dict[str, list[StoredStep]]:
        """Each execution's steps after its sequence in ``after``, oldest first (from any replica)."""
        out: dict[str, list[StoredStep]] = {eid: [] for eid in after}
        start = {eid: seq + 1 for eid, seq in after.items()}
        pending = list(after)
        while pending:
            requests = [
                (
                    S.events_stream(eid),
                    {"seq": start[eid], "next_by_subj": S.events(eid), "batch": _READ_BATCH},
                )
                for eid in pending
            ]
            answers = await self._direct_gets(requests)
            more = []
            for eid, answer in zip(pending, answers, strict=True):
                out[eid] += [(seq, decode(data)) for _, seq, data in answer]
                if len(answer) >= _READ_BATCH:  # a long tail: the rest in the next round
                    start[eid] = answer[-1][1] + 1
                    more.append(eid)
            pending = more
        return out

    async def _direct_gets(self, requests: list[tuple[str, dict[str, Any]]]) -> list[_Answer]:
        """Send every direct get request at once (one reply subject each under one inbox) and
        collect their answers: each ends with a status, 204 (end of batch) or 404 (nothing)."""
        if not requests:
            return []
        prefix = self.nc.new_inbox()
        answers: list[_Answer] = [[] for _ in requests]
        open_ = set(range(len(requests)))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def on_msg(msg: Msg) -> None:
            i = int(msg.subject.rsplit(".", 1)[1])
            headers = msg.headers or {}
            status = headers.get("Status")
            if status is None:
                answers[i].append((headers.get("Nats-Subject", ""), int(headers["Nats-Sequence"]), msg.data))
                return
            if status not in ("204", "404"):
                if not done.done():
                    stream = requests[i][0]
                    why = headers.get("Description", "")
                    done.set_exception(ServerError(f"direct get {stream}: {status} {why}"))
                return
            open_.discard(i)
            if not open_ and not done.done():
                done.set_result(None)

        # No slow-consumer limit: the answers of thousands of requests may queue up before the
        # callback drains them, and a dropped one would fail the whole read after its timeout.
        sub = await self.nc.subscribe(f"{prefix}.*", cb=on_msg, pending_msgs_limit=0, pending_bytes_limit=0)
        try:
            for i, (stream, request) in enumerate(requests):
                await self.nc.publish(
                    f"$JS.API.DIRECT.GET.{stream}", json_encoder.encode(request), reply=f"{prefix}.{i}"
                )
            await asyncio.wait_for(done, _TIMEOUT_S)
        finally:
            await sub.unsubscribe()
        return answers


def _after(execution_id: str, start: int) -> dict[str, Any]:
    return {"seq": start, "next_by_subj": S.events(execution_id), "batch": _READ_BATCH}
