"""The state one decider step works on, and the helpers every concern uses."""

from __future__ import annotations

from typing import Any

from engine.core import events as ev
from engine.core.context import variables
from engine.core.decider.effects import Decision
from engine.core.execution import Execution, TaskRun
from engine.core.model import Flow, Task
from engine.core.ports import Templates
from engine.core.states import State

RUNNING = None
"""A block's status while it has not finished (else its combined state)."""

WAITING_FOR_WORKER = (State.CREATED, State.RESTARTED, State.RESUBMITTED)


class StepBase:
    """One decision over one state: what every concern of the decider shares.

    The concerns are classes stacked on this one, each in its module: sequencing, retries,
    subflows, flowable tasks, the execution's lifecycle; a lower concern declares what it calls
    of a higher one (``advance``).
    """

    def __init__(
        self, ex: Execution, flow: Flow, now: str, templates: Templates, tasks: dict[str, Task]
    ) -> None:
        self.ex = ex
        self.flow = flow
        self.now = now
        self.templates = templates
        self.tasks = tasks
        self.out = Decision()
        self.final: State | None = None

        self._by_key: dict[tuple[str | None, str, str | None], TaskRun] | None = None
        self._by_round: dict[tuple[str | None, str, int | None], TaskRun] | None = None

    # Built on first use: moving one created taskrun on (``advance_created``) needs neither. Not
    # functools.cached_property: on Python 3.11 it takes a lock on every first read.

    @property
    def by_key(self) -> dict[tuple[str | None, str, str | None], TaskRun]:
        if self._by_key is None:
            self._by_key = {(tr.parent_id, tr.task_id, tr.value): tr for tr in self.ex.taskruns.values()}
        return self._by_key

    @property
    def by_round(self) -> dict[tuple[str | None, str, int | None], TaskRun]:
        """WaitFor runs its tasks again each round: its children are found by round (iteration)."""
        if self._by_round is None:
            self._by_round = {
                (tr.parent_id, tr.task_id, tr.iteration): tr for tr in self.ex.taskruns.values()
            }
        return self._by_round

    # -- helpers --------------------------------------------------------------------------

    def emit(self, event: ev.Event) -> None:
        self.out.events.append(event)

    def set_state(self, tr: TaskRun, state: State, reason: str | None = None) -> None:
        self.emit(ev.TaskRunStateChanged(date=self.now, taskrun_id=tr.id, state=state, reason=reason))

    def vars_for(self, tr: TaskRun | None) -> dict[str, Any]:
        result = variables(self.ex, self.flow, self.tasks, tr, envs=self.templates.envs)
        if self.final is not None:
            result["execution"]["state"] = str(self.final)
        return result

    def render(self, value: Any, tr: TaskRun | None) -> Any:
        return self.templates.render_value(value, self.vars_for(tr))
