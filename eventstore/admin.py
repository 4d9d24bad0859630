"""What the API server asks of NATS beyond ``Store``: connection health, live log tails, file stats.

The roles above ``eventstore`` never hold a NATS handle; these functions keep the API server's
few direct uses (ordered consumers on an execution's lines, the connection flag, object metadata) here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from nats.js import api as jsapi

from engine.core import events as ev
from eventstore import subjects as S
from eventstore.indexer.logs import inline_index
from eventstore.storage import InternalStorage
from eventstore.store import LogLine, Store


def is_connected(store: Store) -> bool:
    """Whether the store's NATS connection is up (readiness)."""
    return bool(store.nc.is_connected)


async def tail_logs(
    store: Store, execution_id: str, poll: float = 0.25
) -> AsyncGenerator[tuple[int, LogLine] | None, None]:
    """Every log line of an execution from the first, live: ``(index, line)``, or ``None`` each time
    ``poll`` seconds pass without one (the caller decides when to stop: close the iterator).

    Two sources: the LOGS stream (the index is its sequence) and the lines the history stores with
    the attempts' ends (the index is the projection's, ``inline_index``), each in its own order."""
    came: asyncio.Queue[tuple[int, LogLine]] = asyncio.Queue()

    async def on_line(msg: Any) -> None:
        came.put_nowait((int(msg.metadata.sequence.stream), Store.decode_log(msg.data)))

    async def on_step(msg: Any) -> None:
        step = int(msg.metadata.sequence.stream)
        for i, line in enumerate(ev.lines_in(ev.decode(msg.data))):
            came.put_nowait((inline_index(step, i), line))

    subs = []
    try:
        for subject, stream, cb in (
            (S.logs(execution_id), S.LOGS, on_line),
            (S.events(execution_id), S.events_stream(execution_id), on_step),
        ):
            subs.append(
                await store.js.subscribe(
                    subject,
                    stream=stream,
                    ordered_consumer=True,
                    # one each: nats-py writes the subscription's own settings into it
                    config=jsapi.ConsumerConfig(deliver_policy=jsapi.DeliverPolicy.ALL),
                    cb=cb,
                )
            )
        while True:
            try:
                yield await asyncio.wait_for(came.get(), poll)
            except TimeoutError:
                yield None
    finally:
        for sub in subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()


@dataclass(frozen=True)
class FileStat:
    size: int
    mtime: Any  # as the object store gives it (ISO-8601 text, nanoseconds)


async def file_stat(storage: InternalStorage, uri_or_path: str) -> FileStat | None:
    """Size and modification time of a stored file, or None when there is no such file."""
    info = await storage._info(uri_or_path)
    if info is None:
        return None
    return FileStat(int(info.size or 0), info.mtime)
