"""Retries: which policy applies to a taskrun (its own, an ancestor's, the flow's); the work for a worker."""

from __future__ import annotations

from datetime import timedelta

import msgspec

from engine.core import events as ev
from engine.core.dates import parse as parse_date
from engine.core.decider.effects import Dispatch, Effect, Kill, ReleaseSlot, StartRetry
from engine.core.decider.sequencing import Sequencing
from engine.core.execution import Execution, TaskRun
from engine.core.factory import retry_created, retry_id
from engine.core.model import Flow, Retry, Task
from engine.core.retry import chain_delay, in_place, new_execution
from engine.core.states import TERMINAL, State
from engine.core.tree import MERGE, F

_FAILED = State.FAILED  # read for every taskrun of every decision (see lifecycle._PAUSED)


class Retries(Sequencing):
    def retry_policy(self, tr: TaskRun, task: Task) -> Retry | None:
        """Kestra's rule: a task's own retry, else its nearest flowable ancestor's, else the flow's."""
        if task.retry is not None:
            return task.retry
        node = self.ex.taskruns.get(tr.parent_id) if tr.parent_id else None
        while node is not None:
            parent_task = self.tasks.get(node.task_id)
            if parent_task is not None and parent_task.retry is not None:
                return parent_task.retry
            node = self.ex.taskruns.get(node.parent_id) if node.parent_id else None
        return self.flow.retry

    def effective_retry(self, tr: TaskRun, task: Task) -> Retry | None:
        """The policy the worker applies: only one that retries the task in place (RETRY_FAILED_TASK)."""
        return in_place(self.retry_policy(tr, task))

    def retry_in_new_execution(self) -> bool:
        """A failed task whose policy says CREATE_NEW_EXECUTION, with a try left: the task, its
        ancestors and the execution end RETRIED (Kestra's ``markWithTaskRunAs``) and the next try of
        the execution is created when the policy says. Its id is derived from this one, so deciding
        this step again can never start two."""
        ex = self.ex
        for tr in ex.taskruns.values():
            if tr.state != _FAILED:
                continue
            task = self.tasks.get(tr.task_id)
            if task is None or not (tr.runnable or task.type == F + "Subflow"):
                continue
            retry = self.retry_policy(tr, task)
            if not new_execution(retry):
                continue
            assert retry is not None
            delay = chain_delay(retry, ex.id, ex.attempt_number, ex.chain_created, self.now)
            if delay is None:
                continue  # the last try: the failure takes its usual course
            node: TaskRun | None = tr
            while node is not None:
                self.set_state(node, State.RETRIED)
                node = ex.taskruns.get(node.parent_id) if node.parent_id else None
            self.emit(ev.ExecutionStateChanged(date=self.now, state=State.RETRIED))
            self.out.effects.extend(next_try(ex, self.flow, self.now, delay))
            return True
        return False

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
                props = parent_task.props
                key = None  # where its cache archive is kept, per loop value as in Kestra
                if props.get("cache"):
                    key = parent_task.id if node.value is None else f"{parent_task.id}/{node.value}"
                return Dispatch(
                    tr.id,
                    attempt,
                    task,
                    self.vars_for(tr),
                    node.id,
                    props.get("inputFiles"),
                    props.get("outputFiles"),
                    props.get("cache"),
                    key,
                )
            node = self.ex.taskruns.get(node.parent_id) if node.parent_id else None
        return Dispatch(tr.id, attempt, task, self.vars_for(tr))


def next_try(ex: Execution, flow: Flow, retried_at: str, delay: float) -> list[Effect]:
    """What the shell does once an execution ended RETRIED at ``retried_at``: create its next try
    ``delay`` seconds later (the id derived from this execution's), stop what still runs of it, give
    back its concurrency slot. ``renotify`` asks for it again after a restart of the executor."""
    at = (parse_date(retried_at) + timedelta(seconds=delay)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    effects: list[Effect] = [StartRetry(retry_created(ex, flow, retry_id(ex.id), at))]
    running = tuple(
        tr.subflow_execution
        for tr in ex.taskruns.values()
        if tr.subflow_execution and tr.state not in TERMINAL
    )
    if running or any(tr.runnable and tr.state not in TERMINAL for tr in ex.taskruns.values()):
        effects.append(Kill((ex.id, *running)))
    if flow.concurrency is not None:
        effects.append(ReleaseSlot())
    return effects
