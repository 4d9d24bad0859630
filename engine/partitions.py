"""Which executor owns which partition: leases in KV_leases, renewed with a revision check.

Executions hash to ``PARTITIONS`` partitions (eventstore.subjects.partition). An executor only
consumes the inputs of the partitions it holds a lease on, so each execution has one writer at a
time; appends stay guarded by the expected last subject sequence, so an owner that lost its lease
without noticing (a long pause, a partition of the network) has its next write refused, never merged.

- Every executor announces itself (``$KV.leases.m.<id>``, expires after ``ttl_s``) and reads the
  live members; rendezvous hashing (``assign``) gives each partition one desired owner, the same on
  every executor, and moves only the partitions of a member that comes or goes.
- A lease (``$KV.leases.p.<n>``) holds the owner's id and expires ``ttl_s`` after its last write.
  Taking one is a compare-and-set on its revision; renewing is another, so a lease that expired and
  was taken meanwhile cannot be renewed by its old owner. Giving one back writes an empty owner.
- An executor that died is noticed before its keys expire: every executor answers a ping on its
  own subject, and the server answers "no responders" the moment a process's connection is gone
  (kill -9 closes its socket). The other members are pinged every ``PROBE_EVERY_S`` (a request
  the server answers at once, far cheaper than a tick's writes); a peer that does not answer
  wakes the tick at once, which pings it again before it believes it: its partitions are
  reassigned and its leases taken over by compare-and-set on their current revision. A live but
  slow executor is never declared dead (a ping that times out counts as alive); one cut off from
  the server cannot write anyway, and its next renewal fails.
- A lease whose renewal fails for any other reason than a conflict (the server is electing a
  leader...) is kept until its expiry: only then does the executor stop consuming the partition.
  Its validity ends at 0.8 of the TTL after the last renewal was sent, on this process's clock:
  ``owns`` says no from then on, and ``_expiry`` releases it then, whether or not a tick is still
  waiting on a lease write (up to 5 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections.abc import Awaitable, Callable

from engine.aio import cancelling
from engine.core.ports import Leases
from engine.logs import get_logger
from engine.settings import settings
from eventstore import subjects as S

log = get_logger("engine.partitions")

# How often the other members are pinged between two ticks: how long a dead executor's partitions
# wait before the tick that moves them starts (the tick's own period is a quarter of the TTL).
PROBE_EVERY_S = 0.05
# How long the probe waits for a pong before it counts the peer alive (slow, not gone) and pings it
# again. A ping sent in the moment between a kill -9 and the server seeing the socket close goes
# to the dead connection and is never answered: waited out at the request's own 0.5 s, it delayed a
# third of bench/recovery.py's takeovers by that much (leases moved 0.46-0.55 s, not 0.03-0.1).
PROBE_WAIT_S = 0.1


def lease_ttl() -> float:
    """ENGINE_LEASE_TTL seconds (default 3): how long a dead executor's partitions wait for a new owner."""
    return settings().lease_ttl


def assign(members: list[str], partitions: int = S.PARTITIONS) -> dict[int, str]:
    """Rendezvous hashing: each partition to the member with the highest hash of (member, partition)."""
    if not members:
        return {}
    return {p: max(members, key=lambda m: (zlib.crc32(f"{m}/{p}".encode()), m)) for p in range(partitions)}


class Partitions:
    def __init__(
        self,
        store: Leases,
        executor_id: str,
        on_acquire: Callable[[int], Awaitable[None]],
        on_release: Callable[[int, bool], Awaitable[None]],
        ttl_s: float | None = None,
        alive: Callable[[str], Awaitable[bool]] | None = None,
    ) -> None:
        self.store = store
        self.id = executor_id
        self.on_acquire = on_acquire
        self.on_release = on_release  # (partition, lost): lost when someone else may own it already
        self.ttl = ttl_s if ttl_s is not None else lease_ttl()
        self.every = self.ttl / 4
        self.alive = alive  # probe of another executor's connection (None: trust the TTLs)
        self.held: dict[int, int] = {}  # partition -> revision of our lease
        self._dead: set[str] = set()  # members whose connection is gone (their leases are ours to take)
        self._peers: list[str] = []  # the other live members, as of the last tick (what the probe pings)
        self._wake = asyncio.Event()  # set by the probe: a peer stopped answering, tick now
        self._valid_until: dict[int, float] = {}
        # No other live executor at the last tick: none can take a partition before we give it back
        # (or our lease expires), so work may go to this process's worker in memory meanwhile.
        self.alone = False

    def owns(self, partition: int) -> bool:
        """Held, and its lease still valid. A tick can wait 5 s on a lease write (a stream electing
        its leader) where the lease lives 3 s: past its validity another executor may hold it, and
        acting on it then ran an attempt twice and lost another's end (chaos seed 120)."""
        until = self._valid_until.get(partition)
        return until is not None and asyncio.get_running_loop().time() < until

    async def run(self) -> None:
        helpers = [asyncio.create_task(self._expiry())]
        if self.alive is not None:
            helpers.append(asyncio.create_task(self.probe()))
        try:
            await self._ticks()
        finally:
            for task in helpers:
                task.cancel()
            for task in helpers:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _expiry(self) -> None:
        """Release a lease the moment its validity ends, even while a tick still waits on a write:
        its consumer stops and its work in memory goes back to the queue then, not 5 s later."""
        loop = asyncio.get_running_loop()
        while True:
            soonest = min(self._valid_until.values(), default=loop.time() + self.every)
            await asyncio.sleep(max(soonest - loop.time(), 0.0) + 0.001)
            await _warned(self._expire(), "partitions.expiry_failed")

    async def _ticks(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.every)
            self._wake.clear()
            # A lease a failed tick could not renew is released by ``_expiry`` when its validity ends.
            await _warned(self.tick(), "partitions.tick_failed")

    async def probe(self, every: float = PROBE_EVERY_S) -> None:
        """Ping the other members between ticks; wake the tick when one stops answering. One round
        at a time: a slow peer's timeout delays the next round, it never piles probes up."""
        alive = self.alive
        if alive is None:
            return
        while True:
            await asyncio.sleep(every)
            peers = self._peers
            if not peers:
                continue
            try:
                answers = await asyncio.gather(*(self._ping(alive, m) for m in peers))
            except Exception as exc:  # the connection is down: the tick will say so
                if cancelling():
                    raise asyncio.CancelledError from exc
                continue
            if not all(answers):
                self._wake.set()

    @staticmethod
    async def _ping(alive: Callable[[str], Awaitable[bool]], member: str) -> bool:
        try:
            return await asyncio.wait_for(alive(member), PROBE_WAIT_S)
        except TimeoutError:
            return True  # slow, not gone: only "no responders" says a peer is gone

    async def tick(self) -> None:
        # The announce and the read of the others are independent: one round trip, not two.
        _, listed = await asyncio.gather(self.store.announce_member(self.id, self.ttl), self.store.members())
        members = [m for m in listed if m != self.id]
        if self.alive is not None and members:
            probes = await asyncio.gather(*(self.alive(m) for m in members))
            self._dead = {m for m, ok in zip(members, probes, strict=True) if not ok}
            members = [m for m in members if m not in self._dead]
        if self.alone != (not members):  # work goes through memory only while alone: say when
            event = "partitions.peers" if members else "partitions.alone"
            log.info(event, executor=self.id, peers=members)
        self.alone = not members
        self._peers = list(members)
        members.append(self.id)
        wanted = {p for p, owner in assign(members).items() if owner == self.id}
        jobs = [self._renew(p) for p in list(self.held) if p in wanted]
        jobs += [self._give_back(p) for p in list(self.held) if p not in wanted]
        jobs += [self._take(p) for p in sorted(wanted - set(self.held))]
        before = set(self.held)
        results = await asyncio.gather(*jobs, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, Exception):
                raise result
            if isinstance(result, Exception):
                log.warning("partitions.lease_error", error=f"{type(result).__name__}: {result}")
        await self._expire()
        if set(self.held) != before:
            log.info("partitions.held", executor=self.id, partitions=sorted(self.held), members=len(members))

    async def _take(self, p: int) -> None:
        # Read first: a lease we take is most often one a dead or leaving member still has (a
        # blind write as if it were free would cost a refused write before the read).
        owner, revision = await self.store.lease_holder(p)
        if owner and owner != self.id and owner not in self._dead:
            return  # still held (its owner has yet to give it back, or died and it has yet to expire)
        started = asyncio.get_running_loop().time()  # the server counts the TTL from about here
        new = await self.store.lease_write(p, self.id, revision, self.ttl)
        if new is None:
            return  # it changed since the read: someone else took it, the next tick looks again
        self._valid_until[p] = started + self.ttl * 0.8
        self.held[p] = new
        try:
            await self.on_acquire(p)
        except BaseException:
            await self._drop(p, lost=True)
            raise

    async def _renew(self, p: int) -> None:
        started = asyncio.get_running_loop().time()
        new = await self.store.lease_write(p, self.id, self.held[p], self.ttl)
        if p not in self.held:
            return
        if new is None:
            log.warning("partitions.lease_lost", partition=p, executor=self.id)
            await self._drop(p, lost=True)
            return
        self.held[p] = new
        self._valid_until[p] = started + self.ttl * 0.8

    async def _give_back(self, p: int) -> None:
        revision = self.held[p]
        await self._drop(p, lost=False)
        await self.store.lease_write(p, "", revision, self.ttl)

    async def _drop(self, p: int, lost: bool) -> None:
        if self.held.pop(p, None) is None:
            return
        self._valid_until.pop(p, None)
        await self.on_release(p, lost)

    async def _expire(self) -> None:
        """Stop consuming partitions whose lease we could not renew in time: another may own them now."""
        now = asyncio.get_running_loop().time()
        for p in [p for p, until in self._valid_until.items() if until < now]:
            log.warning("partitions.lease_expired", partition=p, executor=self.id)
            await self._drop(p, lost=True)

    async def stop(self) -> None:
        """Give every lease back, so the other executors take the partitions at once."""
        results = await asyncio.gather(*(self._give_back(p) for p in list(self.held)), return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                log.warning("partitions.release_failed", error=f"{type(result).__name__}: {result}")
        try:
            await self.store.leave(self.id)
        except Exception as exc:
            log.warning("partitions.leave_failed", error=str(exc))


async def _warned(job: Awaitable[None], event: str) -> None:
    """Run ``job``; a failure is one warning line (the next round tries again)."""
    try:
        await job
    except Exception as exc:
        if cancelling():
            raise asyncio.CancelledError from exc
        log.warning(event, error=f"{type(exc).__name__}: {exc}")
