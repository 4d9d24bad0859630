"""``eventstore.cli_ops``: what the command line reads and follows, against a real nats-server."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from engine.core import events as ev
from eventstore.cli_ops import execution_ids, live_logs
from eventstore.store import LogLine, Store

pytestmark = pytest.mark.anyio

DATE = "2026-01-01T00:00:00Z"


def _created(eid: str) -> ev.ExecutionCreated:
    return ev.ExecutionCreated(date=DATE, execution_id=eid, namespace="ns", flow_id="f", flow_revision=1)


async def test_execution_ids_lists_every_execution_with_a_history(nats_url: str) -> None:
    store = await Store.connect(nats_url)
    try:
        eids = [uuid.uuid4().hex for _ in range(3)]
        for eid in eids:
            await store.append(eid, [_created(eid)], 0)
        assert set(eids) <= set(await execution_ids(store))
    finally:
        await store.close()


async def test_live_logs_follow_the_execution_and_the_subflows_it_starts(nats_url: str) -> None:
    store = await Store.connect(nats_url)
    parent, child, other = (uuid.uuid4().hex for _ in range(3))
    seen: list[str] = []
    try:
        seq = await store.append(parent, [_created(parent)], 0)
        async with live_logs(store, parent, lambda line: seen.append(line.message)):
            store.post_log(parent, LogLine(DATE, "INFO", "from the parent"))
            store.post_log(other, LogLine(DATE, "INFO", "from another execution"))
            started = ev.SubflowStarted(date=DATE, taskrun_id="t1", execution_id=child)
            await store.append(parent, [started], seq)
            for _ in range(100):  # the child is followed once the parent's step arrives
                store.post_log(child, LogLine(DATE, "INFO", "from the child"))
                await store.nc.flush()
                if "from the child" in seen:
                    break
                await asyncio.sleep(0.05)
        assert seen[0] == "from the parent"
        assert "from the child" in seen
        assert "from another execution" not in seen
        count = len(seen)
        store.post_log(parent, LogLine(DATE, "INFO", "after the block"))
        await store.nc.flush()
        await asyncio.sleep(0.1)
        assert len(seen) == count  # unsubscribed when the block ends
    finally:
        await store.close()
