"""execution.Fail, execution.Exit and execution.Labels.

Exit and Labels only describe what should happen to the execution; the executor acts on
their outputs:

* Exit returns outputs ``{"exit": {"state": <STATE>}}`` (taskrun state SUCCESS): the executor
  ends the whole execution with that state (remaining/running tasks are killed, or, for
  SUCCESS/WARNING, simply not started).
* Labels returns outputs ``{"labels": {key: value}}``: the executor merges them into the
  execution labels (overwriting existing keys).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import msgspec

from engine.core.dates import parse as parse_date
from engine.core.errors import TaskFailed
from engine.core.execution import Execution
from engine.core.tree import is_truthy as engine_truthy
from plugins.api import RunContext, TaskResult, runnable

P = "io.kestra.plugin.core.execution."

_FALSE_VALUES = ("false", "0", "-0", "")
EXIT_STATES = ("SUCCESS", "WARNING", "KILLED", "FAILED", "CANCELED")
EXIT_OUTPUT = "exit"


def is_truthy(value: Any) -> bool:
    """Kestra's TruthUtils exactly, as execution.Fail applies it: on the rendered text only ``false``,
    ``0``, ``-0`` and blank are false, in that letter case (the engine's rule also rejects others)."""
    if isinstance(value, str):
        return value.strip() not in _FALSE_VALUES
    return engine_truthy(value)


class Fail(msgspec.Struct, frozen=True):
    condition: Any = None
    errorMessage: str = "Task failure"


async def run_fail(props: Fail, ctx: RunContext) -> TaskResult:
    if props.condition is not None:
        if not is_truthy(props.condition):
            return TaskResult()
        ctx.log("ERROR", props.errorMessage)
        raise TaskFailed(f"Fail on a condition: {props.errorMessage}")
    raise TaskFailed(props.errorMessage)


class Exit(msgspec.Struct, frozen=True):
    state: str = "SUCCESS"


async def run_exit(props: Exit, ctx: RunContext) -> TaskResult:
    state = str(props.state).upper()
    if state == "CANCELLED":
        state = "CANCELED"
    if state not in EXIT_STATES:
        allowed = ", ".join(EXIT_STATES)
        raise TaskFailed(
            f"state: invalid exit state {props.state!r}; expected one of {allowed}", retryable=False
        )
    ctx.log("INFO", f"Exiting the execution with state {state}")
    return TaskResult(outputs={EXIT_OUTPUT: {"state": state}})


class Labels(msgspec.Struct, frozen=True):
    labels: dict[str, Any] | list[Any] | str


def _label_map(raw: dict[str, Any] | list[Any] | str) -> dict[str, str]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise TaskFailed(f"labels: not a JSON object: {exc}", retryable=False) from None
        if not isinstance(raw, dict | list):
            raise TaskFailed("labels: expected a map or a list of {key, value}", retryable=False)
    if isinstance(raw, dict):
        return {str(k): "" if v is None else str(v) for k, v in raw.items()}
    out: dict[str, str] = {}
    for item in raw:
        if not isinstance(item, dict) or "key" not in item:
            raise TaskFailed(f"labels: list items must be {{key, value}} maps, got {item!r}", retryable=False)
        value = item.get("value")
        out[str(item["key"])] = "" if value is None else str(value)
    return out


async def run_labels(props: Labels, ctx: RunContext) -> TaskResult:
    labels = _label_map(props.labels)
    for key, value in labels.items():
        if key.startswith("system."):
            offending = f"{key}={value}"
            raise TaskFailed(
                f"System labels can only be set by Kestra itself, offending label: {offending}",
                retryable=False,
            )
    ctx.log("DEBUG", "Setting execution labels " + ", ".join(f"{k}={v}" for k, v in labels.items()))
    return TaskResult(outputs={"labels": labels})


class Resume(msgspec.Struct, frozen=True):
    executionId: str | None = None
    namespace: str | None = None
    flowId: str | None = None
    inputs: dict[str, Any] = msgspec.field(default_factory=dict)


async def run_resume(props: Resume, ctx: RunContext) -> TaskResult:
    """Resume a PAUSED execution (by default this one's): a Resume command on its inbox."""
    target = props.executionId or ctx.execution_id
    if not await ctx.resume_execution(target, dict(props.inputs)):
        raise TaskFailed(f"execution.Resume: no execution {target!r}", retryable=False)
    ctx.log("INFO", f"Resuming execution {target}")
    return TaskResult()


class Assert(msgspec.Struct, frozen=True):
    conditions: list[Any]
    errorMessage: str | None = None


async def run_assert(props: Assert, ctx: RunContext) -> TaskResult:
    """Fail when any condition renders falsy (Kestra's execution.Assert); rendered here, not before,
    so that a failure names the expression as written."""
    failed = []
    for index, condition in enumerate(props.conditions):
        value = str(await ctx.render(condition)).strip().lower()
        if value in ("false", "0", "", "null"):
            failed.append(index)
            ctx.log("ERROR", f"Assertion `{condition}` failed (condition {index + 1})")
    if failed:
        message = props.errorMessage or f"{len(failed)} assertion(s) failed"
        raise TaskFailed(message, retryable=False)
    return TaskResult()


class Count(msgspec.Struct, frozen=True):
    expression: str
    startDate: str | None = None
    endDate: str | None = None
    flows: list[dict[str, str]] | None = None
    namespaces: list[str] | None = None
    states: list[str] | None = None


def _when(value: str | None) -> datetime | None:
    return parse_date(value) if value else None


async def run_count(props: Count, ctx: RunContext) -> TaskResult:
    """Count executions per flow over a period; keep the flows whose `expression` (with `count`) is true."""
    if not props.flows and not props.namespaces:
        raise TaskFailed("You must provide a list of flows or namespaces", retryable=False)
    start = _when(await ctx.render(props.startDate) if props.startDate else None)
    end = _when(await ctx.render(props.endDate) if props.endDate else None)
    wanted = {(f.get("namespace", ""), f.get("id") or f.get("flowId", "")) for f in props.flows or []}

    def keep(state: Execution) -> bool:
        in_ns = any(
            state.namespace == n or state.namespace.startswith(n + ".") for n in props.namespaces or []
        )
        if not ((state.namespace, state.flow_id) in wanted or in_ns):
            return False
        started = _when(state.start_date)
        if (start and started and started < start) or (end and started and started > end):
            return False
        return not props.states or state.state in props.states

    counts = {**dict.fromkeys(wanted, 0), **await ctx.count_executions(keep)}
    results = []
    for (namespace, flow_id), count in sorted(counts.items()):
        ctx.variables["count"] = count
        if str(await ctx.render(props.expression)).strip() == "true":
            results.append({"namespace": namespace, "flowId": flow_id, "count": count})
    ctx.variables.pop("count", None)
    return TaskResult(outputs={"results": results, "total": len(results)})


SPECS = [
    runnable(
        P + "Fail",
        Fail,
        run_fail,
        "Fail the task (and so the execution), or only when `condition` is truthy.",
    ),
    runnable(
        P + "Exit",
        Exit,
        run_exit,
        "End the execution now with `state` (SUCCESS/WARNING/KILLED/FAILED/CANCELED).",
    ),
    runnable(P + "Labels", Labels, run_labels, "Add or overwrite labels of the current execution."),
    runnable(
        P + "Resume",
        Resume,
        run_resume,
        "Resume a PAUSED execution (`executionId`, default this one) with `inputs`.",
    ),
    runnable(
        P + "Assert",
        Assert,
        run_assert,
        "Fail the task when one of `conditions` (expressions) is falsy.",
        render=False,
    ),
    runnable(
        P + "Count",
        Count,
        run_count,
        "Count executions per flow over a period; keep those where `expression` holds.",
        render=False,
    ),
]
