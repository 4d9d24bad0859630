"""The JetStream store against a real nats-server."""

from __future__ import annotations

import asyncio
import gc
import socket
import uuid
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from engine.core import events as ev
from engine.core.errors import ConcurrencyConflict
from eventstore.server import EmbeddedServer
from eventstore.store import JetStreamKV, Store

pytestmark = pytest.mark.anyio


def _created(eid: str) -> ev.ExecutionCreated:
    return ev.ExecutionCreated(
        date="2026-01-01T00:00:00Z", execution_id=eid, namespace="ns", flow_id="f", flow_revision=1
    )


async def test_append_is_guarded_by_the_last_subject_sequence(nats_url: str) -> None:
    store = await Store.connect(nats_url)
    eid = uuid.uuid4().hex
    seq1 = await store.append(eid, [_created(eid)], 0)
    running = ev.ExecutionStateChanged(date="2026-01-01T00:00:01Z", state="RUNNING")
    seq2 = await store.append(eid, [running], seq1)
    with pytest.raises(ConcurrencyConflict):
        await store.append(eid, [running], seq1)  # a second writer that saw seq1 is refused
    with pytest.raises(ConcurrencyConflict):
        await store.append(eid, [_created(eid)], 0)  # "create" twice is refused too
    history = await store.read(eid)
    assert [s for s, _ in history] == [seq1, seq2]
    assert history[1][1] == [running]
    await store.close()


async def test_a_retried_append_is_deduplicated(nats_url: str) -> None:
    store = await Store.connect(nats_url)
    eid = uuid.uuid4().hex
    seq = await store.append(eid, [_created(eid)], 0)
    # Same expected sequence and same Nats-Msg-Id: the server answers with the original ack.
    try:
        again = await store.append(eid, [_created(eid)], 0)
    except ConcurrencyConflict:
        again = seq
    assert again == seq
    assert len(await store.read(eid)) == 1
    await store.close()


async def test_read_of_an_unknown_execution_is_empty(nats_url: str) -> None:
    store = await Store.connect(nats_url)
    assert await store.read("nope-" + uuid.uuid4().hex) == []
    await store.close()


async def test_flow_revisions(nats_url: str) -> None:
    store = await Store.connect(nats_url)
    fid = "f" + uuid.uuid4().hex[:8]
    r1 = await store.put_flow("io.test", fid, "id: a\n")
    same = await store.put_flow("io.test", fid, "id: a\n")
    r2 = await store.put_flow("io.test", fid, "id: b\n")
    assert (r1.revision, same.revision, r2.revision) == (1, 1, 2)
    assert [r.revision for r in await store.flow_revisions("io.test", fid)] == [1, 2]
    got = await store.get_flow("io.test", fid, 1)
    assert got is not None and got.source == "id: a\n"
    # Namespaces and ids with dots do not collide.
    await store.put_flow("io.test.x", "y", "one")
    await store.put_flow("io.test", "x.y", "two")
    a, b = await store.get_flow("io.test.x", "y"), await store.get_flow("io.test", "x.y")
    assert a is not None and b is not None and (a.source, b.source) == ("one", "two")
    assert await store.delete_flow("io.test", fid)
    assert await store.get_flow("io.test", fid) is None
    await store.close()


async def test_kv_set_get_delete_and_ttl(nats_url: str) -> None:
    store = await Store.connect(nats_url)
    kv = JetStreamKV(store)
    ns = "io.kv" + uuid.uuid4().hex[:6]
    await kv.set(ns, "a.b", {"x": [1, 2]})
    await kv.set(ns, "n", 3)
    assert await kv.get(ns, "a.b") == {"x": [1, 2]}
    assert await kv.keys(ns) == ["a.b", "n"]
    assert await kv.get(ns + ".other", "a.b") is None
    assert await kv.delete(ns, "a.b") is True
    assert await kv.delete(ns, "a.b") is False
    assert await kv.get(ns, "a.b") is None
    await kv.set(ns, "short", "v", ttl_s=1)
    assert await kv.get(ns, "short") == "v"
    await asyncio.sleep(1.6)
    assert await kv.get(ns, "short") is None
    await store.close()


async def test_a_connect_whose_setup_fails_closes_its_connection(nats_url: str) -> None:
    # The session server is not clustered: R3 streams are refused after the connection is open.
    with pytest.raises(Exception, match="replicas"):
        await Store.connect(nats_url, replicas=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    leaked = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert not leaked, leaked


async def test_a_reconnect_through_failed_handshakes_leaks_no_socket(tmp_path: Path) -> None:
    """A node that accepts TCP connections but never speaks NATS (starting, stopping, frozen): each
    failed reconnect attempt's socket is closed, not left for the garbage collector."""
    import nats

    server = EmbeddedServer(tmp_path / "nats")
    url = server.start()
    port = urlparse(url).port
    assert port is not None
    failures: list[Exception] = []

    async def on_error(exc: Exception) -> None:
        failures.append(exc)

    nc = await nats.connect(
        url, connect_timeout=0.3, reconnect_time_wait=0.05, max_reconnect_attempts=-1, error_cb=on_error
    )
    try:
        server.stop()
        silent = socket.socket()
        silent.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        silent.bind(("127.0.0.1", port))
        silent.listen(64)  # the kernel completes the handshakes; nobody ever sends INFO
        try:
            for _ in range(200):
                if sum(isinstance(e, asyncio.TimeoutError) for e in failures) >= 3:
                    break
                await asyncio.sleep(0.05)
            assert sum(isinstance(e, asyncio.TimeoutError) for e in failures) >= 3, failures
        finally:
            silent.close()
    finally:
        await nc.close()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    leaked = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert not leaked, leaked


async def test_acked_events_survive_a_kill_9_of_the_server(tmp_path: Path) -> None:
    server = EmbeddedServer(tmp_path / "nats")
    url = server.start()
    store = await Store.connect(url)
    eid = uuid.uuid4().hex
    seq = await store.append(eid, [_created(eid)], 0)
    for i in range(20):
        seq = await store.append(eid, [ev.ExecutionStateChanged(date=str(i), state="RUNNING")], seq)
    await store.nc.close()
    server.kill()
    server2 = EmbeddedServer(tmp_path / "nats", token=server.token)
    url2 = server2.start()
    try:
        store2 = await Store.connect(url2)
        assert len(await store2.read(eid)) == 21
        await store2.close()
    finally:
        server2.stop()


async def test_worker_heartbeats_are_listed(nats_url: str) -> None:
    store = await Store.connect(nats_url)
    wid = "w-" + uuid.uuid4().hex[:8]
    await store.heartbeat(wid, {"group": "default", "running": 2})
    assert (await store.live_workers())[wid] == {"group": "default", "running": 2}
    await store.close()


async def test_a_running_mark_is_read_from_the_leader_until_cleared(nats_url: str) -> None:
    store = await Store.connect(nats_url)
    wid, eid = "w-" + uuid.uuid4().hex[:8], uuid.uuid4().hex
    assert await store.running_attempt(wid, eid, "tr") is None
    await store.mark_running(wid, eid, "tr", 3)
    assert await store.running_attempt(wid, eid, "tr") == 3
    assert (wid, eid, "tr", 3) in await store.running_attempts()
    await store.clear_running(wid, eid, "tr")
    assert await store.running_attempt(wid, eid, "tr") is None
    await store.close()


async def test_logs_are_stored_and_read_back_in_order(nats_url: str) -> None:
    from eventstore.store import LogLine

    store = await Store.connect(nats_url)
    eid = uuid.uuid4().hex
    for i in range(5):
        store.post_log(eid, LogLine(f"2026-01-01T00:00:0{i}Z", "INFO", f"line {i}", "tr", "t", 1))
    await store.nc.flush()
    for _ in range(100):
        lines = await store.read_logs(eid)
        if len(lines) == 5:
            break
        await asyncio.sleep(0.01)
    assert [line.message for line in lines] == [f"line {i}" for i in range(5)]
    assert await store.read_logs("none-" + eid) == []
    await store.close()


async def test_lines_stored_with_an_end_are_read_with_the_streamed_ones_by_date(nats_url: str) -> None:
    store = await Store.connect(nats_url)
    eid = uuid.uuid4().hex
    seq = await store.append(eid, [_created(eid)], 0)
    store.post_log(eid, ev.LogLine("2026-01-01T00:00:01.000000Z", "INFO", "streamed early", "a", "a", 1))
    store.post_log(eid, ev.LogLine("2026-01-01T00:00:03.000000Z", "INFO", "streamed late", "a", "a", 1))
    await store.nc.flush()
    held = (ev.LogLine("2026-01-01T00:00:02.000000Z", "INFO", "held", "b", "b", 1),)
    end = ev.AttemptEnded(
        date="2026-01-01T00:00:02.5Z", taskrun_id="b", attempt=1, state="SUCCESS", logs=held
    )
    await store.append(eid, [end], seq)
    for _ in range(100):
        lines = await store.read_logs(eid)
        if len(lines) == 3:
            break
        await asyncio.sleep(0.01)
    assert [line.message for line in lines] == ["streamed early", "held", "streamed late"]
    await store.close()


async def test_a_step_too_large_with_its_lines_stores_them_apart_and_itself_without(nats_url: str) -> None:
    store = await Store.connect(nats_url)
    eid = uuid.uuid4().hex
    seq = await store.append(eid, [_created(eid)], 0)
    big = "x" * 200_000
    count = store.nc.max_payload // len(big) + 2  # together over the server's limit, each one under it
    ends: list[ev.Event] = [
        ev.AttemptEnded(
            date="2026-01-01T00:00:02Z",
            taskrun_id=f"t{i}",
            attempt=1,
            state="SUCCESS",
            outputs={"n": i},
            logs=(ev.LogLine(f"2026-01-01T00:00:01.{i:06d}Z", "INFO", big, f"t{i}", f"t{i}", 1),),
        )
        for i in range(count)
    ]
    last = await store.append(eid, ends, seq)
    (stored,) = [events for s, events in await store.read(eid) if s == last]
    assert [e.outputs for e in stored if isinstance(e, ev.AttemptEnded)] == [{"n": i} for i in range(count)]
    assert ev.lines_in(stored) == []  # the step kept its facts, not the lines
    lines = await store.read_logs(eid)
    assert [line.taskrun_id for line in lines] == [f"t{i}" for i in range(count)]
    await store.close()


async def test_long_histories_are_read_in_batches_and_from_a_snapshot_point(nats_url: str) -> None:
    store = await Store.connect(nats_url)
    eid = uuid.uuid4().hex
    seq = await store.append(eid, [_created(eid)], 0)
    seqs = [seq]
    for i in range(600):  # more than two read batches
        step = ev.ExecutionStateChanged(date=f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}Z", state="RUNNING")
        seq = await store.append(eid, [step], seq)
        seqs.append(seq)
    history = await store.read(eid)
    assert [s for s, _ in history] == seqs
    tail = await store.read_after(eid, seqs[300])
    assert [s for s, _ in tail] == seqs[301:]
    assert await store.read_after(eid, seqs[-1]) == []
    await store.close()


async def test_partition_leases_are_compare_and_set(nats_url: str) -> None:
    store = await Store.connect(nats_url)
    p = 7
    owner, rev = await store.lease_holder(p)
    if owner:  # another test's executor holds it: wait for it to be given back or to expire
        for _ in range(100):
            await asyncio.sleep(0.1)
            owner, rev = await store.lease_holder(p)
            if not owner:
                break
    taken = await store.lease_write(p, "me", rev, 1)
    assert taken is not None
    assert await store.lease_write(p, "rival", rev, 1) is None  # it moved on: the rival is refused
    assert await store.lease_holder(p) == ("me", taken)
    renewed = await store.lease_write(p, "me", taken, 1)
    assert renewed is not None and renewed > taken
    assert await store.lease_write(p, "", renewed, 1) is not None  # given back
    assert (await store.lease_holder(p))[0] == ""
    await store.close()


async def test_tails_read_at_once_are_walked_back_by_sequence_and_read_by_subject_otherwise(
    nats_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``read_many`` follows each step's record of the step before it; a tail longer than the walk,
    a step written without that record, or one not served is read by subject (whole when what was
    read does not join the walked steps); each read equals ``read_after``."""
    from eventstore import batchreads
    from eventstore import subjects as S

    store = await Store.connect(nats_url)
    ids = {name: uuid.uuid4().hex for name in ("short", "unguarded", "long", "gone", "done", "missing")}
    seqs: dict[str, list[int]] = {name: [] for name in ids}

    async def step(name: str, second: int) -> None:
        eid = ids[name]
        events: list[ev.Event] = (
            [_created(eid)]
            if not seqs[name]
            else [ev.ExecutionStateChanged(date=f"2026-01-01T00:00:{second:02d}Z", state="RUNNING")]
        )
        seqs[name].append(await store.append(eid, events, seqs[name][-1] if seqs[name] else 0))

    for second in range(4):
        for name in ("short", "unguarded", "gone", "done"):
            await step(name, second)
    # A step stored without the expected sequence (by hand): the walk cannot go past it.
    raw = ev.encode([ev.ExecutionStateChanged(date="2026-01-01T00:00:30Z", state="RUNNING")])
    seqs["unguarded"].append((await store.js.publish(S.events(ids["unguarded"]), raw)).seq)
    await step("unguarded", 31)
    for second in range(batchreads._WALK + 6):
        await step("long", second % 60)

    walked: list[set[str]] = []
    spans: list[set[str]] = []
    direct_gets, read_spans = store._direct_gets, store._read_spans

    lagging = [True]

    async def spy_gets(requests: list[tuple[str, dict[str, Any]]], single: bool = False) -> list[Any]:
        answers: list[Any] = await direct_gets(requests, single)
        gone_subject = S.events(ids["gone"])
        for (_, r), answer in zip(requests, answers, strict=True):
            if r.get("next_by_subj") == gone_subject and lagging[0]:
                # Served by a replica a step behind: the step before the walked one is missing.
                lagging[0] = False
                answer[:] = [m for m in answer if m.seq < seqs["gone"][-2]]
        if single:
            walked.append({str(r["seq"]) for _, r in requests})
            # The "gone" execution's steps are no longer there (as the stream's limits would do).
            gone = {(S.events_stream(ids["gone"]), seq) for seq in seqs["gone"]}
            answers = [
                [] if (stream, r["seq"]) in gone else a
                for (stream, r), a in zip(requests, answers, strict=True)
            ]
        return answers

    async def spy_spans(s: dict[str, tuple[int, int]]) -> Any:
        spans.append(set(s))
        return await read_spans(s)

    monkeypatch.setattr(store, "_direct_gets", spy_gets)
    monkeypatch.setattr(store, "_read_spans", spy_spans)
    after = {eid: 0 for eid in ids.values()}
    after[ids["long"]] = seqs["long"][1]
    after[ids["done"]] = seqs["done"][-1]  # a snapshot at its last step: nothing after it
    many = await store.read_many(after)
    monkeypatch.undo()
    for name, eid in ids.items():
        assert many[eid] == await store.read_after(eid, after[eid]), name
    assert [s for s, _ in many[ids["short"]]] == seqs["short"]
    assert [s for s, _ in many[ids["long"]]] == seqs["long"][2:]
    assert many[ids["done"]] == many[ids["missing"]] == []
    # The read by subject that did not join the walked steps ("gone", a replica behind) is read whole.
    assert [{n for n, e in ids.items() if e in s} for s in spans] == [{"unguarded", "long", "gone"}, {"gone"}]
    assert len(walked) == batchreads._WALK
    await store.close()
