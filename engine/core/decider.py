"""The decider: what happens next (``decide``, ``settle``); engine.accept turns inputs into events.

Both are pure: no I/O, no clock, no randomness. ``now`` comes in as an argument and every id
is derived from the execution id and the task's position, so deciding twice on the same
state yields the same events. Work for workers and child executions come out as effects,
which the shell performs only after the events are appended.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import msgspec

from engine.core import events as ev
from engine.core.accept import _SLA_STATES, _allow
from engine.core.context import LOOP_TYPES, variables
from engine.core.dates import parse as parse_date
from engine.core.durations import parse_duration
from engine.core.errors import EngineError
from engine.core.execution import Execution, TaskRun, evolve
from engine.core.inputs import coerce_output
from engine.core.model import Flow, Retry, Task
from engine.core.ports import Templates
from engine.core.states import State, worst
from engine.core.tree import ITEMS, MERGE, F, index_tasks, is_truthy, items_children, make_id


@dataclass(frozen=True)
class Dispatch:
    """Send a runnable taskrun to a worker."""

    taskrun_id: str
    attempt: int
    task: Task
    variables: dict[str, Any]
    workdir: str | None = None
    workdir_files: Any = None


@dataclass(frozen=True)
class StartSubflow:
    taskrun_id: str
    execution_id: str
    namespace: str
    flow_id: str
    revision: int | None
    inputs: dict[str, Any]
    labels: dict[str, str]
    wait: bool
    outputs: dict[str, Any] = field(
        default_factory=dict
    )  # deprecated Subflow `outputs`, rendered by the child


@dataclass(frozen=True)
class Kill:
    execution_ids: tuple[str, ...]


@dataclass(frozen=True)
class NotifyParent:
    """Tell the parent execution its Subflow task's child ended."""

    parent_execution_id: str
    taskrun_id: str
    state: str
    outputs: dict[str, Any]


@dataclass(frozen=True)
class Timer:
    """Deliver ``input`` to this execution at ``at`` (a durable, server-side timer)."""

    key: str
    at: str
    input: ev.Input


@dataclass(frozen=True)
class AcquireSlot:
    """Ask for one of the flow's `concurrency.limit` slots (answered with an Admitted input)."""

    limit: int
    behavior: str


@dataclass(frozen=True)
class ReleaseSlot:
    """This execution ended (or was refused): free its slot or its place in the queue."""


Effect = Dispatch | StartSubflow | Kill | NotifyParent | Timer | AcquireSlot | ReleaseSlot


@dataclass
class Decision:
    events: list[ev.Event] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# decide: what happens next


def decide(
    state: Execution, flow: Flow, now: str, templates: Templates, tasks: dict[str, Task] | None = None
) -> Decision:
    """One step: the events and effects the current state calls for (may be empty)."""
    return _Step(state, flow, now, templates, tasks or index_tasks(flow)).run()


_WAITING_FOR_WORKER = (State.CREATED, State.RESTARTED, State.RESUBMITTED)


def redispatch(state: Execution, flow: Flow, now: str, templates: Templates) -> list[Dispatch]:
    """The work sent but not yet started (the shell cannot know whether it went out before a crash):
    the same dispatches again, built exactly as the first time (retry, working directory...)."""
    step = _Step(state, flow, now, templates, index_tasks(flow))
    return [
        step.dispatch(tr, tr.dispatched, step.tasks[tr.task_id])
        for tr in state.taskruns.values()
        if tr.runnable
        and tr.state in _WAITING_FOR_WORKER
        and tr.dispatched > tr.current_attempt
        and tr.task_id in step.tasks
    ]


def settle(state: Execution, flow: Flow, now: str, templates: Templates, max_steps: int = 10_000) -> Decision:
    """Decide and evolve until nothing more happens; ``state`` is updated in place."""
    tasks = index_tasks(flow)
    total = Decision()
    for _ in range(max_steps):
        step = decide(state, flow, now, templates, tasks)
        if not step.events and not step.effects:
            return total
        for event in step.events:
            evolve(state, event)
        total.events.extend(step.events)
        total.effects.extend(step.effects)
        if not step.events:
            return total
    raise EngineError(f"execution {state.id}: the decider did not settle after {max_steps} steps")


_RUNNING = None  # block status while not finished


class _Step:
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
        self.by_key: dict[tuple[str | None, str, str | None], TaskRun] = {}
        # WaitFor runs its tasks again each round: its children are found by round (iteration).
        self.by_round: dict[tuple[str | None, str, int | None], TaskRun] = {}
        for tr in ex.taskruns.values():
            self.by_key[(tr.parent_id, tr.task_id, tr.value)] = tr
            self.by_round[(tr.parent_id, tr.task_id, tr.iteration)] = tr

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

    # -- entry ----------------------------------------------------------------------------

    def run(self) -> Decision:
        ex = self.ex
        st = ex.state
        if State(st).terminal:
            return self.out
        if ex.exit_state is not None:
            return self.exit(State(ex.exit_state))
        if ex.kill_requested and st in (State.CREATED, State.QUEUED):
            self.emit(ev.ExecutionStateChanged(date=self.now, state=State.KILLING))
            self.finish(State.KILLED)
            return self.out
        if st == State.CREATED and self.flow.concurrency is not None:
            limit = self.flow.concurrency
            self.out.effects.append(AcquireSlot(limit.limit, limit.behavior.upper()))
            return self.out
        if st == State.QUEUED:
            return self.out  # waits for a slot (an Admitted input)
        if st in (State.CREATED, State.RESTARTED):
            self.emit(ev.ExecutionStateChanged(date=self.now, state=State.RUNNING))
            if st == State.CREATED:
                for sla in self.flow.sla:
                    if sla.type == "MAX_DURATION" and sla.duration is not None:
                        at = (parse_date(self.now) + timedelta(seconds=sla.duration)).strftime(
                            "%Y-%m-%dT%H:%M:%S.%fZ"
                        )
                        check = ev.SlaCheck(date=at, sla_id=sla.id)
                        self.out.effects.append(Timer(f"sla.{sla.id}", at, check))
            return self.out
        if ex.kill_requested:
            return self.kill()
        # The execution is PAUSED exactly while one of its taskruns is.
        paused = any(tr.state == State.PAUSED for tr in ex.taskruns.values())
        if paused != (st == State.PAUSED):
            self.emit(
                ev.ExecutionStateChanged(date=self.now, state=State.PAUSED if paused else State.RUNNING)
            )
            return self.out
        self.main()
        return self.out

    def main(self) -> None:
        flow = self.flow
        status = self.block(flow.tasks, None, "tasks", None)
        if status is _RUNNING:
            return
        final: State = status
        if final.failed and flow.errors:
            err = self.block(flow.errors, None, "errors", None)
            if err is _RUNNING:
                return
        if flow.finally_:
            fin = self.block(flow.finally_, None, "finally", None)
            if fin is _RUNNING:
                return
            final = worst([final, fin])
        if flow.outputs and self.ex.outputs is None and final in (State.SUCCESS, State.WARNING):
            try:
                rendered = {
                    o.id: coerce_output(
                        o.id, o.type, self.render(o.value, None), load_yaml=self.templates.load_yaml
                    )
                    for o in flow.outputs
                }
            except EngineError as exc:
                self.emit(ev.ExecutionOutputs(date=self.now, outputs={}))
                self.emit(
                    ev.ExecutionStateChanged(date=self.now, state=State.FAILED, reason=f"flow outputs: {exc}")
                )
                return
            self.emit(ev.ExecutionOutputs(date=self.now, outputs=rendered))
            return
        final = self.check_assertions(final)
        if flow.after_execution:
            self.final = final  # what afterExecution tasks see as execution.state
            after = self.block(flow.after_execution, None, "afterExecution", None)
            if after is _RUNNING:
                return
        self.finish(final)

    def check_assertions(self, final: State) -> State:
        """EXECUTION_ASSERTION SLAs, evaluated once the execution's work is done."""
        for sla in self.flow.sla:
            if sla.type != "EXECUTION_ASSERTION" or sla.assert_ is None:
                continue
            try:
                held = is_truthy(self.render(sla.assert_, None))
            except EngineError:
                held = False
            if held:
                continue
            if sla.labels and any(self.ex.labels.get(k) != v for k, v in sla.labels.items()):
                self.emit(ev.LabelsSet(date=self.now, labels=dict(sla.labels)))
            final = _SLA_STATES.get(sla.behavior, final)
        return final

    def finish(self, final: State) -> None:
        self.emit(ev.ExecutionStateChanged(date=self.now, state=final))
        if self.flow.concurrency is not None:
            self.out.effects.append(ReleaseSlot())
        parent = self.ex.parent
        if parent:
            outputs = self.ex.outputs or {}
            if not self.flow.outputs and parent.get("outputs"):
                try:
                    outputs = self.render(parent["outputs"], None)
                except EngineError:
                    final = State.FAILED  # Kestra: the Subflow task fails when its outputs do not render
            self.out.effects.append(
                NotifyParent(str(parent["execution_id"]), str(parent["taskrun_id"]), final, outputs)
            )

    def exit(self, target: State) -> Decision:
        """An Exit task asked to end the execution now: stop what runs, then end with ``target``."""
        busy = False
        for tr in self.ex.taskruns.values():
            if State(tr.state).terminal:
                continue
            if tr.runnable and tr.state == State.RUNNING:
                busy = True
            else:
                self.set_state(tr, State.KILLED if target.failed else State.SKIPPED)
        if busy:
            if not self.ex.kill_requested:
                self.emit(ev.KillRequested(date=self.now, reason=f"exit with {target}"))
                self.out.effects.append(Kill((self.ex.id,)))
            return self.out
        self.finish(target)
        return self.out

    def kill(self) -> Decision:
        ex = self.ex
        if ex.state != State.KILLING:
            self.emit(ev.ExecutionStateChanged(date=self.now, state=State.KILLING))
            children = tuple(
                tr.subflow_execution
                for tr in ex.taskruns.values()
                if tr.subflow_execution and not State(tr.state).terminal
            )
            self.out.effects.append(Kill((ex.id, *children)))
            return self.out
        waiting = False
        for tr in ex.taskruns.values():
            if State(tr.state).terminal:
                continue
            if tr.runnable and tr.dispatched and tr.state == State.RUNNING:
                waiting = True  # the worker reports KILLED once the process stopped
            elif tr.subflow_execution:
                waiting = True
            elif tr.runnable and tr.dispatched and tr.state == State.CREATED:
                self.set_state(tr, State.KILLED)  # sent but not started: the worker will skip it
            elif tr.runnable or all(
                State(c.state).terminal for c in ex.taskruns.values() if c.parent_id == tr.id
            ):
                self.set_state(tr, State.KILLED)
            else:
                waiting = True
        if not waiting and not self.out.events:
            self.finish(State.KILLED)
        return self.out

    # -- blocks ---------------------------------------------------------------------------

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
            st = State(tr.state)
            if st.terminal:
                states.append(st)
                if st.failed:
                    failed = True
            else:
                running += 1
                self.advance(tr, task)
        if limit == 1:
            # Sequential: start the next one only when every earlier one ended well.
            if running or failed:
                return _RUNNING if running else worst(states)
            if pending:
                self.create(pending[0], parent, branch, value, round_, round_ is not None)
                return _RUNNING
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
            return _RUNNING
        return worst(states)

    def dag(self, tasks: tuple[Task, ...], parent: TaskRun, limit: int) -> State | None:
        states: dict[str, State] = {}
        running = 0
        for task in tasks:
            tr = self.by_key.get((parent.id, task.id, parent.value))
            if tr is not None:
                st = State(tr.state)
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
            return _RUNNING
        return worst(list(states.values()))

    # -- taskruns -------------------------------------------------------------------------

    def advance(self, tr: TaskRun, task: Task) -> None:
        st = State(tr.state)
        if st == State.CREATED and task.run_if is not None:
            try:
                run = is_truthy(self.render(task.run_if, tr))
            except EngineError as exc:
                self.set_state(tr, State.FAILED, reason=f"runIf: {exc}")
                return
            if not run:
                self.set_state(tr, State.SKIPPED)
                return
        if tr.runnable:
            if st in _WAITING_FOR_WORKER and tr.dispatched <= tr.current_attempt:
                attempt = tr.current_attempt + 1
                self.emit(ev.TaskRunDispatched(date=self.now, taskrun_id=tr.id, attempt=attempt))
                self.out.effects.append(self.dispatch(tr, attempt, task))
            return
        if st == State.CREATED:
            self.start_flowable(tr, task)
            return
        self.progress_flowable(tr, task)

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

    def start_flowable(self, tr: TaskRun, task: Task) -> None:
        kind = task.type
        try:
            if kind in LOOP_TYPES:
                raw = task.props.get("values", task.props.get("value"))
                values = self.render(raw, tr)
                items = _as_list(values)
                nulls = sum(1 for v in items if v is None)
                if nulls:
                    raise EngineError(f"Found '{nulls}' null values on Each, with values={_java_text(items)}")
                self.emit(
                    ev.TaskRunExpanded(date=self.now, taskrun_id=tr.id, items=[_value_str(v) for v in items])
                )
            elif kind == F + "Switch":
                value = self.render(task.props.get("value"), tr)
                key = _value_str(value)
                cases = [b for b in task.branches if b.startswith("case:")]
                chosen = "case:" + key if "case:" + key in cases else "defaults"
                if chosen == "defaults" and not task.branches.get("defaults"):
                    raise EngineError(f"Switch {task.id}: no case matches {key!r} and there is no `defaults`")
                self.emit(ev.TaskRunExpanded(date=self.now, taskrun_id=tr.id, items=[chosen]))
                outputs = {"value": key, "defaults": chosen == "defaults"}
                self.emit(ev.TaskRunOutputs(date=self.now, taskrun_id=tr.id, outputs=outputs))
            elif kind == F + "If":
                result = is_truthy(self.render(task.props.get("condition"), tr))
                self.emit(
                    ev.TaskRunExpanded(date=self.now, taskrun_id=tr.id, items=["then" if result else "else"])
                )
                self.emit(
                    ev.TaskRunOutputs(date=self.now, taskrun_id=tr.id, outputs={"evaluationResult": result})
                )
            elif kind == F + "Subflow":
                self.start_subflow(tr, task)
                return
            elif kind == ITEMS:
                self.start_items(tr, task)
                return
            elif kind == F + "WaitFor":
                self.emit(ev.TaskRunOutputs(date=self.now, taskrun_id=tr.id, outputs={"iterationCount": 1}))
        except EngineError as exc:
            self.set_state(tr, State.RUNNING)
            self.set_state(tr, State.FAILED, reason=str(exc))
            return
        self.set_state(tr, State.RUNNING)

    def child_execution(
        self, tr: TaskRun, props: dict[str, Any], child_id: str, inputs: Any, outputs: Any = None
    ) -> StartSubflow:
        """The child execution a Subflow (or a ForEachItem batch) starts, from its rendered properties."""
        labels = props.get("labels") or {}
        if isinstance(labels, list):
            labels = {str(i.get("key")): str(i.get("value")) for i in labels if isinstance(i, dict)}
        if is_truthy(props.get("inheritLabels", False)):
            labels = {**self.ex.labels, **labels}
        revision = props.get("revision")
        return StartSubflow(
            tr.id,
            child_id,
            str(props["namespace"]),
            str(props["flowId"]),
            int(revision) if revision not in (None, "") else None,
            dict(inputs or {}),
            {str(k): str(v) for k, v in labels.items()},
            is_truthy(props.get("wait", True)),
            dict(outputs or {}),
        )

    def start_subflow(self, tr: TaskRun, task: Task) -> None:
        # `outputs` (deprecated) are expressions over the child execution: the child renders them.
        props = self.render({k: v for k, v in task.props.items() if k != "outputs"}, tr)
        attempt = tr.current_attempt + 1
        child_id = make_id(self.ex.id, tr.id, "subflow", str(attempt - 1))
        start = self.child_execution(tr, props, child_id, props.get("inputs"), task.props.get("outputs"))
        if tr.state != State.RUNNING:
            self.set_state(tr, State.RUNNING)
        self.emit(ev.AttemptStarted(date=self.now, taskrun_id=tr.id, attempt=attempt))
        self.emit(ev.SubflowStarted(date=self.now, taskrun_id=tr.id, execution_id=child_id))
        self.out.effects.append(start)
        if not start.wait:
            self.emit(ev.TaskRunOutputs(date=self.now, taskrun_id=tr.id, outputs={"executionId": child_id}))
            self.emit(ev.AttemptEnded(date=self.now, taskrun_id=tr.id, attempt=attempt, state=State.SUCCESS))
            self.set_state(tr, State.SUCCESS)

    def start_items(self, tr: TaskRun, task: Task) -> None:
        """One subflow execution per batch made by ``<id>_split`` (its ``splits`` output)."""
        parent = self.ex.taskruns.get(tr.parent_id) if tr.parent_id else None
        split_id = task.id[: -len("_items")] + "_split"
        split = self.by_key.get((parent.id if parent else None, split_id, tr.value))
        uris = list((split.outputs if split else {}).get("splits") or [])
        props = self.render({k: v for k, v in task.props.items() if k != "inputs"}, tr)
        wait = is_truthy(props.get("wait", True))
        children = [make_id(self.ex.id, tr.id, "batch", str(i)) for i in range(1, len(uris) + 1)]
        self.set_state(tr, State.RUNNING)
        self.emit(ev.AttemptStarted(date=self.now, taskrun_id=tr.id, attempt=1))
        self.emit(ev.TaskRunExpanded(date=self.now, taskrun_id=tr.id, items=children))
        variables = self.vars_for(tr)
        for i, (child, uri) in enumerate(zip(children, uris, strict=True), start=1):
            variables["taskrun"] = {**variables.get("taskrun", {}), "items": uri, "iteration": i}
            inputs = self.templates.render_value(task.props.get("inputs") or {}, variables)
            self.out.effects.append(self.child_execution(tr, props, child, inputs))
        counts = (
            {"CREATED": 0, "RUNNING": 0, "SUCCESS": len(children)}
            if not wait
            else {"CREATED": len(children), "RUNNING": 0, "SUCCESS": 0}
        )
        outputs = {"numberOfBatches": len(children), "iterations": counts}
        self.emit(ev.TaskRunOutputs(date=self.now, taskrun_id=tr.id, outputs=outputs))
        if not wait or not children:
            self.emit(ev.AttemptEnded(date=self.now, taskrun_id=tr.id, attempt=1, state=State.SUCCESS))
            self.set_state(tr, State.SUCCESS)

    def progress_flowable(self, tr: TaskRun, task: Task) -> None:
        """A RUNNING flowable: advance its children, then its errors/finally, then end it."""
        kind = task.type
        if kind == F + "Subflow":
            if tr.state == State.RETRYING and tr.retry_at:
                wake = ev.Wake(date=tr.retry_at, taskrun_id=tr.id, state=State.RUNNING)
                self.out.effects.append(Timer(f"{tr.id}.retry{tr.current_attempt}", tr.retry_at, wake))
            elif tr.state == State.RUNNING and tr.attempts and tr.attempts[-1].state != State.RUNNING:
                self.start_subflow(tr, task)  # the next attempt: a new child execution
            return  # ends when the child execution reports back
        if kind == ITEMS:
            return  # ends when the child executions report back
        if kind == F + "Pause":
            if tr.state == State.PAUSED:
                return  # waits for a resume or its timer
            if not any(h.state == State.PAUSED for h in tr.histories):
                self.pause(tr, task)
                return
            if not task.branches.get("tasks"):
                self.set_state(tr, State.SUCCESS)
                return
        branch_state = self.branch_status(tr, task)
        if branch_state is _RUNNING:
            return
        final: State = branch_state
        if final.failed and task.branches.get("errors"):
            err = self.block(task.branches["errors"], tr, "errors", tr.value)
            if err is _RUNNING:
                return
        if task.branches.get("finally"):
            fin = self.block(task.branches["finally"], tr, "finally", tr.value)
            if fin is _RUNNING:
                return
            final = worst([final, fin])
        if kind == F + "AllowFailure" and final.failed:
            final = State.WARNING
        self.set_state(tr, _allow(task, final))

    def pause(self, tr: TaskRun, task: Task) -> None:
        try:
            raw = task.props.get("delay")
            delay = parse_duration(self.render(raw, tr)) if raw not in (None, "") else None
        except (EngineError, ValueError) as exc:
            self.set_state(tr, State.FAILED, reason=f"delay: {exc}")
            return
        self.set_state(tr, State.PAUSED)
        wait, then = (delay, State.RUNNING) if delay is not None else (task.timeout, State.FAILED)
        if wait is not None:
            at = (parse_date(self.now) + timedelta(seconds=wait)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            wake = ev.Wake(date=at, taskrun_id=tr.id, state=then)
            self.out.effects.append(Timer(f"{tr.id}.pause", at, wake))

    def branch_status(self, tr: TaskRun, task: Task) -> State | None:
        kind = task.type
        children = task.branches.get("tasks", ())
        if kind == F + "WaitFor":
            return self.wait_for(tr, task, children)
        if kind == F + "ForEachItem":
            return self.block(items_children(task), tr, "tasks", tr.value)
        if kind in LOOP_TYPES:
            return self.loop(tr, task, children)
        if kind in (F + "Switch", F + "If"):
            chosen = (tr.items or ["defaults"])[0]
            return self.block(task.branches.get(chosen, ()), tr, chosen, tr.value)
        if kind == F + "Parallel":
            return self.block(children, tr, "tasks", tr.value, limit=_int(task.props.get("concurrent", 0)))
        if kind == F + "Dag":
            return self.dag(children, tr, _int(task.props.get("concurrent", 0)))
        return self.block(children, tr, "tasks", tr.value)

    def wait_for(self, tr: TaskRun, task: Task, children: tuple[Task, ...]) -> State | None:
        """Run ``tasks`` in rounds until ``condition`` is truthy or a maximum is reached."""
        if tr.items and tr.items[0].startswith("done:"):
            return State(tr.items[0][5:])
        count = int(tr.outputs.get("iterationCount", 1))
        status = self.block(children, tr, "tasks", tr.value, round_=count)
        if status is _RUNNING:
            return _RUNNING
        final: State | None = status
        if not status.failed:
            count += 1
            self.emit(ev.TaskRunOutputs(date=self.now, taskrun_id=tr.id, outputs={"iterationCount": count}))
            freq = task.props.get("checkFrequency") or {}
            try:
                max_iterations = int(freq.get("maxIterations", 100))
                max_duration = parse_duration(freq.get("maxDuration", "PT1H"))
                interval = parse_duration(freq.get("interval", "PT1S"))
                started = parse_date(tr.histories[0].date)
                reached = (
                    count > max_iterations or (parse_date(self.now) - started).total_seconds() > max_duration
                )
                met = False
                if not reached:
                    variables = self.vars_for(tr)
                    variables["outputs"].setdefault(tr.task_id, {})
                    variables["outputs"][tr.task_id] = {
                        **variables["outputs"][tr.task_id],
                        "iterationCount": count,
                    }
                    met = is_truthy(self.templates.render_value(task.props.get("condition"), variables))
            except (EngineError, ValueError) as exc:
                self.set_state(tr, State.FAILED, reason=f"WaitFor: {exc}")
                return _RUNNING
            if reached:
                final = State.FAILED if is_truthy(task.props.get("failOnMaxReached", False)) else status
            elif not met:
                at = (parse_date(self.now) + timedelta(seconds=interval)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                self.set_state(tr, State.PAUSED, reason="next round")
                wake = ev.Wake(date=at, taskrun_id=tr.id, state=State.RUNNING)
                self.out.effects.append(Timer(f"{tr.id}.round{count}", at, wake))
                return _RUNNING
        assert final is not None
        self.emit(ev.TaskRunExpanded(date=self.now, taskrun_id=tr.id, items=[f"done:{final}"]))
        return final

    def loop(self, tr: TaskRun, task: Task, children: tuple[Task, ...]) -> State | None:
        if task.type == F + "EachParallel":
            limit = _int(task.props.get("concurrent", 0))
        elif task.type == F + "EachSequential":
            limit = 1
        else:
            limit = _int(task.props.get("concurrencyLimit", 1))
        states: list[State] = []
        running = 0
        failed = False
        not_started: list[tuple[int, str]] = []
        for i, value in enumerate(tr.items or []):
            started = any((tr.id, c.id, value) in self.by_key for c in children)
            if not started:
                not_started.append((i, value))
                continue
            st = self.block(children, tr, "tasks", value)
            if st is _RUNNING:
                running += 1
            else:
                states.append(st)
                failed = failed or st.failed
        waiting = len(not_started)
        first = next((c for c in children if not c.disabled), None)
        if not failed and first is not None:
            for i, value in not_started:
                if limit and running >= limit:
                    break
                self.create(first, tr, "tasks", value, iteration=i)
                running += 1
                waiting -= 1
        if running or (waiting and not failed and first is not None):
            return _RUNNING
        return worst(states)


def _java_text(value: Any) -> str:
    """How Kestra (Java's toString) prints a value in its messages: [1, null, {key=a, value=b}]."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_java_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_java_text(v) for v in value) + "]"
    return str(value)


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, str):
        text = value.strip()
        try:
            value = json.loads(text) if text else []
        except ValueError as exc:
            raise EngineError(f"values: expected a list or a JSON array, got {value!r}") from exc
    if isinstance(value, dict):
        return [{"key": k, "value": v} for k, v in value.items()]
    if not isinstance(value, list | tuple):
        raise EngineError(f"values: expected a list or a JSON array, got {value!r}")
    return list(value)


def _value_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"))
