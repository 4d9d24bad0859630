"""The RunContext a task sees on a worker: rendering, logs, secrets, KV, storage, a working directory,
and the few reads and commands on the engine's store that some tasks need (other executions, logs,
triggers)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from engine.clock import utcnow
from engine.core import events as ev
from engine.core.errors import TaskFailed
from engine.core.execution import Execution
from engine.core.masking import masked, masked_text
from engine.core.metrics import Metrics
from engine.core.work import WorkItem
from engine.expressions import FUNCTION_PREFIX
from engine.secrets import read_secret
from eventstore.cli_ops import execution_ids
from eventstore.reader import read_execution
from eventstore.storage import InternalStorage, MemoryStorage
from eventstore.store import LogLine, Store
from eventstore.triggerstate import open_trigger_kv, set_disabled
from plugins.api import FileStorage, KVStore

_LEVEL_RANK = {"TRACE": 0, "DEBUG": 1, "INFO": 2, "WARN": 3, "WARNING": 3, "ERROR": 4}


class TaskRunContext:
    def __init__(
        self,
        item: WorkItem,
        attempt: int,
        workdir_parent: Path | None,
        kv: KVStore,
        expressions: Any,
        emit: Callable[[LogLine], None],
        storage: FileStorage | None = None,
        store: Store | None = None,
    ) -> None:
        self.execution_id = item.execution_id
        self.taskrun_id = item.taskrun_id
        self.task_id = item.task.id
        self.attempt = attempt
        # the task's `logLevel`: its lines below that level are not kept (Kestra's logger level)
        self._min_level = _LEVEL_RANK.get((item.task.log_level or "").upper(), 0)
        self.namespace = item.namespace
        self.flow_id = item.flow_id
        self._workdir_parent = workdir_parent
        self._workdir: Path | None = None
        self.kv = kv
        self.storage: FileStorage = storage if storage is not None else MemoryStorage()
        if store is None and isinstance(storage, InternalStorage):
            store = storage.store
        self._store = store
        self.variables = dict(item.variables)
        self.variables.setdefault("taskrun", {})["attemptsCount"] = attempt - 1
        self._expressions = expressions
        self._emit = emit
        # What this attempt's logs never show: its SECRET inputs and every secret() it renders or reads.
        # Its outputs hide only the latter: Kestra renders a SECRET input decrypted in outputs (its own
        # InputsTest asserts it), while a secret() value is masked everywhere.
        self.secret_inputs: frozenset[str] = frozenset(s for s in item.secrets if s)
        self.secrets: set[str] = set()
        self._render_secret = {FUNCTION_PREFIX + "secret": self.secret}
        self.metrics = Metrics()  # reported with the attempt's end

    shared_workdir: Path | None = None  # set inside a WorkingDirectory: kept between its tasks

    @property
    def workdir(self) -> Path:
        """A fresh directory for this attempt, made on first use (most tasks never need one)."""
        if self.shared_workdir is not None:
            self.shared_workdir.mkdir(parents=True, exist_ok=True)
            return self.shared_workdir
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix=f"engine-{self.task_id}-", dir=self._workdir_parent))
        return self._workdir

    def cleanup(self) -> None:
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    async def render(self, value: Any) -> Any:
        return await self._expressions.render_value_async(value, {**self.variables, **self._render_secret})

    def log(self, level: str, message: str) -> None:
        if _LEVEL_RANK.get(level.upper(), len(_LEVEL_RANK)) < self._min_level:
            return
        message = masked_text(message, self.secrets | self.secret_inputs)
        self._emit(LogLine(utcnow(), level, message, self.taskrun_id, self.task_id, self.attempt))

    def secret(self, name: str) -> str:
        value = read_secret(name)
        self.secrets.add(value)
        return value

    def metric(self, type: str, name: str, value: float, tags: Mapping[str, str] | None = None) -> None:
        self.metrics.add(type, name, value, tags, utcnow())

    def masked(self, value: Any) -> Any:
        """``value`` (a task's outputs, its error) with what its ``secret()`` calls returned masked."""
        return masked(value, self.secrets)

    def _engine(self, what: str) -> Store:
        if self._store is None:
            raise TaskFailed(f"{what} needs the engine's store (run it on a worker)", retryable=False)
        return self._store

    async def read_logs(self, execution_id: str) -> list[LogLine]:
        return await self._engine("reading logs").read_logs(execution_id)

    async def load_execution(self, execution_id: str) -> Execution | None:
        # as a replica serves it: a task only reads another execution, it decides nothing on it
        return (await read_execution(self._engine("reading an execution"), execution_id, leader=False)).state

    async def count_executions(self, keep: Callable[[Execution], bool]) -> dict[tuple[str, str], int]:
        store = self._engine("counting executions")
        counts: dict[tuple[str, str], int] = {}
        for execution_id in await execution_ids(store):
            state = (await read_execution(store, execution_id, leader=False)).state
            if state is not None and keep(state):
                key = (state.namespace, state.flow_id)
                counts[key] = counts.get(key, 0) + 1
        return counts

    async def resume_execution(self, execution_id: str, inputs: dict[str, Any]) -> bool:
        store = self._engine("resuming an execution")
        if not await store.last_seq(execution_id):
            return False
        await store.send_input(execution_id, ev.Resume(date=utcnow(), inputs=dict(inputs)))
        return True

    async def set_trigger_disabled(
        self, namespace: str, flow_id: str, trigger_id: str, disabled: bool
    ) -> None:
        kv = await open_trigger_kv(self._engine("changing a trigger"))
        await set_disabled(kv, namespace, flow_id, trigger_id, disabled)
