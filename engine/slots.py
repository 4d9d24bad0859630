"""Flow `concurrency`: the executor's slots, one record per flow read and written with optimistic
concurrency (taken when an execution starts, given back when it ends, the next queued one admitted)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.core import events as ev
from engine.core.decider import AcquireSlot
from engine.core.execution import Execution
from engine.core.ports import ExecutorStore


async def acquire_slot(
    store: ExecutorStore, state: Execution, effect: AcquireSlot, clock: Callable[[], str]
) -> None:
    """Flow `concurrency`: take a slot, or queue / cancel / fail the execution as the flow says."""
    eid = state.id

    def take(record: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
        if eid in record["running"]:
            return None, "RUNNING"
        if len(record["running"]) < effect.limit:
            return {**record, "running": [*record["running"], eid]}, "RUNNING"
        if effect.behavior == "QUEUE":
            if eid in record["queued"]:
                return None, "QUEUED"
            return {**record, "queued": [*record["queued"], eid]}, "QUEUED"
        return None, "CANCELLED" if effect.behavior == "CANCEL" else "FAILED"

    verdict = await store.update_slots(state.namespace, state.flow_id, take)
    if verdict != state.state:
        await store.send_input(eid, ev.Admitted(date=clock(), state=verdict))


async def release_slot(store: ExecutorStore, state: Execution, limit: int, clock: Callable[[], str]) -> None:
    eid = state.id

    def give_back(record: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        running = [x for x in record["running"] if x != eid]
        queued = [x for x in record["queued"] if x != eid]
        nxt = None
        if queued and len(running) < limit:
            nxt = queued.pop(0)
            running.append(nxt)
        if running == record["running"] and queued == record["queued"]:
            return None, None
        return {"running": running, "queued": queued}, nxt

    nxt = await store.update_slots(state.namespace, state.flow_id, give_back)
    if nxt is not None:
        await store.send_input(nxt, ev.Admitted(date=clock(), state="RUNNING"))
