"""A real, in-memory RunContext (and KV store) for plugin tests."""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path
from typing import Any

import msgspec

from eventstore.storage import MemoryStorage
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
