"""The real executor and worker on the in-memory store: a whole flow with no nats-server."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from engine.clock import utcnow
from engine.core import events as ev
from engine.ids import new_execution_id
from engine.testing.memory import MemoryStore
from engine.testing.run import MemoryEngine
from eventstore import subjects as S
from eventstore.reader import read_execution

pytestmark = pytest.mark.anyio

TASKS = 40


def chain(n: int) -> str:
    """n Return tasks, each one reading the previous one's output."""
    lines = [
        "id: chain",
        "namespace: memory.test",
        "tasks:",
        "  - id: t0",
        "    type: io.kestra.plugin.core.debug.Return",
    ]
    lines.append('    format: "0"')
    for i in range(1, n):
        lines += [f"  - id: t{i}", "    type: io.kestra.plugin.core.debug.Return"]
        lines.append(f'    format: "{{{{ outputs.t{i - 1}.value }}}}.{i}"')
    return "\n".join(lines) + "\n"


async def test_a_40_task_sequential_flow_runs_to_its_end_in_memory(
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = MemoryStore()
    async with MemoryEngine(store) as eng:
        flow = await eng.deploy(chain(TASKS))
        await eng.run(flow)  # warm: templates compiled, tasks resolved
        began = time.perf_counter()
        state = await eng.run(flow)
        took = time.perf_counter() - began
    with capsys.disabled():
        print(f"\n{TASKS}-task sequential flow on the memory store: {took * 1000:.1f} ms")
    assert state.state == "SUCCESS"
    by_task = {tr.task_id: tr for tr in state.taskruns.values()}
    assert len(by_task) == TASKS
    assert all(tr.state == "SUCCESS" for tr in by_task.values())
    assert by_task[f"t{TASKS - 1}"].outputs["value"] == ".".join(str(i) for i in range(TASKS))
    assert all(len(tr.attempts) == 1 for tr in by_task.values())  # nothing ran twice
    steps = await store.read(state.id)
    assert [seq for seq, _ in steps] == sorted(seq for seq, _ in steps)
    assert not store.snapshots  # an ended execution keeps none
    assert await store.running_attempts() == []


async def test_a_kill_stops_a_running_task_through_the_memory_store() -> None:
    source = """
id: sleepy
namespace: memory.test
tasks:
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT60S
  - id: never
    type: io.kestra.plugin.core.debug.Return
    format: "x"
"""
    async with MemoryEngine() as eng:
        flow = await eng.deploy(source)
        done: asyncio.Event = asyncio.Event()

        async def on_events(events: list[ev.Event]) -> None:
            if any(isinstance(e, ev.ExecutionStateChanged) and e.state == "KILLED" for e in events):
                done.set()

        eid = new_execution_id()
        sub = await eng.store.watch_events(eid, on_events)
        await eng.start(flow, execution_id=eid)
        for _ in range(500):  # until the worker announced the attempt
            state = (await read_execution(eng.store, eid)).state
            if state is not None and any(tr.state == "RUNNING" for tr in state.taskruns.values()):
                break
            await asyncio.sleep(0.01)
        await eng.store.send_input(eid, ev.KillRequested(date=utcnow(), reason="test"))
        await asyncio.wait_for(done.wait(), 10)
        await sub.unsubscribe()
        state = (await read_execution(eng.store, eid)).state
    assert state is not None and state.state == "KILLED"
    assert {tr.task_id: tr.state for tr in state.taskruns.values()} == {"nap": "KILLED"}


async def test_a_lost_consumer_that_cannot_be_recreated_at_once_is_tried_again() -> None:
    store = MemoryStore()
    async with MemoryEngine(store) as eng:
        flow = await eng.deploy(chain(2))
        await eng.run(flow)  # the executor holds every partition
        eid = next(f"p0-{i}" for i in range(1000) if S.partition(f"p0-{i}") == 0)
        real = store.consume_inputs
        refused: list[int] = []

        async def once_refused(partition: int, on_input: Any) -> Any:
            if not refused:
                refused.append(partition)
                raise TimeoutError("nats: timeout")  # a stream leader being elected
            return await real(partition, on_input)

        store.consume_inputs = once_refused  # type: ignore[method-assign]
        store._inputs[0].consumer = None  # the server lost partition 0's consumer
        checks = asyncio.create_task(eng.executor.check_consumers(every=0.01))
        try:
            state = await eng.run(flow, execution_id=eid, timeout=10)
        finally:
            checks.cancel()
    assert refused == [0]
    assert state.state == "SUCCESS"
