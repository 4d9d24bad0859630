"""The execution's lifecycle: start (concurrency slot, SLA timers), the main tasks, errors, finally,
flow outputs, assertions, afterExecution, Exit, kill and the end (the parent notified)."""

from __future__ import annotations

from datetime import timedelta

from engine.core import events as ev
from engine.core.accept import _SLA_STATES
from engine.core.dates import parse as parse_date
from engine.core.decider.base import RUNNING
from engine.core.decider.effects import AcquireSlot, Decision, Kill, NotifyParent, ReleaseSlot, Timer
from engine.core.decider.flowables import Flowables
from engine.core.errors import EngineError
from engine.core.inputs import coerce_output
from engine.core.states import TERMINAL, State, worst
from engine.core.tree import is_truthy

# Read once per taskrun of every decision: a module constant, not the enum's attribute (on Python
# 3.11 an enum member read through its class costs five times a global's).
_PAUSED = State.PAUSED


class Step(Flowables):
    """The whole decider for one step (``decide``)."""

    def run(self) -> Decision:
        ex = self.ex
        st = ex.state
        if st in TERMINAL:  # a StrEnum's members hash and compare as their names
            return self.out
        if ex.exit_state is not None:
            return self.exit(State(ex.exit_state))  # an Exit task's output: from outside the core
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
        if self.retry_in_new_execution():
            return self.out
        # The execution is PAUSED exactly while one of its taskruns is.
        paused = any(tr.state == _PAUSED for tr in ex.taskruns.values())
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
        if status is RUNNING:
            return
        final: State = status
        if final.failed and flow.errors:
            err = self.block(flow.errors, None, "errors", None)
            if err is RUNNING:
                return
        if flow.finally_:
            fin = self.block(flow.finally_, None, "finally", None)
            if fin is RUNNING:
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
            self.emit(ev.ExecutionOutputs(date=self.now, outputs=self.templates.masked(rendered)))
            return
        final = self.check_assertions(final)
        if flow.after_execution:
            self.final = final  # what afterExecution tasks see as execution.state
            after = self.block(flow.after_execution, None, "afterExecution", None)
            if after is RUNNING:
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
        self.notify_parent(final)

    def notify_parent(self, final: State) -> None:
        """A subflow execution's end, for its parent (with the outputs the Subflow task declares)."""
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
            if tr.state in TERMINAL:
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
                if tr.subflow_execution and tr.state not in TERMINAL
            )
            self.out.effects.append(Kill((ex.id, *children)))
            return self.out
        waiting = False
        for tr in ex.taskruns.values():
            if tr.state in TERMINAL:
                continue
            if tr.runnable and tr.dispatched and tr.state == State.RUNNING:
                waiting = True  # the worker reports KILLED once the process stopped
            elif tr.subflow_execution:
                waiting = True
            elif tr.runnable and tr.dispatched and tr.state == State.CREATED:
                self.set_state(tr, State.KILLED)  # sent but not started: the worker will skip it
            elif tr.runnable or all(
                c.state in TERMINAL for c in ex.taskruns.values() if c.parent_id == tr.id
            ):
                self.set_state(tr, State.KILLED)
            else:
                waiting = True
        if not waiting and not self.out.events:
            self.finish(State.KILLED)
        return self.out
