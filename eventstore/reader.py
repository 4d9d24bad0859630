"""The one reader of an execution: its latest snapshot plus the steps after it, folded.

``await read_execution(store, execution_id)`` is the execution as it stands;
``upto=SEQ`` is the execution as it stood after the step at stream sequence SEQ. The
executor's load and the runtime's ``load_execution`` use it; so should any other copy.
``read_executions`` reads many at once (an executor taking partitions over).

A read may be served by a replica a moment behind (a node that just restarted can be seconds
behind): an input judged against a stale state could be dropped as unknown. With more than one
replica, the leader says where the history ends and what the replica missed is read from it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import msgspec

from engine.core.execution import Execution, evolve
from engine.core.ports import HistoryStore, StoredStep
from engine.logs import get_logger

log = get_logger("eventstore.reader")

SNAPSHOT_VERSION = 1  # bump when evolve() folds differently: older snapshots are then ignored


class Snapshot(msgspec.Struct, array_like=True):
    version: int
    state: Execution


_snapshot_encoder = msgspec.msgpack.Encoder()
_snapshot_decoder = msgspec.msgpack.Decoder(Snapshot)


def encode_snapshot(state: Execution) -> bytes:
    return _snapshot_encoder.encode(Snapshot(SNAPSHOT_VERSION, state))


def decode_snapshot(data: bytes) -> Execution | None:
    """The state a snapshot holds; None when another version of the engine wrote it."""
    try:
        snap = _snapshot_decoder.decode(data)
    except msgspec.DecodeError:
        return None
    return snap.state if snap.version == SNAPSHOT_VERSION else None


class ExecutionRead(msgspec.Struct):
    state: Execution | None  # None: no such execution (or none yet at ``upto``)
    steps: int  # steps folded on top of the snapshot (all of them without one)
    has_snapshot: bool  # a snapshot is stored, usable or not (drop it when the execution ends)


async def read_execution(
    store: HistoryStore,
    execution_id: str,
    *,
    upto: int | None = None,
    snapshots: bool = True,
    leader: bool = True,
) -> ExecutionRead:
    """Fold the execution's history: its snapshot (unless ``snapshots`` is False) plus the tail;
    ``upto``: as of that step. ``leader``: complete what a lagging replica served from the stream's
    leader, failing while none is elected (what decides must not judge a stale state); without it,
    the replica's view, readable during an election (what only shows the execution)."""
    state: Execution | None = None
    data = await store.get_snapshot(execution_id) if snapshots else None
    if data is not None:
        state = decode_snapshot(data)
        if state is not None and upto is not None and state.seq > upto:
            state = None  # taken after the step asked for: fold from the start
    steps = await store.read_after(execution_id, state.seq if state else 0)
    if upto is not None:
        steps = [step for step in steps if step[0] <= upto]
    read_upto = steps[-1][0] if steps else (state.seq if state else 0)
    if leader and (upto is None or read_upto < upto):
        steps += await _missed(store, execution_id, read_upto, upto)
    return _fold(state, steps, data is not None)


async def read_executions(
    store: HistoryStore, execution_ids: Sequence[str], *, leader: bool = True
) -> dict[str, ExecutionRead]:
    """``read_execution`` of many executions (as they stand) in a few rounds, whatever their number:
    one for their snapshots, one for their tails (and one per 256 steps of the longest tail)."""
    ids = list(dict.fromkeys(execution_ids))
    snapshots = await store.get_snapshots(ids)
    states = {eid: decode_snapshot(data) for eid, data in snapshots.items()}
    after = {eid: (state.seq if (state := states.get(eid)) else 0) for eid in ids}
    tails = await store.read_many(after)
    if leader and store.replicas > 1:

        async def complete(eid: str) -> None:
            read_upto = tails[eid][-1][0] if tails[eid] else after[eid]
            tails[eid] += await _missed(store, eid, read_upto, None)

        await asyncio.gather(*(complete(eid) for eid in ids))
    return {eid: _fold(states.get(eid), tails[eid], eid in snapshots) for eid in ids}


def _fold(state: Execution | None, steps: list[StoredStep], has_snapshot: bool) -> ExecutionRead:
    for seq, events in steps:
        for event in events:
            state = evolve(state, event)
        if state is not None:
            state.seq = seq
    return ExecutionRead(state, len(steps), has_snapshot)


async def _missed(
    store: HistoryStore, execution_id: str, read_upto: int, upto: int | None
) -> list[StoredStep]:
    """What a lagging replica did not serve. One replica (the embedded server, or ENGINE_REPLICAS=1)
    is the leader: nothing to check."""
    if store.replicas <= 1:
        return []
    last = await store.last_seq(execution_id, leader=True)
    if upto is not None:
        last = min(last, upto)
    if last <= read_upto:
        return []
    log.info("reader.stale_read", execution_id=execution_id, read=read_upto, last=last)
    return await store.read_from_leader(execution_id, read_upto, last)
