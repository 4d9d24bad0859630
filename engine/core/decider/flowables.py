"""Flowable tasks: how each kind (loops, Switch, If, Parallel, Dag, WaitFor, Pause...) starts and
progresses, with its own errors and finally branches."""

from __future__ import annotations

from datetime import timedelta

from engine.core import events as ev
from engine.core.accept import _allow
from engine.core.context import LOOP_TYPES
from engine.core.dates import parse as parse_date
from engine.core.decider.base import RUNNING, WAITING_FOR_WORKER
from engine.core.decider.effects import Timer
from engine.core.decider.subflows import Subflows
from engine.core.decider.values import as_list, java_text, lenient_int, value_str
from engine.core.durations import parse_duration
from engine.core.errors import EngineError
from engine.core.execution import TaskRun
from engine.core.model import Task
from engine.core.states import STATE_OF, State, worst
from engine.core.tree import ITEMS, F, is_truthy, items_children


class Flowables(Subflows):
    def start_flowable(self, tr: TaskRun, task: Task) -> None:
        kind = task.type
        try:
            if kind in LOOP_TYPES:
                raw = task.props.get("values", task.props.get("value"))
                values = self.render(raw, tr)
                items = as_list(values)
                nulls = sum(1 for v in items if v is None)
                if nulls:
                    raise EngineError(f"Found '{nulls}' null values on Each, with values={java_text(items)}")
                self.emit(
                    ev.TaskRunExpanded(date=self.now, taskrun_id=tr.id, items=[value_str(v) for v in items])
                )
            elif kind == F + "Switch":
                value = self.render(task.props.get("value"), tr)
                key = value_str(value)
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
        if branch_state is RUNNING:
            return
        final: State = branch_state
        if final.failed and task.branches.get("errors"):
            err = self.block(task.branches["errors"], tr, "errors", tr.value)
            if err is RUNNING:
                return
        if task.branches.get("finally"):
            fin = self.block(task.branches["finally"], tr, "finally", tr.value)
            if fin is RUNNING:
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
            return self.block(
                children, tr, "tasks", tr.value, limit=lenient_int(task.props.get("concurrent", 0))
            )
        if kind == F + "Dag":
            return self.dag(children, tr, lenient_int(task.props.get("concurrent", 0)))
        return self.block(children, tr, "tasks", tr.value)

    def wait_for(self, tr: TaskRun, task: Task, children: tuple[Task, ...]) -> State | None:
        """Run ``tasks`` in rounds until ``condition`` is truthy or a maximum is reached."""
        if tr.items and tr.items[0].startswith("done:"):
            return State(tr.items[0][5:])
        count = int(tr.outputs.get("iterationCount", 1))
        status = self.block(children, tr, "tasks", tr.value, round_=count)
        if status is RUNNING:
            return RUNNING
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
                return RUNNING
            if reached:
                final = State.FAILED if is_truthy(task.props.get("failOnMaxReached", False)) else status
            elif not met:
                at = (parse_date(self.now) + timedelta(seconds=interval)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                self.set_state(tr, State.PAUSED, reason="next round")
                wake = ev.Wake(date=at, taskrun_id=tr.id, state=State.RUNNING)
                self.out.effects.append(Timer(f"{tr.id}.round{count}", at, wake))
                return RUNNING
        assert final is not None
        self.emit(ev.TaskRunExpanded(date=self.now, taskrun_id=tr.id, items=[f"done:{final}"]))
        return final

    def loop(self, tr: TaskRun, task: Task, children: tuple[Task, ...]) -> State | None:
        if task.type == F + "EachParallel":
            limit = lenient_int(task.props.get("concurrent", 0))
        elif task.type == F + "EachSequential":
            limit = 1
        else:
            limit = lenient_int(task.props.get("concurrencyLimit", 1))
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
            if st is RUNNING:
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
            return RUNNING
        return worst(states)

    def advance(self, tr: TaskRun, task: Task) -> None:
        st = STATE_OF[tr.state]
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
            if st in WAITING_FOR_WORKER and tr.dispatched <= tr.current_attempt:
                attempt = tr.current_attempt + 1
                self.emit(ev.TaskRunDispatched(date=self.now, taskrun_id=tr.id, attempt=attempt))
                self.out.effects.append(self.dispatch(tr, attempt, task))
            return
        if st == State.CREATED:
            self.start_flowable(tr, task)
            return
        self.progress_flowable(tr, task)
