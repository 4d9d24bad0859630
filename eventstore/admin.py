"""What the API server asks of NATS beyond ``Store``: connection health, live log tails, file stats.

The roles above ``eventstore`` never hold a NATS handle; these functions keep the API server's
few direct uses (an ordered consumer on the log stream, the connection flag, object metadata) here.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from nats.js import api as jsapi

from eventstore import subjects as S
from eventstore.storage import InternalStorage
from eventstore.store import LogLine, Store


def is_connected(store: Store) -> bool:
    """Whether the store's NATS connection is up (readiness)."""
    return bool(store.nc.is_connected)


async def tail_logs(
    store: Store, execution_id: str, poll: float = 0.25
) -> AsyncGenerator[tuple[int, LogLine] | None, None]:
    """Every log line of an execution from the first, live: ``(stream sequence, line)``, or ``None``
    each time ``poll`` seconds pass without one (the caller decides when to stop: close the iterator)."""
    sub = await store.js.subscribe(
        S.logs(execution_id),
        stream=S.LOGS,
        ordered_consumer=True,
        config=jsapi.ConsumerConfig(deliver_policy=jsapi.DeliverPolicy.ALL),
    )
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=poll)
            except TimeoutError:
                yield None
                continue
            yield int(msg.metadata.sequence.stream), Store.decode_log(msg.data)
    finally:
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
