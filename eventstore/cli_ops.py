"""The store reads and live subscriptions of the command line (``engine run``, ``logs -f``,
``executions list``), so that the CLI never holds a NATS handle itself."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from engine.core import events as ev
from eventstore import subjects as S
from eventstore.store import LogLine, Store


async def execution_ids(store: Store) -> list[str]:
    """The id of every execution that has a history in the event streams."""
    ids: list[str] = []
    for k in range(S.SHARDS):
        info = await store.js.stream_info(f"{S.EVENTS}_{k}", subjects_filter="ev.>")
        ids.extend(subject.split(".", 2)[2] for subject in info.state.subjects or {})
    return ids


@contextlib.asynccontextmanager
async def live_logs(
    store: Store, execution_id: str, on_line: Callable[[LogLine], None]
) -> AsyncIterator[None]:
    """Call ``on_line`` with each log line published from now on by the execution or by the subflows
    it starts (and theirs), until the block ends; every line received by then is handled first."""
    mine = {execution_id}
    watched: list[Any] = []

    async def watch(eid: str) -> None:
        async def on_step(msg: Any) -> None:
            events = ev.decode(msg.data)
            for line in ev.lines_in(events):  # a short attempt's, stored with its end
                on_line(line)
            for event in events:
                if isinstance(event, ev.SubflowStarted) and event.execution_id not in mine:
                    mine.add(event.execution_id)
                    await watch(event.execution_id)

        watched.append(await store.nc.subscribe(S.events(eid), cb=on_step))

    prefix = len(S.logs(""))

    async def on_log(msg: Any) -> None:
        if msg.subject[prefix:] in mine:
            on_line(Store.decode_log(msg.data))

    await watch(execution_id)
    log_sub = await store.nc.subscribe(S.logs(">"), cb=on_log)
    try:
        yield
    finally:
        await store.nc.flush()
        await log_sub.unsubscribe()
        for sub in watched:
            await sub.unsubscribe()
