"""Subflow and ForEachItem: child executions started as effects."""

from __future__ import annotations

from typing import Any

from engine.core import events as ev
from engine.core.decider.effects import StartSubflow
from engine.core.decider.retries import Retries
from engine.core.execution import TaskRun
from engine.core.model import Task
from engine.core.states import State
from engine.core.tree import is_truthy, make_id


class Subflows(Retries):
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
        # Kestra counts each batch's moves from one state to the next: without waiting a batch goes
        # from RUNNING to SUCCESS at once and CREATED is never counted; no batch, no outputs.
        counts = (
            {"RUNNING": 0, "SUCCESS": len(children)}
            if not wait
            else {"CREATED": len(children), "RUNNING": 0, "SUCCESS": 0}
        )
        if children:
            outputs = {"numberOfBatches": len(children), "iterations": counts}
            self.emit(ev.TaskRunOutputs(date=self.now, taskrun_id=tr.id, outputs=outputs))
        if not wait or not children:
            self.emit(ev.AttemptEnded(date=self.now, taskrun_id=tr.id, attempt=1, state=State.SUCCESS))
            self.set_state(tr, State.SUCCESS)
