"""The work message of a dispatched taskrun: what a worker needs, taken from the execution's state."""

from __future__ import annotations

from engine.core.decider.effects import Dispatch
from engine.core.execution import Execution
from engine.core.work import WorkItem


def work_item(state: Execution, effect: Dispatch) -> WorkItem:
    return WorkItem(
        state.id,
        effect.taskrun_id,
        effect.attempt,
        effect.task,
        state.namespace,
        state.flow_id,
        state.flow_revision,
        effect.variables,
        [str(state.inputs[k]) for k in state.secret_inputs if state.inputs.get(k)],
        effect.workdir,
        effect.workdir_files,
        first_started(state, effect.taskrun_id),
        effect.workdir_outputs,
        effect.workdir_cache,
        effect.workdir_key,
    )


def first_started(state: Execution, taskrun_id: str) -> str | None:
    """When the taskrun's first attempt started, if one did (the worker's retries count from it)."""
    tr = state.taskruns.get(taskrun_id)
    if tr is None or not tr.attempts or not tr.attempts[0].histories:
        return None
    return tr.attempts[0].histories[0].date
