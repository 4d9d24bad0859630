"""The decider: what happens next (``decide``, ``settle``); engine.accept turns inputs into events.

Both are pure: no I/O, no clock, no randomness. ``now`` comes in as an argument and every id
is derived from the execution id and the task's position, so deciding twice on the same
state yields the same events. Work for workers and child executions come out as effects,
which the shell performs only after the events are appended.
"""

from __future__ import annotations

from engine.core import events as ev
from engine.core.decider.base import WAITING_FOR_WORKER
from engine.core.decider.effects import (
    AcquireSlot,
    Decision,
    Dispatch,
    Effect,
    Kill,
    NotifyParent,
    ReleaseSlot,
    StartRetry,
    StartSubflow,
    Timer,
    without_repeats,
)
from engine.core.decider.lifecycle import Step
from engine.core.decider.retries import next_try
from engine.core.errors import EngineError
from engine.core.execution import Execution, evolve
from engine.core.model import Flow, Task
from engine.core.ports import Templates
from engine.core.retry import chain_delay
from engine.core.states import STATE_OF, State
from engine.core.tree import F, index_tasks

__all__ = [
    "AcquireSlot",
    "Decision",
    "Dispatch",
    "Effect",
    "Kill",
    "NotifyParent",
    "ReleaseSlot",
    "StartRetry",
    "StartSubflow",
    "Timer",
    "advance_created",
    "created_next",
    "decide",
    "redispatch",
    "renotify",
    "settle",
    "without_repeats",
]


def decide(
    state: Execution, flow: Flow, now: str, templates: Templates, tasks: dict[str, Task] | None = None
) -> Decision:
    """One step: the events and effects the current state calls for (may be empty)."""
    return Step(state, flow, now, templates, tasks or index_tasks(flow)).run()


def redispatch(state: Execution, flow: Flow, now: str, templates: Templates) -> list[Dispatch]:
    """The work sent but not yet started (the shell cannot know whether it went out before a crash):
    the same dispatches again, built exactly as the first time (retry, working directory...)."""
    step = Step(state, flow, now, templates, index_tasks(flow))
    return [
        step.dispatch(tr, tr.dispatched, step.tasks[tr.task_id])
        for tr in state.taskruns.values()
        if tr.runnable
        and tr.state in WAITING_FOR_WORKER
        and tr.dispatched > tr.current_attempt
        and tr.task_id in step.tasks
    ]


def renotify(state: Execution, flow: Flow, now: str, templates: Templates) -> list[Effect]:
    """A finished subflow execution's end, told to its parent again; a RETRIED execution's next try,
    asked for again. The shell cannot know whether the
    first telling went out (the publish can fail after the end is stored, and nothing is decided on a
    finished execution afterwards); the message id makes it one, and a parent ignores an end it has."""
    if state.state == State.RETRIED:
        return _retry_again(state, flow, templates)
    if not state.is_terminal or not state.parent:
        return []
    step = Step(state, flow, now, templates, index_tasks(flow))
    step.notify_parent(STATE_OF[state.state])
    return list(step.out.effects)


def settle(state: Execution, flow: Flow, now: str, templates: Templates, max_steps: int = 10_000) -> Decision:
    """Decide and evolve until nothing more happens; ``state`` is updated in place."""
    tasks = index_tasks(flow)
    total = Decision()
    created: str | None = None
    for _ in range(max_steps):
        if created is None:
            step = decide(state, flow, now, templates, tasks)
        else:
            step = advance_created(state, flow, now, templates, tasks, created)
        if not step.events and not step.effects:
            return total
        only_dispatches = True
        for event in step.events:
            evolve(state, event)
            only_dispatches = only_dispatches and type(event) is ev.TaskRunDispatched
        total.events.extend(step.events)
        total.effects.extend(step.effects)
        if only_dispatches:  # no event at all, or dispatches only
            # A dispatch changes only what guards against dispatching the same attempt again: the
            # next decision would be empty (a third of the calls; a property test checks it).
            return total
        created = created_next(step.events)
    raise EngineError(f"execution {state.id}: the decider did not settle after {max_steps} steps")


def created_next(events: list[ev.Event]) -> str | None:
    """The taskrun, when a step did nothing but create the next task of the flow's main list."""
    if len(events) == 1:
        event = events[0]
        if type(event) is ev.TaskRunCreated and event.parent_id is None and event.branch == "tasks":
            return event.taskrun_id
    return None


def advance_created(
    state: Execution, flow: Flow, now: str, templates: Templates, tasks: dict[str, Task], taskrun_id: str
) -> Decision:
    """What ``decide`` decides right after a step that only created the next task of the flow's
    main list (``created_next``), without walking the execution again: that step changed nothing
    but add the taskrun, every task before it in the list has ended (the list runs one task at a
    time) and none after it starts while it runs, so the walk would move that one taskrun on and
    stop. Half of the decisions of a sequential flow; a property test compares both answers."""
    step = Step(state, flow, now, templates, tasks)
    tr = state.taskruns[taskrun_id]
    step.advance(tr, tasks[tr.task_id])
    return step.out


def _retry_again(state: Execution, flow: Flow, templates: Templates) -> list[Effect]:
    """The effects of the step that ended ``state`` RETRIED, decided again from what it recorded."""
    retried_at = state.histories[-1].date
    tasks = index_tasks(flow)
    for tr in state.taskruns.values():
        task = tasks.get(tr.task_id)
        if tr.state != State.RETRIED or task is None or not (tr.runnable or task.type == F + "Subflow"):
            continue
        step = Step(state, flow, retried_at, templates, tasks)
        retry = step.retry_policy(tr, task)
        if retry is None:
            continue
        delay = chain_delay(retry, state.id, state.attempt_number, state.chain_created, retried_at)
        if delay is not None:
            return next_try(state, flow, retried_at, delay)
    return []
