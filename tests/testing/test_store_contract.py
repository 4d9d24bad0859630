"""The ports' promises, held by both implementations: the JetStream store and the memory store.

What only the memory store can show quickly (expiry by an injected clock, the ack wait) is
tested on it alone, below.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from engine.core import events as ev
from engine.core.errors import ConcurrencyConflict
from engine.core.execution import evolve
from engine.core.ports import Delivery, InputDelivery
from engine.testing.memory import MemoryStore
from eventstore import subjects as S
from eventstore.reader import encode_snapshot, read_execution, read_executions
from eventstore.store import Store

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["memory", "jetstream"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    if request.param == "memory":
        yield MemoryStore()
        return
    jetstream = await Store.connect(request.getfixturevalue("nats_url"))
    try:
        yield jetstream
    finally:
        await jetstream.close()


def _created(eid: str) -> ev.ExecutionCreated:
    return ev.ExecutionCreated(
        date="2026-01-01T00:00:00Z", execution_id=eid, namespace="ns", flow_id="f", flow_revision=1
    )


def _running(second: int) -> ev.ExecutionStateChanged:
    return ev.ExecutionStateChanged(date=f"2026-01-01T00:00:{second:02d}Z", state="RUNNING")


async def _next(queue: asyncio.Queue[Any], timeout: float = 5) -> Any:
    return await asyncio.wait_for(queue.get(), timeout)


async def test_appends_are_guarded_by_the_expected_last_sequence(store: Any) -> None:
    eid = uuid.uuid4().hex
    seq1 = await store.append(eid, [_created(eid)], 0)
    seq2 = await store.append(eid, [_running(1)], seq1)
    with pytest.raises(ConcurrencyConflict):
        await store.append(eid, [_running(2)], seq1)  # a second writer that saw seq1
    with pytest.raises(ConcurrencyConflict):
        await store.append(eid, [_created(eid)], 0)
    assert [s for s, _ in await store.read_after(eid, 0)] == [seq1, seq2]
    assert [s for s, _ in await store.read_after(eid, seq1)] == [seq2]
    assert [s for s, _ in await store.read_from_leader(eid, 0, seq1)] == [seq1]
    assert await store.last_seq(eid) == await store.last_seq(eid, leader=True) == seq2
    assert await store.last_seq(uuid.uuid4().hex) == 0


async def test_the_reader_folds_a_snapshot_and_the_tail_and_reads_as_of_a_step(store: Any) -> None:
    eid = uuid.uuid4().hex
    seqs = [await store.append(eid, [_created(eid)], 0)]
    for second in range(1, 4):
        seqs.append(await store.append(eid, [_running(second)], seqs[-1]))
    whole = await read_execution(store, eid)
    assert whole.state is not None and whole.state.seq == seqs[-1] and whole.steps == 4
    assert not whole.has_snapshot

    at_two = await read_execution(store, eid, upto=seqs[1])
    assert at_two.state is not None and at_two.state.seq == seqs[1]
    folded = evolve(evolve(None, _created(eid)), _running(1))
    assert folded is not None and at_two.state.histories == folded.histories

    snap = (await read_execution(store, eid, upto=seqs[2])).state
    assert snap is not None
    await store.put_snapshot(eid, encode_snapshot(snap))
    tail = await read_execution(store, eid)
    assert tail.has_snapshot and tail.steps == 1  # the snapshot plus the one step after it
    assert tail.state is not None and tail.state.histories == whole.state.histories
    before = await read_execution(store, eid, upto=seqs[0])  # older than the snapshot: from the start
    assert before.state is not None and before.state.seq == seqs[0] and before.steps == 1
    await store.drop_snapshot(eid)
    assert await store.get_snapshot(eid) is None
    assert (await read_execution(store, uuid.uuid4().hex)).state is None


async def test_many_executions_read_at_once_are_read_as_one_by_one(store: Any) -> None:
    # More executions than one multi-subject snapshot request holds, one tail longer than a read
    # batch, snapshots for some, and an execution that does not exist.
    ids = [uuid.uuid4().hex for _ in range(600)]
    seqs: dict[str, list[int]] = {}
    for i, eid in enumerate(ids):
        seqs[eid] = [await store.append(eid, [_created(eid)], 0)]
        for second in range(1, 300 if i == 0 else 1 + i % 3):
            seqs[eid].append(await store.append(eid, [_running(second % 60)], seqs[eid][-1]))
        if i % 4 == 1:
            snap = (await read_execution(store, eid, upto=seqs[eid][0])).state
            assert snap is not None
            await store.put_snapshot(eid, encode_snapshot(snap))
    missing = uuid.uuid4().hex
    many = await read_executions(store, [*ids, missing, ids[0]])
    assert set(many) == {*ids, missing}
    assert many[missing].state is None and many[missing].steps == 0
    for i, eid in enumerate(ids):
        one = await read_execution(store, eid)
        got = many[eid]
        assert got.state is not None and one.state is not None
        assert got.state.seq == one.state.seq == seqs[eid][-1]
        assert got.state.histories == one.state.histories
        assert (got.steps, got.has_snapshot) == (one.steps, one.has_snapshot)
        assert got.has_snapshot == (i % 4 == 1)
    assert many[ids[0]].steps == 300
    assert many[ids[1]].steps == len(seqs[ids[1]]) - 1  # the snapshot holds the first step


async def test_inputs_are_stored_once_and_come_again_until_acknowledged(store: Any) -> None:
    eid = uuid.uuid4().hex
    p = S.partition(eid)
    got: asyncio.Queue[InputDelivery] = asyncio.Queue()

    async def on_input(delivery: InputDelivery) -> None:
        if delivery.execution_id == eid:  # a shared server may hold other tests' inputs
            got.put_nowait(delivery)

    await store.send_input(eid, _created(eid), msg_id=f"{eid}:created")
    await store.send_input(eid, _created(eid), msg_id=f"{eid}:created")  # a duplicate: dropped
    sub = await store.consume_inputs(p, on_input)
    try:
        first = await _next(got)
        assert first.partition == p and ev.decode_input(first.data) == _created(eid)
        # Still waiting for its consumer's acknowledgement: pending, found by its message id.
        pending = await store.pending_input(eid, f"{eid}:created")
        assert pending is not None and ev.decode_input(pending) == _created(eid)
        assert await store.pending_input(eid, f"{eid}:other") is None
        await first.nak(0.01)
        again = await _next(got)  # not acknowledged: delivered again
        assert ev.decode_input(again.data) == _created(eid)
        assert await store.inputs_consumed(p, sub)
        kill = ev.KillRequested(date="2026-01-01T00:00:01Z", reason="test")
        await store.send_input(eid, kill)
        assert ev.decode_input((await _next(got)).data) == kill
        # A new consumer of the partition (a new owner) gets at once what was left unacknowledged.
        replaced = await store.consume_inputs(p, on_input)
        # The deposed consumer's subscription is told it no longer has the partition's inputs.
        assert not await store.inputs_consumed(p, sub) and await store.inputs_consumed(p, replaced)
        await sub.unsubscribe()
        sub = replaced
        deliveries = [await _next(got) for _ in range(2)]
        assert [ev.decode_input(d.data) for d in deliveries] == [_created(eid), kill]  # in their order
        for delivery in deliveries:
            await delivery.ack()
        for _ in range(100):  # an acknowledgement is applied by the server a moment after it is sent
            if await store.pending_input(eid, f"{eid}:created") is None:
                break
            await asyncio.sleep(0.02)
        assert await store.pending_input(eid, f"{eid}:created") is None  # consumed: no longer pending
    finally:
        await sub.unsubscribe()


async def test_work_is_dispatched_once_and_handed_out_again_when_not_acknowledged(store: Any) -> None:
    eid, group = uuid.uuid4().hex, f"g{uuid.uuid4().hex[:8]}"
    got: asyncio.Queue[Delivery] = asyncio.Queue()

    async def on_work(delivery: Delivery) -> None:
        got.put_nowait(delivery)

    subs = await store.consume_work(group, on_work, 64)
    try:
        await store.dispatch(eid, group, b"one", f"{eid}:t:1")
        await store.dispatch(eid, group, b"one", f"{eid}:t:1")  # the same message id: stored once
        first = await _next(got)
        assert first.data == b"one" and not first.redelivered
        await first.nak(0.01)
        again = await _next(got)
        assert again.data == b"one" and again.redelivered  # its previous holder may have handled it
        await again.ack()
        await store.dispatch(eid, group, b"two", f"{eid}:t:2")
        second = await _next(got)
        assert second.data == b"two"
        await second.term()
        with pytest.raises(TimeoutError):
            await _next(got, timeout=0.3)  # nothing comes twice once acknowledged or terminated
    finally:
        for sub in subs:
            await sub.unsubscribe()


async def test_a_deleted_flow_is_saved_again_as_the_revision_after_its_deletion(store: Any) -> None:
    """A deletion is a revision: saving the flow again (even the same source) makes the next one."""
    fid = "f" + uuid.uuid4().hex[:8]
    first = await store.put_flow("io.contract", fid, "id: a\n")
    assert await store.delete_flow("io.contract", fid)
    assert await store.get_flow("io.contract", fid) is None
    assert not await store.delete_flow("io.contract", fid)  # already deleted
    again = await asyncio.wait_for(store.put_flow("io.contract", fid, "id: a\n"), 10)
    assert (first.revision, again.revision) == (1, 3)
    latest = await store.get_flow("io.contract", fid)
    assert latest is not None and (latest.revision, latest.source, latest.deleted) == (3, "id: a\n", False)
    deletion = await store.get_flow("io.contract", fid, 2)
    assert deletion is not None and deletion.deleted


async def test_leases_are_compare_and_set_on_their_revision(store: Any) -> None:
    p = S.PARTITIONS - 1
    me, other = f"x{uuid.uuid4().hex[:8]}", f"x{uuid.uuid4().hex[:8]}"
    _, revision = await store.lease_holder(p)
    taken = await store.lease_write(p, me, revision, 5)
    assert taken is not None and await store.lease_holder(p) == (me, taken)
    assert await store.lease_write(p, other, revision, 5) is None  # it changed meanwhile
    renewed = await store.lease_write(p, me, taken, 5)
    assert renewed is not None and renewed != taken
    assert await store.lease_write(p, me, taken, 5) is None  # renewal on a stale revision
    assert await store.lease_write(p, "", renewed, 5) is not None  # given back
    assert (await store.lease_holder(p))[0] == ""
    await store.announce_member(me, 5)
    assert me in await store.members()
    await store.leave(me)
    assert me not in await store.members()


async def test_liveness_and_the_attempts_workers_hold(store: Any) -> None:
    worker, eid = f"w{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    await store.heartbeat(worker, {"group": "default"}, 5)
    assert (await store.live_workers())[worker] == {"group": "default"}
    await store.mark_running(worker, eid, "tr", 2)
    assert (worker, eid, "tr", 2) in await store.running_attempts()
    await store.clear_running(worker, eid, "tr")
    assert (worker, eid, "tr", 2) not in await store.running_attempts()


async def test_executions_marked_as_holding_work_in_memory_are_listed_by_partition(store: Any) -> None:
    eids = [uuid.uuid4().hex for _ in range(6)]
    for eid in eids:
        await store.mark_held(eid)
    await store.mark_held(eids[0])  # marked twice: listed once
    one = S.partition(eids[1])
    listed = await store.held_executions([one])
    assert (eids[1], one) in listed
    assert all(p == one for _, p in listed)
    everywhere = await store.held_executions(range(S.PARTITIONS))
    assert {(eid, S.partition(eid)) for eid in eids} <= set(everywhere)
    assert len([e for e, _ in everywhere if e == eids[0]]) == 1
    assert await store.held_executions([]) == []
    store.clear_held(eids[1])
    if hasattr(store, "batcher"):  # JetStream: the clear lingers a moment to share a commit
        await store.batcher(S.HELD).drain()
    # Not listed once cleared, though its key lasts until the clear's TTL runs out.
    assert eids[1] not in {e for e, _ in await store.held_executions(range(S.PARTITIONS))}
    await _until_absent(store, eids[1])


async def _until_absent(store: Any, eid: str) -> None:
    """A cleared mark is gone within its ended marker's TTL (no tombstone kept)."""
    deadline = asyncio.get_running_loop().time() + S.ENDED_MARKER_TTL_S + 5
    while eid in {e for e, _ in await store.held_executions(range(S.PARTITIONS))}:
        assert asyncio.get_running_loop().time() < deadline, f"{eid} still listed"
        await asyncio.sleep(0.1)


async def test_a_cleared_running_attempt_leaves_no_key_behind(nats_url: str) -> None:
    """Its purge marker expires: kept, one per taskrun ever run, each liveness check listed them all."""
    store = await Store.connect(nats_url)
    try:
        worker, eid = f"w{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
        subject = S.running(worker, eid, "tr")
        await store.mark_running(worker, eid, "tr", 1)
        await store.clear_running(worker, eid, "tr")
        deadline = asyncio.get_running_loop().time() + S.ENDED_MARKER_TTL_S + 5
        while subject in (
            (await store.js.stream_info(S.RUNNING, subjects_filter=subject)).state.subjects or {}
        ):
            assert asyncio.get_running_loop().time() < deadline, "the purge marker stayed"
            await asyncio.sleep(0.1)
    finally:
        await store.close()


async def test_an_executor_answers_pings_while_subscribed(store: Any) -> None:
    me = f"x{uuid.uuid4().hex[:8]}"
    assert not await store.is_alive(me)
    sub = await store.answer_pings(me)
    assert await store.is_alive(me)
    await sub.unsubscribe()
    assert not await store.is_alive(me)


async def test_appended_steps_and_kills_reach_their_watchers(store: Any) -> None:
    eid = uuid.uuid4().hex
    steps: asyncio.Queue[list[ev.Event]] = asyncio.Queue()
    kills: asyncio.Queue[str] = asyncio.Queue()

    async def on_events(events: list[ev.Event]) -> None:
        steps.put_nowait(events)

    async def on_kill(execution_id: str) -> None:
        kills.put_nowait(execution_id)

    watching = await store.watch_events(eid, on_events)
    killing = await store.watch_kills(on_kill)
    try:
        await store.append(eid, [_created(eid)], 0)
        assert await _next(steps) == [_created(eid)]
        await store.kill(eid)
        while await _next(kills) != eid:
            pass
    finally:
        await watching.unsubscribe()
        await killing.unsubscribe()


# ---- the memory store alone: time ------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_memory_leases_members_heartbeats_and_keys_expire_by_the_injected_clock() -> None:
    clock = _Clock()
    store = MemoryStore(clock=clock)
    taken = await store.lease_write(3, "a", 0, 3)
    await store.announce_member("a", 3)
    await store.heartbeat("w", {}, 10)
    await store.kv.set("ns", "k", 1, ttl_s=5)
    clock.now += 2.9
    assert await store.lease_holder(3) == ("a", taken)
    assert await store.lease_write(3, "b", 0, 3) is None
    assert await store.members() == ["a"]
    clock.now += 0.2
    assert await store.lease_holder(3) == ("", 0)  # expired: free to take
    assert await store.lease_write(3, "a", taken or 0, 3) is None  # too late to renew
    assert await store.lease_write(3, "b", 0, 3) is not None
    assert await store.members() == []
    assert "w" in await store.live_workers()
    assert await store.kv.get("ns", "k") == 1
    clock.now += 7
    assert await store.live_workers() == {}
    assert await store.kv.get("ns", "k") is None


async def test_memory_work_not_acknowledged_within_the_ack_wait_comes_again() -> None:
    store = MemoryStore(ack_wait_s=0.05)
    got: asyncio.Queue[Delivery] = asyncio.Queue()

    async def on_work(delivery: Delivery) -> None:
        got.put_nowait(delivery)

    subs = await store.consume_work("default", on_work, 4)
    await store.dispatch("e", None, b"w", "e:t:1")
    assert (await _next(got)).data == b"w"  # taken, never answered (a worker that froze)
    assert (await _next(got)).data == b"w"
    for sub in subs:
        await sub.unsubscribe()


async def test_memory_message_ids_are_forgotten_after_the_duplicate_window() -> None:
    clock = _Clock()
    store = MemoryStore(clock=clock)
    await store.dispatch("e", None, b"w", "e:t:1")
    await store.dispatch("e", None, b"w", "e:t:1")
    clock.now += 121
    await store.dispatch("e", None, b"w", "e:t:1")
    assert len(store._work_queue("default").messages) == 2


async def test_the_reader_completes_a_lagging_replica_from_the_leader_unless_told_not_to() -> None:
    store = MemoryStore(replicas=3)
    eid = "lagging"
    seqs = [await store.append(eid, [_created(eid)], 0)]
    for second in range(1, 4):
        seqs.append(await store.append(eid, [_running(second)], seqs[-1]))
    served = store.read_after

    async def behind(execution_id: str, after: int) -> list[Any]:
        return (await served(execution_id, after))[:-2]  # a replica two steps behind

    store.read_after = behind  # type: ignore[method-assign]
    full = await read_execution(store, eid)
    assert full.state is not None and full.state.seq == seqs[-1] and full.steps == 4
    replica = await read_execution(store, eid, leader=False)
    assert replica.state is not None and replica.state.seq == seqs[1]
    as_of = await read_execution(store, eid, upto=seqs[2])
    assert as_of.state is not None and as_of.state.seq == seqs[2]
