"""A real, in-memory RunContext (and KV store) for plugin tests."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import msgspec

from engine.core.execution import Execution
from engine.core.metrics import Metrics
from eventstore.storage import MemoryStorage
from eventstore.store import LogLine
from plugins.api import FileStorage, KVStore, PluginSpec, RunContext, TaskResult
from plugins.registry import Registry


class MemoryKV:
    """KVStore protocol in memory, with TTLs on the monotonic clock."""

    def __init__(self) -> None:
        self.data: dict[tuple[str, str], tuple[Any, float | None]] = {}

    def _live(self, namespace: str, key: str) -> tuple[Any, float | None] | None:
        item = self.data.get((namespace, key))
        if item is not None and item[1] is not None and item[1] <= time.monotonic():
            del self.data[(namespace, key)]
            return None
        return item

    async def get(self, namespace: str, key: str) -> Any | None:
        item = self._live(namespace, key)
        return None if item is None else item[0]

    async def set(self, namespace: str, key: str, value: Any, ttl_s: float | None = None) -> None:
        self.data[(namespace, key)] = (value, None if ttl_s is None else time.monotonic() + ttl_s)

    async def delete(self, namespace: str, key: str) -> bool:
        existed = self._live(namespace, key) is not None
        self.data.pop((namespace, key), None)
        return existed

    async def keys(self, namespace: str, prefix: str = "") -> list[str]:
        return sorted(
            k
            for (ns, k) in list(self.data)
            if ns == namespace and k.startswith(prefix) and self._live(ns, k) is not None
        )


class FakeContext:
    """Implements plugins.api.RunContext; ``render`` returns values unchanged."""

    def __init__(self, workdir: Path, kv: MemoryKV | None = None, namespace: str = "company.team") -> None:
        self.execution_id = "exec1"
        self.taskrun_id = "tr1"
        self.task_id = "task1"
        self.attempt = 1
        self.namespace = namespace
        self.flow_id = "flow1"
        self.workdir = workdir
        self.store = kv if kv is not None else MemoryKV()
        self.kv: KVStore = self.store
        self.files = MemoryStorage()  # internal storage (kestra:// URIs) in memory
        self.storage: FileStorage = self.files
        self.variables: dict[str, Any] = {}
        self.logs: list[tuple[str, str]] = []
        self.log_times: list[float] = []
        self.secrets: dict[str, str] = {}
        # the engine's side, in memory: other executions, their logs, trigger switches
        self.executions: dict[str, Execution] = {}
        self.execution_logs: dict[str, list[LogLine]] = {}
        self.resumed: list[tuple[str, dict[str, Any]]] = []
        self.disabled_triggers: dict[tuple[str, str, str], bool] = {}
        self.metrics = Metrics()  # the engine's own merging rule

    def metric(self, type: str, name: str, value: float, tags: Mapping[str, str] | None = None) -> None:
        self.metrics.add(type, name, value, tags, "2026-12-03T00:00:00Z")

    async def render(self, value: Any) -> Any:
        return value

    def log(self, level: str, message: str) -> None:
        self.logs.append((level, message))
        self.log_times.append(time.monotonic())

    def secret(self, name: str) -> str:
        if name in self.secrets:
            return self.secrets[name]
        raw = os.environ.get(f"SECRET_{name.upper()}")
        if raw is None:
            raise KeyError(name)
        return base64.b64decode(raw).decode()

    async def read_logs(self, execution_id: str) -> list[LogLine]:
        return self.execution_logs.get(execution_id, [])

    async def load_execution(self, execution_id: str) -> Execution | None:
        return self.executions.get(execution_id)

    async def count_executions(self, keep: Callable[[Execution], bool]) -> dict[tuple[str, str], int]:
        counts: dict[tuple[str, str], int] = {}
        for state in self.executions.values():
            if keep(state):
                counts[(state.namespace, state.flow_id)] = counts.get((state.namespace, state.flow_id), 0) + 1
        return counts

    async def resume_execution(self, execution_id: str, inputs: dict[str, Any]) -> bool:
        if execution_id not in self.executions and execution_id != self.execution_id:
            return False
        self.resumed.append((execution_id, inputs))
        return True

    async def set_trigger_disabled(
        self, namespace: str, flow_id: str, trigger_id: str, disabled: bool
    ) -> None:
        self.disabled_triggers[(namespace, flow_id, trigger_id)] = disabled

    def messages(self, level: str | None = None) -> list[str]:
        return [m for lvl, m in self.logs if level is None or lvl == level]


def _check_protocol(ctx: FakeContext) -> RunContext:
    return ctx  # mypy checks FakeContext satisfies the protocol


def registry() -> Registry:
    import plugins.core
    import plugins.scripts

    reg = Registry()
    plugins.core.register(reg)
    plugins.scripts.register(reg)
    return reg


async def run_task(type_name: str, props: dict[str, Any], ctx: FakeContext) -> TaskResult:
    """Resolve ``type_name`` and run it the way the worker does (msgspec.convert, strict=False)."""
    spec: PluginSpec = registry().resolve(type_name)
    assert spec.kind == "runnable" and spec.run is not None
    return await spec.run(msgspec.convert(props, spec.props, strict=False), ctx)
