"""What readers (the webserver) use: queries on their own DuckDB cursors, in threads, seeing
committed transactions only, and waits for the projection to reach a write they made."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from eventstore.indexer.db import Database, Run
from eventstore.indexer.streams import source_streams
from eventstore.store import Store

T = TypeVar("T")
COUNTS_KEPT = 256  # counts remembered (the least recently used goes first)


class Reads:
    """The read side of ``Indexer``: ``applied`` and ``changed`` are kept by its write side."""

    store: Store
    db: Database
    applied: dict[str, int]
    changed: asyncio.Condition  # notified after each applied batch
    counts: OrderedDict[tuple[str, str], tuple[int, int]]  # (sql, params) -> (db version, count)

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """Rows of one read-only statement, on this thread's cursor (committed data only)."""
        return self.db.query(sql, params)

    async def aquery(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        return await asyncio.to_thread(self.db.query, sql, params)

    async def count(self, sql: str, params: Sequence[Any]) -> int:
        """The number ``sql`` selects (a ``count(*)``), remembered until the next write: a list the
        UI polls, or that several people look at, is counted once per change of the projection.

        The version is taken before the query: a write committed while it runs makes the next call
        count again, whichever snapshot this one saw.
        """
        key = (sql, repr(list(params)))
        version = self.db.version
        hit = self.counts.get(key)
        if hit is not None and hit[0] == version:
            self.counts.move_to_end(key)
            return hit[1]
        n = int((await self.aquery(sql, params))[0][0])
        self.counts[key] = (version, n)
        self.counts.move_to_end(key)
        while len(self.counts) > COUNTS_KEPT:
            self.counts.popitem(last=False)
        return n

    async def aread(self, steps: Callable[[Run], T]) -> T:
        """``steps(run)`` in a thread: its statements see one snapshot (``Database.read``)."""
        return await asyncio.to_thread(self.db.read, steps)

    async def wait_applied(self, stream: str, seq: int, timeout: float = 5.0) -> bool:
        """Wait until ``stream`` is applied up to ``seq`` (read-your-writes after an API write)."""
        deadline = time.monotonic() + timeout
        async with self.changed:
            while self.applied.get(stream, 0) < seq:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.changed.wait(), left)
        return True

    async def wait_change(self, timeout: float) -> None:
        """Return after the next applied batch, or after ``timeout`` seconds."""
        async with self.changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), timeout)

    async def wait_for(self, sql: str, params: Sequence[Any], timeout: float = 5.0) -> bool:
        """Wait until ``sql`` returns a row (e.g. an execution reached a state in the projection)."""
        deadline = time.monotonic() + timeout
        while True:
            if await self.aquery(sql, params):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            async with self.changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.changed.wait(), min(left, 0.5))

    async def wait_synced(self, prefix: str, timeout: float = 5.0) -> bool:
        """Wait until the projection has applied every message that the source streams named
        ``prefix...`` held when asked: a query after it sees every write acknowledged before it (a
        destructive by-query action must not miss an execution its client has just seen end)."""
        deadline = time.monotonic() + timeout
        heads = {}
        for stream in source_streams():
            if stream.startswith(prefix):
                heads[stream] = int((await self.store.js.stream_info(stream)).state.last_seq)
        for stream, seq in heads.items():
            if not await self.wait_applied(stream, seq, max(0.0, deadline - time.monotonic())):
                return False
        return True

    async def caught_up(self) -> bool:
        """True when every source stream is applied up to its last message."""
        for stream in source_streams():
            try:
                info = await self.store.js.stream_info(stream)
            except Exception:
                return False
            if int(info.state.last_seq) > self.applied.get(stream, 0):
                return False
        return True

    async def wait_caught_up(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await self.caught_up():
                return True
            await asyncio.sleep(0.02)
        return False
