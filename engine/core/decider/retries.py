"""Retries: which policy applies to a taskrun (its own, an ancestor's, the flow's); the work for a worker."""

from __future__ import annotations

import msgspec

from engine.core.decider.effects import Dispatch
from engine.core.decider.sequencing import Sequencing
from engine.core.execution import TaskRun
from engine.core.model import Retry, Task
from engine.core.tree import MERGE, F


class Retries(Sequencing):
    def effective_retry(self, tr: TaskRun, task: Task) -> Retry | None:
        """A task's own retry, else its nearest flowable ancestor's, else the flow's (RETRY_FAILED_TASK)."""
        if task.retry is not None:
            return task.retry
        node = self.ex.taskruns.get(tr.parent_id) if tr.parent_id else None
        while node is not None:
            parent_task = self.tasks.get(node.task_id)
            if parent_task is not None and parent_task.retry is not None:
                return parent_task.retry
            node = self.ex.taskruns.get(node.parent_id) if node.parent_id else None
        retry = self.flow.retry
        if retry is not None and (retry.behavior or "RETRY_FAILED_TASK").upper() == "RETRY_FAILED_TASK":
            return retry
        return None

    def dispatch(self, tr: TaskRun, attempt: int, task: Task) -> Dispatch:
        retry = self.effective_retry(tr, task)
        if retry is not task.retry:
            task = msgspec.structs.replace(task, retry=retry)
        if task.type == MERGE:
            items = self.by_key.get((tr.parent_id, task.id[: -len("_merge")] + "_items", tr.value))
            task = msgspec.structs.replace(
                task, props={"executions": list(items.items or []) if items else []}
            )
        node = self.ex.taskruns.get(tr.parent_id) if tr.parent_id else None
        while node is not None:
            parent_task = self.tasks.get(node.task_id)
            if parent_task is not None and parent_task.type == F + "WorkingDirectory":
                files = parent_task.props.get("inputFiles")
                return Dispatch(tr.id, attempt, task, self.vars_for(tr), node.id, files)
            node = self.ex.taskruns.get(node.parent_id) if node.parent_id else None
        return Dispatch(tr.id, attempt, task, self.vars_for(tr))
