"""Sequencing: taskruns one after the other, all at once, at most n at a time, by Dag dependencies; runIf."""

from __future__ import annotations

from abc import ABC, abstractmethod

from engine.core import events as ev
from engine.core.decider.base import RUNNING, StepBase
from engine.core.execution import TaskRun
from engine.core.model import Task
from engine.core.states import FAILED_STATES, STATE_OF, TERMINAL, State, worst
from engine.core.tree import make_id


class Sequencing(StepBase, ABC):
    def create(
        self,
        task: Task,
        parent: TaskRun | None,
        branch: str,
        value: str | None,
        iteration: int | None = None,
        round_: bool = False,
    ) -> None:
        parts = [self.ex.id, parent.id if parent else None, task.id, value]
        if round_:
            parts.append(f"round {iteration}")
        if self.ex.restarts:
            # A taskrun re-created after a restart (an errors branch) gets a new id: its messages
            # must not be taken for the first run's (idempotency keys are derived from ids).
            parts.append(f"restart {self.ex.restarts}")
        tr_id = make_id(*parts)
        self.emit(
            ev.TaskRunCreated(
                date=self.now,
                taskrun_id=tr_id,
                task_id=task.id,
                parent_id=parent.id if parent else None,
                value=value,
                branch=branch,
                iteration=iteration,
                runnable=not task.flowable,
            )
        )

    def block(
        self,
        tasks: tuple[Task, ...],
        parent: TaskRun | None,
        branch: str,
        value: str | None,
        limit: int = 1,
        round_: int | None = None,
    ) -> State | None:
        """Advance a list of tasks; ``limit`` 1 = one after the other, 0 = all at once, n = at most n.

        ``round_`` selects one round of a WaitFor. Returns None while running, else the combined state.
        """
        active = [t for t in tasks if not t.disabled]
        states: list[State] = []
        running = 0
        failed = False
        pending: list[Task] = []
        for task in active:
            if round_ is None:
                tr = self.by_key.get((parent.id if parent else None, task.id, value))
            else:
                tr = self.by_round.get((parent.id if parent else None, task.id, round_))
            if tr is None:
                pending.append(task)
                continue
            st = STATE_OF[tr.state]
            if st in TERMINAL:
                states.append(st)
                if st in FAILED_STATES:
                    failed = True
            else:
                running += 1
                self.advance(tr, task)
        if limit == 1:
            # Sequential: start the next one only when every earlier one ended well.
            if running or failed:
                return RUNNING if running else worst(states)
            if pending:
                self.create(pending[0], parent, branch, value, round_, round_ is not None)
                return RUNNING
            return worst(states)
        waiting = len(pending)
        if not failed:
            for task in pending:
                if limit and running >= limit:
                    break
                self.create(task, parent, branch, value)
                running += 1
                waiting -= 1
        if running or (waiting and not failed):
            return RUNNING
        return worst(states)

    def dag(self, tasks: tuple[Task, ...], parent: TaskRun, limit: int) -> State | None:
        states: dict[str, State] = {}
        running = 0
        for task in tasks:
            tr = self.by_key.get((parent.id, task.id, parent.value))
            if tr is not None:
                st = STATE_OF[tr.state]
                if st.terminal:
                    states[task.id] = st
                else:
                    running += 1
                    self.advance(tr, task)
        failed = any(s.failed for s in states.values())
        if not failed:
            for task in tasks:
                if (parent.id, task.id, parent.value) in self.by_key or task.disabled:
                    continue
                if limit and running >= limit:
                    break
                if all(
                    states.get(d) in (State.SUCCESS, State.WARNING, State.SKIPPED) for d in task.depends_on
                ):
                    self.create(task, parent, "tasks", parent.value)
                    running += 1
        done = len(states) == len([t for t in tasks if not t.disabled])
        if running or (not done and not failed):
            return RUNNING
        return worst(list(states.values()))

    @abstractmethod
    def advance(self, tr: TaskRun, task: Task) -> None:
        """Move one taskrun on (runIf, dispatch, a flowable's start or progress): ``Flowables``."""
