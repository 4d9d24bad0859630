"""Executions as the store holds them: every id, and one execution folded from its history."""

from __future__ import annotations

from engine.core.execution import Execution, evolve
from eventstore import subjects as S
from eventstore.store import Store


async def execution_ids(store: Store) -> list[str]:
    """The id of every execution in the store (each EVENTS shard's subjects)."""
    out: list[str] = []
    for k in range(S.SHARDS):
        info = await store.js.stream_info(f"{S.EVENTS}_{k}", subjects_filter="ev.>")
        out += [subject.split(".", 2)[2] for subject in info.state.subjects or {}]
    return out


async def load_execution(store: Store, execution_id: str) -> Execution | None:
    """The execution after its last step (None: no such execution)."""
    state = None
    for seq, events in await store.read(execution_id):
        for event in events:
            state = evolve(state, event)
        if state is not None:
            state.seq = seq
    return state
