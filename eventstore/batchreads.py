"""Reads of many executions at once: what an executor that takes partitions over needs.

An executor that takes a dead peer's partitions gets thousands of inputs for executions it has
never seen, and reads each one's snapshot and tail before its first step. Read one by one, that is
two requests, a subscription and a timer per execution, all in the executor's one Python thread.
Here the snapshots of up to ``_MULTI`` executions come in one multi-subject direct get
(``multi_last``, server 2.11+), and so do their last steps; the tails are then walked back, one
step per round for every execution at once, each request all sent on one subscription.

Why walk back rather than ask for "the steps of this subject from the snapshot on": the server
answers that by visiting every message of the stream between an execution's steps (thousands of
other executions' steps interleave with them), and it was a fifth of the server's CPU on a
takeover (bench/recovery.py). A step stores the sequence of the one before it (the
``Nats-Expected-Last-Subject-Sequence`` of its guarded append), and a read by sequence is direct.
A tail longer than ``_WALK`` steps, or a step without that header, is read the old way, and checked
to join the steps walked (else read whole by subject).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from nats.aio.msg import Msg

from engine.core.errors import ServerError
from engine.core.events import decode
from engine.core.ports import StoredStep
from eventstore import subjects as S
from eventstore.jetstream import Connection, json_encoder

# Subjects per multi_last request: the server refuses (413) an answer of more than 1024 messages.
_MULTI = 512
_READ_BATCH = 256  # steps per direct get request (as History.read_after)
_WALK = 16  # steps of a tail read back one by one; the rest of a longer one is read by subject
_TIMEOUT_S = 10.0
_PREVIOUS = "Nats-Expected-Last-Subject-Sequence"  # what a step's guarded append expected


class _Msg(NamedTuple):
    subject: str
    seq: int
    data: bytes
    previous: int | None  # the execution's step before this one (None: not recorded)


_Answer = list[_Msg]  # the messages of one request, in stream order


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
            for msg in answer:
                eid = by_subject.get(msg.subject)
                if eid is not None and msg.data:
                    out[eid] = msg.data
        return out

    async def read_many(self, after: Mapping[str, int]) -> dict[str, list[StoredStep]]:
        """Each execution's steps after its sequence in ``after``, oldest first (from any replica)."""
        steps: dict[str, list[_Msg]] = {eid: [] for eid in after}  # newest first
        for eid, last in (await self._last_steps(list(after))).items():
            if last.seq > after[eid]:
                steps[eid].append(last)
        walking = [eid for eid, msgs in steps.items() if msgs]
        for _ in range(_WALK):
            wanted = {
                eid: previous
                for eid in walking
                if (previous := steps[eid][-1].previous) is not None and previous > after[eid]
            }
            if not wanted:
                break
            requests = [(S.events_stream(eid), {"seq": seq}) for eid, seq in wanted.items()]
            answers = await self._direct_gets(requests, single=True)
            walking = []
            for (eid, seq), answer in zip(wanted.items(), answers, strict=True):
                if answer and answer[0].seq == seq and answer[0].subject == S.events(eid):
                    steps[eid].append(answer[0])
                    walking.append(eid)
                # else: not there (a replica a moment behind): read by subject below
        # What the walk did not reach (a longer tail, a step without the record, a replica behind):
        # read by subject, up to the oldest step read when the step before it is known, else all.
        rest: dict[str, tuple[int, int | None]] = {}
        for eid, msgs in steps.items():
            previous = msgs[-1].previous if msgs else 0
            if previous is None:
                rest[eid] = (after[eid], None)
            elif previous > after[eid]:
                rest[eid] = (after[eid], msgs[-1].seq)
        scanned = await self._read_spans(rest)
        # The steps read by subject must end with the one the walk stopped before: were they read
        # from a replica further behind, a step would be missing in between. Then the whole tail
        # is read by subject (and completed from the leader by ``read_executions``).
        broken = {
            eid: (after[eid], None)
            for eid, (_, stop) in rest.items()
            if stop is not None and (not scanned[eid] or scanned[eid][-1].seq != steps[eid][-1].previous)
        }
        if broken:
            scanned.update(await self._read_spans(broken))
        for eid, (_, stop) in rest.items():
            if stop is None or eid in broken:
                steps[eid] = []  # read whole by subject
        return {
            eid: [(m.seq, decode(m.data)) for m in [*scanned.get(eid, ()), *reversed(msgs)]]
            for eid, msgs in steps.items()
        }

    async def _last_steps(self, execution_ids: Sequence[str]) -> dict[str, _Msg]:
        """The last step of each execution that has one: one multi_last request per events stream
        and ``_MULTI`` executions."""
        by_stream: dict[str, dict[str, str]] = {}
        for eid in execution_ids:
            by_stream.setdefault(S.events_stream(eid), {})[S.events(eid)] = eid
        requests = []
        for stream, by_subject in by_stream.items():
            subjects = list(by_subject)
            for i in range(0, len(subjects), _MULTI):
                chunk = subjects[i : i + _MULTI]
                requests.append((stream, {"multi_last": chunk, "batch": len(chunk)}))
        out: dict[str, _Msg] = {}
        for (stream, _), answer in zip(requests, await self._direct_gets(requests), strict=True):
            for msg in answer:
                owner = by_stream[stream].get(msg.subject)
                if owner is not None:
                    out[owner] = msg
        return out

    async def _read_spans(self, spans: Mapping[str, tuple[int, int | None]]) -> dict[str, list[_Msg]]:
        """Each execution's steps after ``start`` and before ``stop`` (None: to the last), read by
        subject (``_READ_BATCH`` a request)."""
        out: dict[str, list[_Msg]] = {eid: [] for eid in spans}
        start = {eid: first + 1 for eid, (first, _) in spans.items()}
        pending = list(spans)
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
                stop = spans[eid][1]
                out[eid] += [m for m in answer if stop is None or m.seq < stop]
                if len(answer) >= _READ_BATCH and (stop is None or answer[-1].seq < stop - 1):
                    start[eid] = answer[-1].seq + 1  # a long tail: the rest in the next round
                    more.append(eid)
            pending = more
        return out

    async def _direct_gets(
        self, requests: list[tuple[str, dict[str, Any]]], single: bool = False
    ) -> list[_Answer]:
        """Send every direct get request at once (one reply subject each under one inbox) and
        collect their answers: a batch ends with a status, 204 (end of batch) or 404 (nothing);
        ``single``: each request asks for one message by sequence, answered by it or by a 404."""
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
                previous = headers.get(_PREVIOUS)
                answers[i].append(
                    _Msg(
                        headers.get("Nats-Subject", ""),
                        int(headers["Nats-Sequence"]),
                        msg.data,
                        int(previous) if previous is not None and previous.isdigit() else None,
                    )
                )
                if not single:
                    return
            elif status not in ("204", "404"):
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
