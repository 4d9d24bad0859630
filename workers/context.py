"""The RunContext a task sees on a worker: rendering, logs, secrets, KV, storage, a working directory."""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.clock import utcnow
from engine.core.errors import ExpressionError
from engine.core.work import WorkItem
from eventstore.store import LogLine
from plugins.api import FileStorage, KVStore


def read_secret(name: str) -> str:
    """Kestra OSS secrets: environment variable ``SECRET_<NAME>``, base64-encoded."""
    raw = os.environ.get(f"SECRET_{name}")
    if raw is None:
        raise ExpressionError(
            f"secret {name!r} not found: set the environment variable SECRET_{name} "
            "to its base64-encoded value"
        )
    try:
        return base64.b64decode(raw).decode()
    except ValueError as exc:
        raise ExpressionError(f"secret {name!r}: SECRET_{name} is not valid base64") from exc


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
    ) -> None:
        self.execution_id = item.execution_id
        self.taskrun_id = item.taskrun_id
        self.task_id = item.task.id
        self.attempt = attempt
        self.namespace = item.namespace
        self.flow_id = item.flow_id
        self._workdir_parent = workdir_parent
        self._workdir: Path | None = None
        self.kv = kv
        if storage is None:
            from eventstore.storage import MemoryStorage

            storage = MemoryStorage()
        self.storage: FileStorage = storage
        # The engine's store, for the few tasks that act on other executions (execution.Resume...).
        self.store: Any = getattr(storage, "store", None)
        self.variables = dict(item.variables)
        self.variables.setdefault("taskrun", {})["attemptsCount"] = attempt - 1
        self._expressions = expressions
        self._emit = emit

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
        return await self._expressions.render_value_async(value, self.variables)

    def log(self, level: str, message: str) -> None:
        self._emit(LogLine(utcnow(), level, message, self.taskrun_id, self.task_id, self.attempt))

    def secret(self, name: str) -> str:
        return read_secret(name)
