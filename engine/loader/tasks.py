"""Tasks (of the flow, of its errors/finally/afterExecution, of flowable branches): ids unique in the
whole flow, a type the registry resolves, the common properties, branches, and the plugin's props.
"""

from __future__ import annotations

import re
from typing import Any

from engine.core.errors import PluginNotFound
from engine.core.model import Task
from engine.loader.checker import Checker, scalar_key, show
from engine.loader.dag import dag_tasks
from engine.loader.plugin_defaults import apply_defaults
from engine.loader.plugin_rules import LOG_LEVELS, check_rules, rendered_elsewhere
from engine.loader.props import validate_props
from engine.loader.retry import retry
from engine.yamlpos import child_path, index_path
from plugins.api import PluginSpec

__all__ = ["VERSION_KEY", "task_list"]

VERSION_KEY = "version"  # the plugin version a task picked, kept in its props (see plugins.registry)

TASK_ID_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]*$")
_TASK_COMMON = (
    "id",
    "type",
    "description",
    "disabled",
    "allowFailure",
    "allowWarning",
    "timeout",
    "retry",
    "workerGroup",
    "logLevel",
    "logToFile",
    "runIf",
    "errors",
    "finally",
)
# flowables whose child list must be non-empty (Kestra's @NotEmpty); a spec may also say so
# with extra={"required_branches": (...)}
_REQUIRED_BRANCHES: dict[str, tuple[str, ...]] = {
    "io.kestra.plugin.core.flow.Sequential": ("tasks",),
    "io.kestra.plugin.core.flow.Parallel": ("tasks",),
    "io.kestra.plugin.core.flow.ForEach": ("tasks",),
    "io.kestra.plugin.core.flow.EachSequential": ("tasks",),
    "io.kestra.plugin.core.flow.EachParallel": ("tasks",),
    "io.kestra.plugin.core.flow.Dag": ("tasks",),
    "io.kestra.plugin.core.flow.AllowFailure": ("tasks",),
    "io.kestra.plugin.core.flow.WorkingDirectory": ("tasks",),
    "io.kestra.plugin.core.flow.WaitFor": ("tasks",),
    "io.kestra.plugin.core.flow.LoopUntil": ("tasks",),
    "io.kestra.plugin.core.flow.If": ("then",),
}
_DAG_TYPES = ("io.kestra.plugin.core.flow.Dag",)


def task_list(ctx: Checker, value: Any, path: str) -> tuple[Task, ...]:
    items = ctx.sequence(value, path, "a list of tasks")
    result: list[Task] = []
    for i, item in enumerate(items or []):
        task = _task(ctx, item, index_path(path, i))
        if task is not None:
            result.append(task)
    return tuple(result)


def _task(ctx: Checker, item: Any, path: str) -> Task | None:
    data = ctx.mapping(item, path, "a task (a map with id and type)")
    if data is None:
        return None
    task_id = ctx.required_string(data, "id", path, "task property")
    if task_id is not None:
        if not TASK_ID_RE.match(task_id):
            ctx.add(
                child_path(path, "id"),
                f"invalid task id {show(task_id)} — start with a letter or "
                "digit and use only letters, digits, '_' and '-'",
            )
        _register_id(ctx, task_id, path)
    raw_type = ctx.required_string(data, "type", path, "task property")
    version = _version(ctx, data.get("version"), child_path(path, "version"))
    spec: PluginSpec | None = None
    if raw_type is not None:
        try:
            spec = ctx.registry.resolve(raw_type)
        except PluginNotFound:
            hint = ctx.registry.suggest(raw_type)
            ctx.add(child_path(path, "type"), f"unknown task type {show(raw_type)} — {hint}")
    if spec is not None and version is not None:
        try:  # the properties are checked against the version the task picked
            spec = ctx.registry.resolve(raw_type or spec.type, version)
        except PluginNotFound as exc:
            ctx.add(child_path(path, "version"), f"{exc} — pick an installed version or remove 'version'")

    data = apply_defaults(ctx, data, spec.type if spec else None, raw_type or "")

    description = ctx.string(data.get("description"), child_path(path, "description"))
    disabled = ctx.boolean(data.get("disabled"), child_path(path, "disabled"))
    allow_failure = ctx.boolean(data.get("allowFailure"), child_path(path, "allowFailure"))
    allow_warning = ctx.boolean(data.get("allowWarning"), child_path(path, "allowWarning"))
    ctx.boolean(data.get("logToFile"), child_path(path, "logToFile"))
    timeout = ctx.duration(data.get("timeout"), child_path(path, "timeout"))
    task_retry = retry(ctx, data.get("retry"), child_path(path, "retry"))
    worker_group = _worker_group(ctx, data.get("workerGroup"), child_path(path, "workerGroup"))
    log_level = None
    if data.get("logLevel") is not None:
        log_level = ctx.choice(data["logLevel"], child_path(path, "logLevel"), LOG_LEVELS, "log level")
    run_if = None
    if data.get("runIf") is not None:
        raw_run_if = data["runIf"]
        run_if = (
            scalar_key(raw_run_if)
            if isinstance(raw_run_if, bool)
            else ctx.string(raw_run_if, child_path(path, "runIf"))
        )
        if run_if is not None:
            ctx.collect_expressions(run_if, child_path(path, "runIf"))

    branches, branch_keys = _branches(ctx, data, spec, path)
    props = {k: v for k, v in data.items() if k not in _TASK_COMMON and k not in branch_keys}
    props.pop("version", None)
    if spec is not None:
        props = validate_props(ctx, spec, props, path)
        check_rules(ctx, spec.type, props, path, spec.extra.get("not_supported"))
        ctx.elsewhere += [child_path(path, name) for name in rendered_elsewhere(spec.type)]
    ctx.collect_expressions(props, path)
    if version is not None:
        # Kept with the properties (the worker resolves the same version; the Task shape is unchanged)
        props = {**props, VERSION_KEY: version}

    if task_id is None or raw_type is None:
        return None
    return Task(
        id=task_id,
        type=spec.type if spec is not None else raw_type,
        raw_type=raw_type,
        props=props,
        branches=branches,
        description=description,
        disabled=disabled,
        allow_failure=allow_failure,
        allow_warning=allow_warning,
        timeout=timeout,
        retry=task_retry,
        worker_group=worker_group,
        log_level=log_level,
        run_if=run_if,
        flowable=spec is not None and spec.kind == "flowable",
    )


def _branches(
    ctx: Checker, data: dict[Any, Any], spec: PluginSpec | None, path: str
) -> tuple[dict[str, tuple[Task, ...]], set[str]]:
    """The child task lists of a task, and the keys they took (not plugin properties)."""
    branches: dict[str, tuple[Task, ...]] = {}
    branch_keys: set[str] = {"errors", "finally"}
    if spec is not None and spec.kind == "flowable":
        branch_keys.update(spec.branches)
        required = set(_REQUIRED_BRANCHES.get(spec.type, ())) | set(spec.extra.get("required_branches", ()))
        for name in spec.branches:
            if name in ("errors", "finally"):
                continue
            bpath = child_path(path, name)
            value = data.get(name)
            if name == "cases":
                cases = ctx.mapping(value, bpath, "a map of case value to a list of tasks")
                for case, tasks_value in (cases or {}).items():
                    branches[f"case:{scalar_key(case)}"] = task_list(
                        ctx, tasks_value, child_path(bpath, case)
                    )
                continue
            if name in required and not value:
                ctx.add(
                    bpath if name in data else path,
                    f"'{name}' needs at least one task — add '{name}:' with a list of tasks",
                )
            if name == "tasks" and spec.type in _DAG_TYPES + tuple(spec.extra.get("dag_types", ())):
                branches[name] = dag_tasks(ctx, value, bpath, _task)
            elif value is not None:
                branches[name] = task_list(ctx, value, bpath)
    for name in ("errors", "finally"):
        if data.get(name) is not None:
            branches[name] = task_list(ctx, data[name], child_path(path, name))
    return branches, branch_keys


def _version(ctx: Checker, value: Any, path: str) -> str | None:
    """A task's ``version:`` (Kestra 0.22): an installed version of its plugin, LATEST or OLDEST."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        ctx.add(path, f'expected a version such as "1.2.0", LATEST or OLDEST, got {show(value)}')
        return None
    return str(value)


def _register_id(ctx: Checker, task_id: str, path: str) -> None:
    id_path = child_path(path, "id")
    pos = ctx.pos.at(id_path)
    if task_id in ctx.task_ids:
        first_path, first_line = ctx.task_ids[task_id]
        where = f"line {first_line}" if first_line is not None else first_path
        ctx.add(
            id_path,
            f"duplicate task id '{task_id}': already used at {where} ({first_path}) — "
            "task ids must be unique in the whole flow, rename one",
        )
        return
    ctx.task_ids[task_id] = (path, pos[0] if pos else None)


def _worker_group(ctx: Checker, value: Any, path: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    data = ctx.mapping(value, path, "a worker group {key: ...}")
    if data is None:
        return None
    ctx.unknown_keys(data, path, ("key", "fallback"), "workerGroup property")
    if data.get("fallback") is not None:
        ctx.choice(
            data["fallback"], child_path(path, "fallback"), ("FAIL", "WAIT", "CANCEL"), "workerGroup fallback"
        )
    return ctx.string(data.get("key"), child_path(path, "key"))
