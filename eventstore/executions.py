"""An execution as the store holds it: folded from its history (the ids of all: ``cli_ops.execution_ids``)."""

from __future__ import annotations

from engine.core.execution import Execution, evolve
from eventstore.store import Store


async def load_execution(store: Store, execution_id: str) -> Execution | None:
    """The execution after its last step (None: no such execution)."""
    state = None
    for seq, events in await store.read(execution_id):
        for event in events:
            state = evolve(state, event)
        if state is not None:
            state.seq = seq
    return state
