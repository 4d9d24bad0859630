"""Inputs that can never succeed end once, with one warning line: they are not retried forever."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import engine.executor as executor_module
from engine.clock import utcnow
from engine.core import events as ev
from engine.core.errors import PayloadTooLarge
from engine.ids import new_execution_id
from engine.testing.memory import MemoryStore
from engine.testing.run import MemoryEngine
from eventstore.reader import read_execution

pytestmark = pytest.mark.anyio


def returns(flow_id: str, *formats: str, extra: str = "") -> str:
    """A flow of Return tasks t0, t1... with these formats."""
    lines = [f"id: {flow_id}", "namespace: poison.test", "tasks:"]
    for i, fmt in enumerate(formats):
        lines += [f"  - id: t{i}", "    type: io.kestra.plugin.core.debug.Return", f"    format: {fmt}"]
    return "\n".join(lines) + "\n" + extra


FLOW = returns("hello", '"x"')


class Recorder:
    """Stands for the executor's logger: every call kept as ``(method, event, fields)``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def __getattr__(self, method: str) -> Any:
        def record(event: str, **fields: Any) -> None:
            self.calls.append((method, event, fields))

        return record

    @property
    def events(self) -> list[str]:
        return [event for _, event, _ in self.calls]


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(executor_module, "log", recorder)
    return recorder


async def _ended(eng: MemoryEngine, execution_id: str, within: float = 5.0) -> object:
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        state = (await read_execution(eng.store, execution_id)).state
        if state is not None and state.is_terminal:
            return state
        await asyncio.sleep(0.02)
    raise AssertionError(f"execution {execution_id} did not end within {within}s")


async def test_a_creation_for_a_revision_not_deployed_ends_failed_with_the_reason(
    logs: Recorder,
) -> None:
    async with MemoryEngine() as eng:
        flow = await eng.deploy(FLOW)
        eid = new_execution_id()
        created = ev.ExecutionCreated(
            date=utcnow(), execution_id=eid, namespace=flow.namespace, flow_id=flow.id, flow_revision=7
        )
        await eng.store.send_input(eid, created, msg_id=f"{eid}:created")
        state = await _ended(eng, eid)
        await asyncio.sleep(1.5)  # a naked input would be delivered again after 1 s
    assert state.state == "FAILED"  # type: ignore[attr-defined]
    assert not state.taskruns  # type: ignore[attr-defined]
    steps = await eng.store.read(eid)
    reasons = [e.reason for _, step in steps for e in step if isinstance(e, ev.ExecutionStateChanged)]
    assert reasons == ["flow poison.test.hello revision 7 is not deployed"]
    events = logs.events
    assert "executor.process_failed" not in events
    assert events.count("executor.creation_refused") == 1
    assert all(method == "warning" for method, _, _ in logs.calls)  # no traceback for a refusal


async def test_an_input_that_does_not_decode_is_refused_once(logs: Recorder) -> None:
    async with MemoryEngine() as eng:
        eid = new_execution_id()
        eng.store._input(eid, b"not an input")
        await asyncio.sleep(1.5)
    events = logs.events
    assert "executor.process_failed" not in events
    assert events.count("executor.input_refused") == 1


async def test_an_input_to_an_execution_whose_revision_is_gone_is_refused_once(
    logs: Recorder,
) -> None:
    async with MemoryEngine() as eng:
        flow = await eng.deploy(FLOW)
        state = await eng.run(flow)
        eng.flows._cache.clear()
        eng.store._flows.clear()
        await eng.store.send_input(state.id, ev.KillRequested(date=utcnow(), reason="late"))
        await asyncio.sleep(1.5)
    events = logs.events
    assert "executor.process_failed" not in events
    assert events.count("executor.input_refused") == 1


class SmallStore(MemoryStore):
    """A store whose messages are bounded like a NATS server's ``max_payload``."""

    LIMIT = 200_000

    async def append(self, execution_id: str, events: list[ev.Event], expected_last_seq: int) -> int:
        size = len(ev.encode(events))
        if size > self.LIMIT:
            raise PayloadTooLarge(size, self.LIMIT)
        return await super().append(execution_id, events, expected_last_seq)


BIG = returns("hello", "\"{{ 'x' * 300000 }}\"", '"never"')


async def test_a_step_too_large_to_store_ends_the_execution_failed(logs: Recorder) -> None:
    async with MemoryEngine(SmallStore()) as eng:
        flow = await eng.deploy(BIG)
        state = await eng.run(flow, timeout=10)
    assert state.state == "FAILED"
    steps = await eng.store.read(state.id)
    reasons = [e.reason for _, step in steps for e in step if isinstance(e, ev.ExecutionStateChanged)]
    assert reasons[-1] is not None and "over the limit of 200000 bytes" in reasons[-1]
    assert "executor.process_failed" not in logs.events
    assert logs.events.count("executor.step_too_large") == 1
    assert not any(tr.task_id == "t1" for tr in state.taskruns.values())


class SmallInbox(MemoryStore):
    """A store whose inputs are bounded like a NATS server's ``max_payload``."""

    LIMIT = 200_000

    async def send_input(self, execution_id: str, item: ev.Input, msg_id: str | None = None) -> None:
        size = len(ev.encode_input(item))
        if size > self.LIMIT:
            raise PayloadTooLarge(size, self.LIMIT)
        await super().send_input(execution_id, item, msg_id)


CHILD = returns(
    "child",
    "x",
    extra="outputs:\n  - id: big\n    type: STRING\n    value: \"{{ 'x' * 300000 }}\"\n",
)


PARENT = """\
id: parent
namespace: poison.test
tasks:
  - id: sub
    type: io.kestra.plugin.core.flow.Subflow
    namespace: poison.test
    flowId: child
    wait: true
"""


async def test_a_subflow_whose_outputs_cannot_be_sent_fails_its_parents_task(logs: Recorder) -> None:
    async with MemoryEngine(SmallInbox()) as eng:
        await eng.deploy(CHILD)
        parent = await eng.deploy(PARENT)
        state = await eng.run(parent, timeout=10)
    assert state.state == "FAILED"
    (sub,) = state.taskruns.values()
    assert sub.state == "FAILED"
    assert logs.events.count("executor.subflow_outputs_too_large") == 1
