"""The real executor and worker on a ``MemoryStore``, in the caller's event loop (no server).

async with MemoryEngine() as eng:
    flow = await eng.deploy(source)
    state = await eng.run(flow)  # the execution once it ended
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from engine.core import events as ev
from engine.core.errors import EngineError
from engine.core.execution import Execution
from engine.core.model import Flow
from engine.core.states import TERMINAL, State
from engine.executor import Executor
from engine.flows import FlowCache
from engine.handoff import Handoff
from engine.ids import new_execution_id
from engine.runtime import Starter, make_expressions
from engine.testing.memory import MemoryStore
from eventstore.reader import read_execution
from plugins.registry import Registry, default_registry
from workers.worker import Worker


class MemoryEngine:
    """One executor and one worker sharing a ``MemoryStore``; started on entry, stopped on exit."""

    def __init__(
        self,
        store: MemoryStore | None = None,
        *,
        concurrency: int = 16,
        name: str = "memory",
        registry: Registry | None = None,
        work_in_memory: bool = True,
    ) -> None:
        """``registry``: the plugins flows may use (default: the installed ones); a plugin's own tests
        pass ``plugin_registry(register)`` to run it before it is installed."""
        self.store = store or MemoryStore()
        self.registry = registry if registry is not None else default_registry()
        # kv(), read() and errorLogs() over the in-memory store, as the runtime's over JetStream
        self.expressions = make_expressions(
            None, kv=self.store.kv, files=self.store.files, logs=self.store.read_logs
        )
        self.flows = FlowCache(self.store, self.registry)
        # The worker's reports go to the executor in memory, as in `engine run` (engine.handoff).
        self.handoff = Handoff()
        self.executor = Executor(
            self.store, self.flows, self.expressions, executor_id=f"x-{name}", handoff=self.handoff
        )
        self.executor.memory_work.enabled = work_in_memory  # False: work goes through the store's queue
        self.worker = Worker(
            self.store,
            self.registry,
            self.expressions,
            kv=self.store.kv,
            storage=self.store.files,
            worker_id=f"w-{name}",
            concurrency=concurrency,
            handoff=self.handoff,
        )
        self._roles: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> MemoryEngine:
        self._roles = [asyncio.create_task(self.executor.run()), asyncio.create_task(self.worker.run())]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._roles:
            task.cancel()
        await asyncio.gather(*self._roles, return_exceptions=True)

    async def deploy(self, source: str) -> Flow:
        return await self.flows.deploy(source)

    async def start(
        self,
        flow: Flow,
        inputs: dict[str, Any] | None = None,
        execution_id: str | None = None,
        *,
        fresh: bool = False,
    ) -> str:
        """Create an execution of ``flow`` as ``Runtime.create_execution`` does (files in memory)."""
        starter = Starter(self.store, self.store.files, self.handoff, self.store.last_seq)
        return await starter.create_execution(
            flow, dict(inputs or {}), execution_id=execution_id, fresh=fresh
        )

    async def run(
        self,
        flow: Flow,
        inputs: dict[str, Any] | None = None,
        timeout: float = 30,
        execution_id: str | None = None,
    ) -> Execution:
        """Start an execution and return it once it ended."""
        done = asyncio.Event()

        async def on_events(events: list[ev.Event]) -> None:
            if any(isinstance(e, ev.ExecutionStateChanged) and State(e.state) in TERMINAL for e in events):
                done.set()

        fresh = execution_id is None
        execution_id = execution_id or new_execution_id()
        sub = await self.store.watch_events(execution_id, on_events)
        try:
            await self.start(flow, inputs, execution_id, fresh=fresh)
            await asyncio.wait_for(done.wait(), timeout)
        finally:
            await sub.unsubscribe()
        state = (await read_execution(self.store, execution_id)).state
        if state is None:
            raise EngineError(f"execution {execution_id} ended but cannot be read")
        return state


def plugin_registry(*registers: Callable[[Registry], None]) -> Registry:
    """The installed plugins plus those ``registers`` add (what an ``engine.plugins`` entry point
    names): for a plugin's tests, before it is installed."""
    registry = default_registry().copy()
    for register in registers:
        register(registry)
    return registry
