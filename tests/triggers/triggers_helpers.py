"""Helpers for the trigger tests: an in-process engine, a fake clock, a recorder of executions.

Every test uses a namespace of its own on the shared session server (127.0.0.1), and its
trigger services only index that namespace, so tests never see each other's triggers.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from engine.core import events as ev


def ns() -> str:
    return f"tr.t{uuid.uuid4().hex[:10]}"


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.t = start or datetime(2031, 3, 5, 10, 0, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


class Recorder:
    """Every execution created in namespaces under ``prefix`` and its state changes, as they are appended."""

    def __init__(self, nc: Any, prefix: str) -> None:
        self.nc = nc
        self.prefix = prefix
        self.created: dict[str, ev.ExecutionCreated] = {}
        self.creates: list[str] = []  # every ExecutionCreated seen (a duplicate would show twice)
        self.states: dict[str, list[tuple[str, str]]] = {}
        self._sub: Any = None
        self._changed = asyncio.Event()

    async def start(self) -> Recorder:
        async def on_msg(msg: Any) -> None:
            eid = msg.subject.split(".", 2)[2]
            for event in ev.decode(msg.data):
                if isinstance(event, ev.ExecutionCreated) and event.namespace.startswith(self.prefix):
                    self.created[eid] = event
                    self.creates.append(eid)
                    self.states.setdefault(eid, [])
                elif isinstance(event, ev.ExecutionStateChanged) and eid in self.created:
                    self.states[eid].append((event.state, event.date))
            self._changed.set()

        self._sub = await self.nc.subscribe("ev.>", cb=on_msg)
        await self.nc.flush()
        return self

    async def stop(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()

    def of(self, flow_id: str) -> list[ev.ExecutionCreated]:
        return [c for c in self.created.values() if c.flow_id == flow_id]

    def state(self, eid: str) -> str | None:
        s = self.states.get(eid)
        return s[-1][0] if s else None

    async def wait(self, predicate: Callable[[], bool], timeout: float = 10, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
            self._changed.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.2))

    async def wait_ended(self, flow_id: str, count: int, timeout: float = 10) -> list[ev.ExecutionCreated]:
        from engine.core.states import TERMINAL, State

        def done() -> bool:
            runs = self.of(flow_id)
            return len(runs) >= count and all(
                (st := self.state(c.execution_id)) is not None and State(st) in TERMINAL for c in runs
            )

        await self.wait(done, timeout, f"{count} ended execution(s) of {flow_id}")
        return self.of(flow_id)


class Engine:
    def __init__(self, rt: Any) -> None:
        self.rt = rt

    async def deploy(self, source: str) -> Any:
        return await self.rt.flows.deploy(source)

    async def run(
        self, flow: Any, inputs: dict[str, Any] | None = None, timeout: float = 10, **kw: Any
    ) -> Any:
        from engine.ids import new_execution_id
        from engine.inputs import resolve_inputs

        eid = new_execution_id()
        resolved = resolve_inputs(flow, inputs or {})
        return await self.rt.wait_terminal(
            eid,
            on_start=lambda: self.rt.create_execution(flow, resolved, execution_id=eid, **kw),
            timeout=timeout,
        )


@asynccontextmanager
async def engine_roles(nats_url: str, home: Path) -> AsyncIterator[Engine]:
    from engine.runtime import Runtime

    async with Runtime(nats_url=nats_url, home=home) as rt:
        roles = [asyncio.create_task(rt.executor().run()), asyncio.create_task(rt.worker().run())]
        try:
            yield Engine(rt)
        finally:
            from engine.aio import stop_tasks

            await stop_tasks(roles)


@asynccontextmanager
async def trigger_service(rt: Any, namespace: str, **kw: Any) -> AsyncIterator[Any]:
    """A TriggerService limited to ``namespace``, with a durable of its own that expires when unused."""
    from triggers.service import TriggerService

    kw.setdefault("durable", f"triggers-test-{uuid.uuid4().hex[:8]}")
    kw.setdefault("inactive_threshold", 30.0)
    service = TriggerService(rt, namespace=namespace, **kw)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()
