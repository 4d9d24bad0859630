"""The executor's loads (engine.loading): many executions asked for at once are read in one round."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence

import pytest

from engine.core import events as ev
from engine.core.ports import StoredStep
from engine.loading import Loads
from engine.testing.memory import MemoryStore

pytestmark = pytest.mark.anyio


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.rounds: list[list[str]] = []
        self.failing: set[str] = set()  # executions whose reads fail
        self.many = 0

    async def get_snapshots(self, execution_ids: Sequence[str]) -> dict[str, bytes]:
        self.rounds.append(list(execution_ids))
        await asyncio.sleep(0.01)  # a round trip: what is asked for meanwhile waits for the next round
        return await super().get_snapshots(execution_ids)

    async def read_after(self, execution_id: str, after: int) -> list[StoredStep]:
        if execution_id in self.failing:
            raise ConnectionError("no leader for its stream")
        return await super().read_after(execution_id, after)

    async def read_many(self, after: Mapping[str, int]) -> dict[str, list[StoredStep]]:
        self.many += 1
        return await super().read_many(after)


async def _created(store: MemoryStore) -> str:
    eid = uuid.uuid4().hex
    created = ev.ExecutionCreated(
        date="2026-01-01T00:00:00Z", execution_id=eid, namespace="ns", flow_id="f", flow_revision=1
    )
    await store.append(eid, [created], 0)
    return eid


async def test_loads_asked_for_together_are_read_in_one_round_and_each_gets_its_own_state() -> None:
    store = CountingStore()
    ids = [await _created(store) for _ in range(50)]
    loads = Loads(store, per_round=40)
    reads = await asyncio.gather(*(loads.read(eid) for eid in [*ids, ids[0]]))
    assert [len(r) for r in store.rounds] == [40, 11]  # the limit, then the rest and the repeat
    assert [r.state.id for r in reads if r.state] == [*ids, ids[0]]
    assert reads[0].state is not reads[-1].state  # two readers of one execution: two copies
    late = await loads.read(ids[1])  # a lone load later: a round of its own
    assert late.state is not None and store.rounds[-1] == [ids[1]]
    await loads.close()


async def test_a_failed_round_is_read_one_by_one_and_only_the_failing_loads_fail() -> None:
    store = CountingStore()
    bad, good = await _created(store), await _created(store)
    loads = Loads(store)
    store.failing.add(bad)
    results = await asyncio.gather(loads.read(bad), loads.read(good), return_exceptions=True)
    assert isinstance(results[0], ConnectionError)
    assert not isinstance(results[1], BaseException) and results[1].state is not None
    assert results[1].state.id == good
    store.failing.clear()
    many = store.many
    again = await loads.read(bad)  # the next round reads in one go again
    assert again.state is not None and store.many == many + 1
    await loads.close()


async def test_closing_cancels_whoever_waits() -> None:
    store = CountingStore()
    eid = await _created(store)
    loads = Loads(store)
    waiting = asyncio.ensure_future(loads.read(eid))
    await asyncio.sleep(0)
    await loads.close()
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_rounds_are_read_several_at_once_up_to_the_limit() -> None:
    """A slow round does not hold the loads asked for after it: up to ``in_flight`` rounds are read
    together, and the next one starts as soon as one of them ends."""

    class SlowStore(CountingStore):
        def __init__(self) -> None:
            super().__init__()
            self.gate = asyncio.Event()
            self.reading = 0
            self.most = 0

        async def get_snapshots(self, execution_ids: Sequence[str]) -> dict[str, bytes]:
            self.reading += 1
            self.most = max(self.most, self.reading)
            try:
                await self.gate.wait()
                return await super().get_snapshots(execution_ids)
            finally:
                self.reading -= 1

    store = SlowStore()
    ids = [await _created(store) for _ in range(50)]
    loads = Loads(store, per_round=10, in_flight=3)
    reads = asyncio.gather(*(loads.read(eid) for eid in ids))
    for _ in range(20):
        await asyncio.sleep(0)
    assert store.reading == 3  # three rounds of ten wait on the server; twenty loads wait for them
    store.gate.set()
    got = await reads
    assert [r.state.id for r in got if r.state] == ids
    assert store.most == 3 and [len(r) for r in store.rounds] == [10] * 5
    await loads.close()
