"""Group commit against a real nats-server: concurrent appends share atomic batches, and each caller
still gets its own answer (its sequence, its conflict, its duplicate)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from engine.core import events as ev
from engine.core.errors import ConcurrencyConflict
from eventstore import subjects as S
from eventstore.batching import COUNTS, Batcher
from eventstore.store import Store

pytestmark = pytest.mark.anyio


def _created(eid: str) -> ev.ExecutionCreated:
    return ev.ExecutionCreated(
        date="2026-01-01T00:00:00Z", execution_id=eid, namespace="ns", flow_id="f", flow_revision=1
    )


def _same_shard(n: int) -> list[str]:
    """``n`` execution ids whose steps land on one EVENTS stream (a batch never spans two)."""
    out: list[str] = []
    while len(out) < n:
        eid = uuid.uuid4().hex
        if S.shard(eid) == 0:
            out.append(eid)
    return out


async def test_concurrent_appends_share_commits_and_each_gets_its_own_sequence(nats_url: str) -> None:
    store = await Store.connect(nats_url)
    try:
        eids = _same_shard(200)
        commits, messages = COUNTS.commits, COUNTS.messages
        seqs = await asyncio.gather(*(store.append(eid, [_created(eid)], 0) for eid in eids))
        assert COUNTS.messages - messages == 200
        assert COUNTS.commits - commits < 200  # some shared a commit
        assert len(set(seqs)) == 200
        for eid, seq in zip(eids, seqs, strict=True):
            assert [s for s, _ in await store.read(eid)] == [seq]  # the sequence given is its own
    finally:
        await store.close()


async def test_a_conflict_in_a_batch_fails_only_its_own_append(nats_url: str) -> None:
    store = await Store.connect(nats_url)
    try:
        eids = _same_shard(40)
        first = await asyncio.gather(*(store.append(eid, [_created(eid)], 0) for eid in eids))
        running = ev.ExecutionStateChanged(date="2026-01-01T00:00:01Z", state="RUNNING")
        # One stale writer (expects 0, the execution has a step) among 39 right ones, all at once.
        expected = [0, *first[1:]]
        results = await asyncio.gather(
            *(store.append(eid, [running], seq) for eid, seq in zip(eids, expected, strict=True)),
            return_exceptions=True,
        )
        assert isinstance(results[0], ConcurrencyConflict)
        assert all(isinstance(r, int) for r in results[1:])
        assert [s for s, _ in await store.read(eids[0])] == [first[0]]  # nothing of it was stored
        for eid, seq in zip(eids[1:], results[1:], strict=True):
            assert [s for s, _ in await store.read(eid)][-1] == seq
    finally:
        await store.close()


async def test_a_repeated_input_in_a_batch_is_stored_once(nats_url: str) -> None:
    """The same input sent twice (same message id: a retried report) among others is stored once,
    whether the copies meet in one batch or not."""
    store = await Store.connect(nats_url)
    try:
        eids = _same_shard(20)
        ended = ev.Admitted(date="2026-01-01T00:00:00Z", state="RUNNING")
        await asyncio.gather(
            *(store.send_input(eid, ended, msg_id=f"{eid}:x") for eid in eids),
            *(store.send_input(eid, ended, msg_id=f"{eid}:x") for eid in eids),
        )
        info = await store.js.stream_info(S.inbox_stream(eids[0]), subjects_filter="in.>")
        counts = info.state.subjects or {}
        assert [counts.get(S.inbox(eid)) for eid in eids] == [1] * 20
    finally:
        await store.close()


async def test_log_lines_posted_without_waiting_are_stored_before_close(nats_url: str) -> None:
    from engine.core.ports import LogLine

    store = await Store.connect(nats_url)
    eid = uuid.uuid4().hex
    for i in range(50):
        store.post_log(eid, LogLine("2026-01-01T00:00:00Z", "INFO", f"line {i}", None, None, None))
    await store.close()
    reader = await Store.connect(nats_url)
    try:
        assert [line.message for line in await reader.read_logs(eid)] == [f"line {i}" for i in range(50)]
    finally:
        await reader.close()


async def test_a_publish_no_stream_takes_fails_and_an_unanswered_one_times_out(nats_url: str) -> None:
    """The acknowledgements come on one subscription matched by counter: a "no responders" answer
    fails its caller at once, a publish nobody answers fails at the timeout, and neither keeps a
    slot or the batcher from draining."""
    import time

    import nats
    from nats.errors import TimeoutError as NatsTimeoutError
    from nats.js.errors import NoStreamResponseError

    from eventstore.batching import Batcher

    nc = await nats.connect(nats_url)
    failed: list[BaseException] = []
    try:
        batcher = Batcher(nc, in_flight=2, on_error=failed.append, timeout=0.2)
        with pytest.raises(NoStreamResponseError):
            await batcher.publish(f"nostream.{uuid.uuid4().hex}", b"x", None)
        silent = f"silent.{uuid.uuid4().hex}"
        sub = await nc.subscribe(silent)  # receives, never answers
        started = time.monotonic()
        results = await asyncio.gather(
            *(batcher.publish(silent, b"x", None) for _ in range(3)), return_exceptions=True
        )
        assert all(isinstance(r, NatsTimeoutError) for r in results), results
        assert time.monotonic() - started < 5  # the sweeper ticks every second
        batcher.post(silent, b"a line nobody waits for")
        await asyncio.wait_for(batcher.drain(), 5)
        assert len(failed) == 1 and isinstance(failed[0], NatsTimeoutError)
        await sub.unsubscribe()
    finally:
        await nc.close()


async def test_cleared_marks_posted_apart_in_time_leave_together_and_are_stored(nats_url: str) -> None:
    """The held bucket's batcher lingers: clears posted a few milliseconds apart share one commit
    (nobody waits for them), and every one is stored once the batcher drains."""
    store = await Store.connect(nats_url)
    try:
        eids = [uuid.uuid4().hex for _ in range(12)]
        for eid in eids:
            await store.mark_held(eid)
        commits = COUNTS.commits
        for eid in eids:
            store.clear_held(eid)
            await asyncio.sleep(0.001)  # apart: without the linger each leaves alone
        await store.batcher(S.HELD).drain()
        assert COUNTS.commits - commits == 1
        for eid in eids:  # each mark replaced by its clear (an empty value that expires)
            assert (await store.js.get_last_msg(S.HELD, S.held(eid), direct=True)).data in (None, b"")
    finally:
        await store.close()


async def test_a_mark_does_not_wait_for_the_commit_of_lingering_clears(nats_url: str) -> None:
    """Queued behind eight lingering clears, a mark would wait for their atomic commit (4-13 ms here,
    on the way to its execution's first task): it leaves alone, at once, while they still linger. A
    mark to the subject of a lingering clear (an execution marked again) keeps its place after it."""
    store = await Store.connect(nats_url)
    batcher = Batcher(store.nc, linger_s=30.0)  # the held bucket's, lingering longer than the test

    async def value(eid: str) -> bytes | None:
        return (await store.js.get_last_msg(S.HELD, S.held(eid), direct=True)).data

    try:
        ended = [uuid.uuid4().hex for _ in range(12)]
        for eid in ended:
            await batcher.publish(S.held(eid), b"1", None)
        for eid in ended:
            batcher.post(S.held(eid), b"", None)
        commits = COUNTS.commits
        new = uuid.uuid4().hex
        await batcher.publish(S.held(new), b"1", None)
        assert COUNTS.commits - commits == 1 and await value(new) == b"1"  # alone, at once
        assert await value(ended[1]) == b"1"  # the clears still linger (joined, all would be stored)
        await batcher.publish(S.held(ended[0]), b"1", None)  # after its own clear, with the others
        assert await value(ended[0]) == b"1"
        assert await value(ended[1]) in (None, b"")
        await batcher.drain()
    finally:
        await store.close()
