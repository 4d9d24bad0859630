"""Several executors: partitions leased, handed over when one dies, stale writers refused; snapshots."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import msgspec
import pytest

from engine.core import events as ev
from engine.core.errors import ConcurrencyConflict
from eventstore import subjects as S

pytestmark = pytest.mark.anyio

CHAIN = """
id: chain
namespace: {ns}
tasks:
  - id: a
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ execution.id }}}}"
  - id: b
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ outputs.a.value }}}}"
"""


async def _ticks(*executors: Any, rounds: int = 3) -> None:
    for _ in range(rounds):
        for x in executors:
            await x.partitions.tick()


async def test_two_executors_split_the_partitions_and_one_takes_over_when_the_other_dies(
    nats_url: str, tmp_path: Path
) -> None:
    from engine.ids import new_execution_id
    from engine.runtime import Runtime

    ns = f"it.part{uuid.uuid4().hex[:8]}"
    async with (
        Runtime(nats_url=nats_url, home=tmp_path / "a") as ra,
        Runtime(nats_url=nats_url, home=tmp_path / "b") as rb,
    ):
        a, b = ra.executor(), rb.executor()
        # Leases that would outlive the test: only noticing a's death can move its partitions.
        a.partitions.ttl = b.partitions.ttl = 60.0
        worker = asyncio.create_task(ra.worker().run())
        ta = asyncio.create_task(a.run())
        tb = asyncio.create_task(b.run())
        try:
            every = set(range(S.PARTITIONS))
            for _ in range(100):  # their own loops tick too: wait (bounded) for the hand-over to settle
                await _ticks(a, b, rounds=1)
                held_a, held_b = set(a.partitions.held), set(b.partitions.held)
                if held_a and held_b and not held_a & held_b and held_a | held_b == every:
                    break
                await asyncio.sleep(0.05)
            assert held_a and held_b and not held_a & held_b
            assert held_a | held_b == every

            flow = await ra.flows.deploy(CHAIN.format(ns=ns))
            ids = [new_execution_id() for _ in range(24)]
            for eid in ids:
                await ra.create_execution(flow, {}, execution_id=eid)
            for eid in ids:
                assert (await ra.wait_terminal(eid, timeout=20)).state == "SUCCESS"

            # a dies without a word: its leases are left to expire
            ta.cancel()
            a.partitions.stop = _nothing  # type: ignore[method-assign]
            await asyncio.gather(ta, return_exceptions=True)
            orphans = [new_execution_id() for _ in range(40)]
            orphans = [eid for eid in orphans if S.partition(eid) in held_a][:8]
            assert orphans
            for eid in orphans:
                await rb.create_execution(flow, {}, execution_id=eid)
            for _ in range(100):  # its ping finds no responder: a is gone, its leases are b's
                await b.partitions.tick()
                if set(b.partitions.held) == every:
                    break
                await asyncio.sleep(0.05)
            assert set(b.partitions.held) == every  # long before a's 60 s leases could expire
            for eid in orphans:
                assert (await rb.wait_terminal(eid, timeout=20)).state == "SUCCESS"
        finally:
            for task in (worker, ta, tb):
                task.cancel()
            await asyncio.gather(worker, ta, tb, return_exceptions=True)


async def _nothing() -> None:
    return None


async def test_a_deposed_owners_write_is_refused(nats_url: str, tmp_path: Path) -> None:
    from engine.ids import new_execution_id
    from engine.runtime import Runtime

    ns = f"it.depose{uuid.uuid4().hex[:8]}"
    async with Runtime(nats_url=nats_url, home=tmp_path / "h") as rt:
        flow = await rt.flows.deploy(CHAIN.format(ns=ns))
        stale, fresh = rt.executor(), rt.executor()
        eid = new_execution_id()
        created = ev.ExecutionCreated(
            date="2026-01-01T00:00:00Z",
            execution_id=eid,
            namespace=flow.namespace,
            flow_id=flow.id,
            flow_revision=flow.revision,
            inputs={},
            labels={},
        )
        await stale.process(eid, [created])  # the old owner appended the first step
        assert await fresh.load(eid) is not None
        kill = ev.KillRequested(date="2026-01-01T00:00:01Z", reason="test")
        await fresh.process(eid, [kill])  # the new owner appended after it
        with pytest.raises(ConcurrencyConflict):  # the old one, still believing its cache, is refused
            await stale.process(eid, [kill])
        steps = await rt.store.read(eid)
        assert len(steps) == 2  # nothing merged


async def test_state_is_rebuilt_from_a_snapshot_plus_the_tail(
    nats_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.core.execution import evolve
    from engine.ids import new_execution_id
    from engine.runtime import Runtime

    monkeypatch.setenv("ENGINE_SNAPSHOT_EVERY", "2")
    ns = f"it.snap{uuid.uuid4().hex[:8]}"
    source = f"""
id: paused
namespace: {ns}
tasks:
  - id: a
    type: io.kestra.plugin.core.debug.Return
    format: one
  - id: b
    type: io.kestra.plugin.core.debug.Return
    format: two
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
  - id: c
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ outputs.a.value }}}}"
"""
    async with Runtime(nats_url=nats_url, home=tmp_path / "h") as rt:
        ex = rt.executor()
        tasks = [asyncio.create_task(ex.run()), asyncio.create_task(rt.worker().run())]
        try:
            flow = await rt.flows.deploy(source)
            eid = new_execution_id()
            await rt.create_execution(flow, {}, execution_id=eid)
            for _ in range(200):
                steps = await rt.store.read(eid)
                folded = None
                for _seq, events in steps:
                    for event in events:
                        folded = evolve(folded, event)
                if folded is not None and folded.state == "PAUSED":
                    break
                await asyncio.sleep(0.05)
            assert folded is not None and folded.state == "PAUSED"
            for _ in range(100):
                if await rt.store.get_snapshot(eid) is not None:
                    break
                await asyncio.sleep(0.05)
            assert await rt.store.get_snapshot(eid) is not None

            cold = rt.executor()  # a new owner: snapshot plus the steps after it
            rebuilt = await cold.load(eid)
            assert rebuilt is not None
            folded.seq = steps[-1][0]
            assert msgspec.msgpack.encode(rebuilt) == msgspec.msgpack.encode(folded)

            await rt.store.send_input(eid, ev.Resume(date="2026-01-01T00:00:02Z"))
            assert (await rt.wait_terminal(eid, timeout=20)).state == "SUCCESS"
            for _ in range(100):  # an ended execution keeps no snapshot
                if await rt.store.get_snapshot(eid) is None:
                    break
                await asyncio.sleep(0.05)
            assert await rt.store.get_snapshot(eid) is None
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_load_served_by_a_lagging_replica_is_completed_from_the_leader(
    nats_url: str, tmp_path: Path
) -> None:
    from engine.core.execution import evolve
    from engine.ids import new_execution_id
    from engine.runtime import Runtime

    ns = f"it.lag{uuid.uuid4().hex[:8]}"
    async with Runtime(nats_url=nats_url, home=tmp_path / "h") as rt:
        ex = rt.executor()
        tasks = [asyncio.create_task(ex.run()), asyncio.create_task(rt.worker().run())]
        try:
            flow = await rt.flows.deploy(CHAIN.format(ns=ns))
            eid = new_execution_id()
            await rt.create_execution(flow, {}, execution_id=eid)
            await rt.wait_terminal(eid, timeout=20)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        steps = await rt.store.read(eid)
        assert len(steps) >= 3
        truth = None
        for _seq, events in steps:
            for event in events:
                truth = evolve(truth, event)

        fresh = rt.executor()
        real = rt.store.read_after

        async def lagging(execution_id: str, after: int) -> Any:
            return (await real(execution_id, after))[:-2]  # a replica two steps behind

        fresh.store = _Lagging(rt.store, lagging)  # type: ignore[assignment]
        loaded = await fresh.load(eid)
        assert loaded is not None and truth is not None
        assert loaded.seq == steps[-1][0]
        assert loaded.state == truth.state == "SUCCESS"
        tail = await rt.store.read_from_leader(eid, steps[0][0], steps[-1][0])
        assert [s for s, _ in tail] == [s for s, _ in steps[1:]]


class _Lagging:
    """The store as seen through a lagging replica of a three-replica stream."""

    replicas = 3

    def __init__(self, store: Any, read_after: Any) -> None:
        self._store = store
        self.read_after = read_after

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)
