"""What a task plugin is and what it may use while it runs.

A plugin is a ``PluginSpec``: a canonical Kestra type name, a msgspec Struct for its
properties, and (for runnable tasks) an async ``run`` function. Flowable tasks have no
``run``: the decider expands them.
"""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import msgspec

from engine.core.execution import Execution


class TaskResult(msgspec.Struct, frozen=True):
    """What a runnable task returns: its final state and its outputs."""

    state: Literal["SUCCESS", "WARNING", "FAILED", "KILLED"] = "SUCCESS"
    outputs: dict[str, Any] = msgspec.field(default_factory=dict)


class KVStore(Protocol):
    """Namespace-scoped key/value store backing ``kv()`` and the kv.* tasks."""

    async def get(self, namespace: str, key: str) -> Any | None: ...

    async def set(self, namespace: str, key: str, value: Any, ttl_s: float | None = None) -> None: ...

    async def delete(self, namespace: str, key: str) -> bool: ...

    async def keys(self, namespace: str, prefix: str = "") -> list[str]: ...


class FileStorage(Protocol):
    """Kestra's internal storage: files addressed by ``kestra://`` URIs (``eventstore.storage``)."""

    async def put(self, uri_or_path: str, data: Any) -> str:
        """Store bytes, text, a local Path or a binary file object at a URI; returns the URI."""
        ...

    async def get(self, uri: str) -> bytes: ...

    async def download(self, uri: str, dest: Path) -> Path:
        """Copy a stored file to a local path (chunk by chunk)."""
        ...

    async def size(self, uri: str) -> int: ...

    async def exists(self, uri: str) -> bool: ...

    async def delete(self, uri: str) -> bool: ...

    async def list(self, prefix: str = "/") -> builtins.list[str]: ...

    async def delete_prefix(self, prefix: str) -> builtins.list[str]: ...


class LogRecord(Protocol):
    """One stored log line of an execution."""

    @property
    def date(self) -> str: ...

    @property
    def level(self) -> str: ...

    @property
    def message(self) -> str: ...

    @property
    def taskrun_id(self) -> str | None: ...

    @property
    def task_id(self) -> str | None: ...

    @property
    def attempt(self) -> int | None: ...


class RunContext(Protocol):
    """Everything a runnable task sees while it runs one attempt."""

    execution_id: str
    taskrun_id: str
    task_id: str
    attempt: int
    namespace: str
    flow_id: str
    kv: KVStore
    storage: FileStorage
    variables: dict[str, Any]

    @property
    def workdir(self) -> Path:
        """A directory private to this attempt (made on first use, removed afterwards)."""
        ...

    async def render(self, value: Any) -> Any:
        """Render every expression in ``value`` (str, list or dict, recursively) against the run variables."""
        ...

    def log(self, level: str, message: str) -> None:
        """Emit one log line for this taskrun (streamed live and stored)."""
        ...

    def secret(self, name: str) -> str:
        """Read a secret from the configured backend (``engine.secrets``; by default ``SECRET_<NAME>``)."""
        ...

    def metric(self, type: str, name: str, value: float, tags: Mapping[str, str] | None = None) -> None:
        """Record a taskrun metric: ``counter`` (summed) or ``timer`` (seconds), Kestra's
        ``runContext.metric``; ``engine.core.metrics.MetricRefused`` when it is not one."""
        ...

    # What a few tasks read or change beyond their own run (other executions, logs, triggers): through
    # the context, so that a plugin never holds the store. Without the engine's store: TaskFailed.

    async def read_logs(self, execution_id: str) -> Sequence[LogRecord]:
        """The stored log lines of an execution, oldest first."""
        ...

    async def load_execution(self, execution_id: str) -> Execution | None:
        """An execution as it is now (None: no such execution)."""
        ...

    async def count_executions(self, keep: Callable[[Execution], bool]) -> dict[tuple[str, str], int]:
        """How many executions ``keep`` accepts, by (namespace, flow id)."""
        ...

    async def resume_execution(self, execution_id: str, inputs: dict[str, Any]) -> bool:
        """Ask a PAUSED execution to resume with ``inputs``; False when there is no such execution."""
        ...

    async def set_trigger_disabled(
        self, namespace: str, flow_id: str, trigger_id: str, disabled: bool
    ) -> None:
        """Disable (or enable again) a flow's trigger."""
        ...


RunFn = Callable[[Any, RunContext], Awaitable[TaskResult]]


@dataclass(frozen=True)
class PluginSpec:
    """One task type.

    ``props`` lists the properties besides the common task ones (id, type, retry, timeout, ...).
    ``branches`` names the properties of a flowable that hold child task lists (``tasks``, ``then``,
    ``else``, ``defaults``, ``errors``, ``finally``; ``cases`` is a map of lists).
    ``render`` False means the worker passes properties unrendered (the plugin renders lazily).
    ``version``: several versions of one type may be installed side by side; a task picks one with
    ``version:`` (the latest by default). Unset, the version of the distribution whose entry point
    registered it. ``outputs`` (a Struct) and ``examples`` (flow YAML) document the plugin
    (``engine plugins doc TYPE``).
    """

    type: str
    kind: Literal["runnable", "flowable"]
    props: builtins.type[msgspec.Struct]
    run: RunFn | None = None
    aliases: tuple[str, ...] = ()
    branches: tuple[str, ...] = ()
    render: bool = True
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    version: str | None = None
    outputs: builtins.type[msgspec.Struct] | None = None
    examples: tuple[str, ...] = ()


def runnable(
    type: str,
    props: builtins.type[msgspec.Struct],
    run: RunFn,
    description: str,
    *,
    aliases: tuple[str, ...] = (),
    render: bool = True,
    extra: dict[str, Any] | None = None,
    version: str | None = None,
    outputs: builtins.type[msgspec.Struct] | None = None,
    examples: tuple[str, ...] = (),
) -> PluginSpec:
    """A runnable task's PluginSpec."""
    return PluginSpec(
        type,
        "runnable",
        props,
        run=run,
        aliases=aliases,
        render=render,
        description=description,
        extra=extra or {},
        version=version,
        outputs=outputs,
        examples=examples,
    )
