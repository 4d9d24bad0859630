"""Partition leases (engine.partitions) on the memory store: hand-over, death and expiry, no server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import pytest

from engine.partitions import Partitions, assign
from engine.testing.memory import MemoryStore
from eventstore import subjects as S

pytestmark = pytest.mark.anyio


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _partitions(store: MemoryStore, executor_id: str, log: list[tuple[str, int, str]]) -> Partitions:
    async def acquired(p: int) -> None:
        log.append((executor_id, p, "take"))

    async def released(p: int, lost: bool) -> None:
        log.append((executor_id, p, "lost" if lost else "give"))

    return Partitions(store, executor_id, acquired, released, ttl_s=3, alive=store.is_alive)


async def test_partitions_are_shared_handed_over_and_taken_from_a_dead_executor() -> None:
    clock = _Clock()
    store = MemoryStore(clock=clock)
    log: list[tuple[str, int, str]] = []
    a, b = _partitions(store, "a", log), _partitions(store, "b", log)
    pinging = [await store.answer_pings("a"), await store.answer_pings("b")]

    await a.tick()
    assert sorted(a.held) == list(range(S.PARTITIONS))  # alone: every partition
    await b.tick()  # b wants its share, still held by a: it waits
    assert not b.held
    await a.tick()  # a sees b and gives b's share back
    await b.tick()
    want = assign(["a", "b"])
    assert sorted(b.held) == sorted(p for p, owner in want.items() if owner == "b")
    assert sorted(a.held) == sorted(p for p, owner in want.items() if owner == "a")
    assert not set(a.held) & set(b.held)
    assert all(kind == "give" for who, _, kind in log if who == "a" and kind != "take")

    # a's process dies: its connection is gone (no pong), its leases are still unexpired.
    await pinging[0].unsubscribe()
    await b.tick()
    assert sorted(b.held) == list(range(S.PARTITIONS))  # taken over by compare-and-set at once
    for p in range(S.PARTITIONS):
        assert (await store.lease_holder(p))[0] == "b"
    assert await store.lease_write(0, "a", a.held[0], 3) is None  # the dead one cannot renew
    await pinging[1].unsubscribe()


async def test_a_silent_executors_leases_are_taken_only_once_they_expire() -> None:
    clock = _Clock()
    store = MemoryStore(clock=clock)
    a = _partitions(store, "a", [])
    b = Partitions(store, "b", _noop_take, _noop_release, ttl_s=3)  # no pings: trusts the TTLs
    await a.tick()
    await b.tick()
    await a.tick()
    await b.tick()
    a_share = set(a.held)
    assert a_share and not a_share & set(b.held)
    # a stops renewing (a long pause): until its lease and its membership expire, b leaves them.
    clock.now += 2.5
    await b.tick()
    assert not a_share & set(b.held)
    clock.now += 1
    await b.tick()
    assert set(b.held) == set(range(S.PARTITIONS))


async def _noop_take(p: int) -> None:
    return None


async def _noop_release(p: int, lost: bool) -> None:
    return None


async def test_a_dead_peer_wakes_the_tick_at_once_and_a_slow_one_keeps_its_partitions() -> None:
    store = MemoryStore()
    slow = asyncio.Event()
    answers = {"a": True}

    async def alive(member: str) -> bool:
        if member == "a" and slow.is_set():
            await asyncio.sleep(0.2)  # as a ping that times out: slow, so alive
            return True
        return answers.get(member, True)

    # A TTL of 60 s: a tick every 15 s, so only the probe can make b move within the test.
    _, b, a_share = await _split_between_two(store, alive)

    running = asyncio.create_task(b.run())
    try:
        slow.set()  # a is slow: b's probes keep waiting on it, and b takes nothing
        await asyncio.sleep(0.5)
        assert not a_share & set(b.held)
        slow.clear()
        answers["a"] = False  # a's connection is gone
        for _ in range(250):  # up to 5 s under load: still a third of the tick period
            if set(b.held) == set(range(S.PARTITIONS)):
                break
            await asyncio.sleep(0.02)
        assert set(b.held) == set(range(S.PARTITIONS))
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running


async def test_a_ping_lost_with_a_killed_peer_does_not_hold_the_probe() -> None:
    """A ping sent as the peer is killed, before the server sees its socket close, is never
    answered: the probe counts it alive after ``PROBE_WAIT_S`` and pings again, and the next ping
    (no responders) moves the partitions, long before the lost one would have timed out."""
    from engine import partitions

    store = MemoryStore()
    pings: list[float] = []

    async def alive(member: str) -> bool:
        if member != "a":
            return True
        pings.append(asyncio.get_running_loop().time())
        if len(pings) == 1:
            await asyncio.sleep(30)  # the lost ping: no answer, no "no responders"
        return False

    _, b, _ = await _split_between_two(store, _answer)
    b.alive = alive  # a is killed now
    started = asyncio.get_running_loop().time()
    running = asyncio.create_task(b.run())
    try:
        for _ in range(250):
            if set(b.held) == set(range(S.PARTITIONS)):
                break
            await asyncio.sleep(0.02)
        assert set(b.held) == set(range(S.PARTITIONS))
        assert pings[1] - pings[0] < partitions.PROBE_WAIT_S + partitions.PROBE_EVERY_S + 1
        assert asyncio.get_running_loop().time() - started < 5  # the lost ping would hold it 30 s
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running


async def _answer(member: str) -> bool:
    return True


async def _split_between_two(
    store: MemoryStore, alive: Callable[[str], Awaitable[bool]]
) -> tuple[Partitions, Partitions, set[int]]:
    """Executors a and b (a 60 s TTL: a tick every 15 s, so only a probe moves anything within a
    test) sharing the partitions; returns them and a's share."""
    a = Partitions(store, "a", _noop_take, _noop_release, ttl_s=60, alive=alive)
    b = Partitions(store, "b", _noop_take, _noop_release, ttl_s=60, alive=alive)
    for who in (a, b, a, b):
        await who.tick()
    a_share = set(a.held)
    assert a_share and not a_share & set(b.held)
    return a, b, a_share


class _StalledLeases:
    """The memory store's leases, whose writes can be made to wait (a stream electing its leader)."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.flowing = asyncio.Event()
        self.flowing.set()

    async def lease_holder(self, partition: int) -> tuple[str, int]:
        return await self.store.lease_holder(partition)

    async def lease_write(self, partition: int, owner: str, revision: int, ttl_s: float) -> int | None:
        await self.flowing.wait()
        return await self.store.lease_write(partition, owner, revision, ttl_s)

    async def announce_member(self, executor_id: str, ttl_s: float) -> None:
        await self.flowing.wait()
        await self.store.announce_member(executor_id, ttl_s)

    async def members(self) -> list[str]:
        return await self.store.members()

    async def leave(self, executor_id: str) -> None:
        await self.store.leave(executor_id)


async def test_a_lease_is_not_acted_on_past_its_validity_while_a_tick_waits_on_a_write() -> None:
    """Chaos seed 120: both executors' lease writes timed out for 5 s after a NATS node died, and one
    went on dispatching on partitions whose leases the other had taken meanwhile."""
    leases = _StalledLeases(MemoryStore())
    released: list[tuple[int, bool]] = []

    async def on_release(p: int, lost: bool) -> None:
        released.append((p, lost))

    parts = Partitions(leases, "a", _noop_take, on_release, ttl_s=0.5)  # valid 0.4 s after a renewal
    await parts.tick()
    assert all(parts.owns(p) for p in range(S.PARTITIONS))
    leases.flowing.clear()  # from now on every lease write waits
    running = asyncio.create_task(parts.run())
    try:
        await asyncio.sleep(0.6)
        assert not any(parts.owns(p) for p in range(S.PARTITIONS))
        # Released as lost by the expiry, while the tick still waits on its renewals.
        assert sorted(released) == [(p, True) for p in range(S.PARTITIONS)]
        assert not parts.held
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
