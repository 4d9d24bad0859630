"""Parse and validate Kestra flow YAML into the ``engine.core.model`` Structs.

``load_flow(text)`` reads the YAML (keeping line/column of everything), maps Kestra's camelCase
properties to the model, resolves task types through the plugin registry, applies flow-level
``pluginDefaults`` and validates each task's remaining properties against its plugin's ``props``
Struct. Every problem found becomes an ``Issue`` (file, field path, line, column, the offending
value and how to fix it); all of them are raised together in one ``FlowValidationError``.

A string containing an expression (``{{``, ``{%``) is accepted for a property of any type: it is
rendered at run time. Its syntax is checked here with ``engine.expressions.check``: as warnings by
default (Kestra deploys such flows and fails the task at run time), as issues when
``strict_expressions=True``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import msgspec

from engine.core.errors import FlowValidationError, Issue
from engine.core.model import Flow
from engine.loader.checker import Checker, is_expression, show
from engine.loader.concurrency_sla import concurrency, sla
from engine.loader.expressions import check_expressions
from engine.loader.inputs import INPUT_TYPES, declared_ids, inputs
from engine.loader.labels import labels
from engine.loader.outputs import outputs
from engine.loader.plugin_defaults import plugin_defaults
from engine.loader.retry import retry
from engine.loader.tasks import task_list
from engine.loader.triggers import triggers
from engine.yamlpos import load_yaml
from plugins.registry import Registry, default_registry

__all__ = [
    "INPUT_TYPES",
    "is_expression",
    "load_flow",
    "load_flow_file",
    "load_flow_revision",
    "load_flows_dir",
]

_FLOW_KEYS = (
    "id",
    "namespace",
    "revision",
    "description",
    "labels",
    "inputs",
    "outputs",
    "variables",
    "tasks",
    "errors",
    "finally",
    "afterExecution",
    "listeners",
    "triggers",
    "pluginDefaults",
    "taskDefaults",
    "concurrency",
    "retry",
    "timeout",
    "sla",
    "disabled",
    "deleted",
    "tenantId",
    "checks",
)


def _flow(ctx: Checker, data: Any, source: str) -> Flow | None:
    if data is None:
        ctx.add("", "the flow is empty — a flow needs at least 'id', 'namespace' and 'tasks'")
        return None
    if not isinstance(data, dict):
        ctx.wrong(
            "", "a map of flow properties", data, "start the file with 'id:', 'namespace:' and 'tasks:'"
        )
        return None
    ctx.unknown_keys(data, "", _FLOW_KEYS, "flow property")
    flow_id, namespace = _identity(ctx, data)

    # revision is server-assigned: checked but ignored (the flow store numbers revisions)
    ctx.integer(data.get("revision"), "revision", minimum=1)
    description = ctx.string(data.get("description"), "description")
    flow_labels = labels(ctx, data.get("labels"), "labels")
    flow_inputs = inputs(ctx, data.get("inputs"), "inputs")
    ctx.input_ids = declared_ids(data.get("inputs"))
    variables = ctx.mapping(data.get("variables"), "variables") or {}
    ctx.collect_expressions(variables, "variables")
    flow_outputs = outputs(ctx, data.get("outputs"), "outputs")

    defaults_key = "pluginDefaults"
    if "taskDefaults" in data:
        if "pluginDefaults" in data:
            ctx.add(
                "taskDefaults",
                "both 'taskDefaults' (deprecated) and 'pluginDefaults' are set — "
                "move the entries of 'taskDefaults' into 'pluginDefaults'",
                key=True,
            )
        else:
            defaults_key = "taskDefaults"
    ctx.plugin_defaults = plugin_defaults(ctx, data.get(defaults_key), defaults_key)

    if "tasks" not in data or data.get("tasks") in (None, []):
        ctx.add(
            "tasks" if "tasks" in data else "",
            "a flow needs at least one task — add 'tasks:' with a list of tasks",
        )
    tasks = task_list(ctx, data.get("tasks"), "tasks")
    errors = task_list(ctx, data.get("errors"), "errors")
    finally_ = task_list(ctx, data.get("finally"), "finally")
    after = task_list(ctx, data.get("afterExecution"), "afterExecution")

    if data.get("listeners"):
        ctx.add(
            "listeners",
            "'listeners' is deprecated and not supported — move its tasks to "
            "'afterExecution' (with runIf) or use a Flow trigger in another flow",
            key=True,
        )
    flow_triggers = triggers(ctx, data.get("triggers"), "triggers")
    flow_concurrency = concurrency(ctx, data.get("concurrency"), "concurrency")
    flow_retry = retry(ctx, data.get("retry"), "retry")
    timeout = ctx.duration(data.get("timeout"), "timeout")
    disabled = ctx.boolean(data.get("disabled"), "disabled")
    ctx.boolean(data.get("deleted"), "deleted")
    flow_sla = sla(ctx, data.get("sla"), "sla")
    # Kestra 1.2 ``checks`` are accepted and their expressions checked, but not stored yet
    for sub, check in ctx.maps(data.get("checks"), "checks", "a check definition (a map)"):
        ctx.collect_expressions(check, sub)

    if flow_id is None or namespace is None:
        return None
    return Flow(
        id=flow_id,
        namespace=namespace,
        tasks=tasks,
        description=description,
        labels=flow_labels,
        inputs=flow_inputs,
        variables=variables,
        outputs=flow_outputs,
        errors=errors,
        finally_=finally_,
        after_execution=after,
        triggers=flow_triggers,
        plugin_defaults=ctx.plugin_defaults,
        concurrency=flow_concurrency,
        sla=flow_sla,
        retry=flow_retry,
        timeout=timeout,
        disabled=disabled,
        source=source,
    )


# (key, pattern, longest, noun, the rule a bad value breaks)
_IDENTITY = (
    (
        "id",
        re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$"),
        100,
        "flow id",
        "start with a letter or digit and use only letters, digits, '.', '_' and '-' "
        "(at most 100 characters)",
    ),
    (
        "namespace",
        re.compile(r"^[a-z0-9][a-z0-9._-]*$"),
        150,
        "namespace",
        "use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit, like company.team",
    ),
)


def _identity(ctx: Checker, data: dict[Any, Any]) -> tuple[str | None, str | None]:
    """The flow's id and namespace, None where missing (the flow is then not built)."""
    found: list[str | None] = []
    for key, pattern, longest, noun, rule in _IDENTITY:
        value = ctx.required_string(data, key, "", "flow property")
        if value is not None and (not pattern.match(value) or len(value) > longest):
            ctx.add(key, f"invalid {noun} {show(value)} — {rule}")
        found.append(value)
    return found[0], found[1]


def _sort_key(issue: Issue) -> tuple[int, int]:
    return (issue.line if issue.line is not None else 1 << 30, issue.column or 0)


def load_flow(
    text: str,
    *,
    file: str | None = None,
    registry: Registry | None = None,
    strict_expressions: bool = False,
    warnings: list[Issue] | None = None,
) -> Flow:
    """Parse and validate one flow; raises FlowValidationError listing every issue found.

    Expression syntax errors follow Kestra, which accepts such a flow and fails the task at run
    time: by default they are appended to ``warnings`` (when given) and don't reject the flow;
    with ``strict_expressions=True`` (e.g. ``engine validate``) they are issues like any other.
    """
    data, positions = load_yaml(text, file=file)
    ctx = Checker(positions, file, registry if registry is not None else default_registry())
    for dup in positions.duplicates:
        ctx.issues.append(
            Issue(
                dup.path,
                f"duplicate key (first written at line {dup.first_line}) — keep only one of them",
                dup.line,
                dup.column,
                file,
            )
        )
    flow = _flow(ctx, data, text)
    expression_issues = check_expressions(ctx)
    if strict_expressions:
        ctx.issues.extend(expression_issues)
    elif warnings is not None:
        warnings.extend(sorted(expression_issues, key=_sort_key))
    if ctx.issues or flow is None:
        issues = sorted(ctx.issues, key=_sort_key) or [Issue("", "invalid flow", None, None, file)]
        raise FlowValidationError(issues)
    return flow


_SUITE_KEYS = (re.compile(r"^flowId\s*:", re.M), re.compile(r"^testCases\s*:", re.M))


def is_test_suite(text: str) -> bool:
    """A flow unit-test file (``engine test``), kept beside the flows it tests: deploying a directory
    and validating it skip such files, they are no flows."""
    return all(key.search(text) for key in _SUITE_KEYS)


def load_flow_revision(
    source: str, revision: int, *, file: str | None = None, registry: Registry | None = None
) -> Flow:
    """A stored revision of a flow: ``load_flow`` numbered by the store (``revision:`` in the YAML is
    the author's, checked but not trusted)."""
    return msgspec.structs.replace(load_flow(source, file=file, registry=registry), revision=revision)


def load_flow_file(
    path: str | Path,
    *,
    registry: Registry | None = None,
    strict_expressions: bool = False,
    warnings: list[Issue] | None = None,
) -> Flow:
    """``load_flow`` on a file; issues carry the file path."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FlowValidationError(
            [Issue("", f"can't read the flow file: {exc}", None, None, str(p))]
        ) from None
    return load_flow(
        text, file=str(p), registry=registry, strict_expressions=strict_expressions, warnings=warnings
    )


def load_flows_dir(
    path: str | Path,
    *,
    registry: Registry | None = None,
    strict_expressions: bool = False,
    warnings: list[Issue] | None = None,
) -> list[Flow]:
    """Every ``*.yml``/``*.yaml`` flow under ``path`` (recursive, sorted by path).

    Raises one FlowValidationError with the issues of every invalid file.
    """
    root = Path(path)
    if not root.is_dir():
        raise FlowValidationError([Issue("", "not a directory", None, None, str(root))])
    files = sorted(p for p in root.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())
    flows: list[Flow] = []
    issues: list[Issue] = []
    for f in files:
        try:
            if is_test_suite(f.read_text(encoding="utf-8", errors="replace")):
                continue
            flows.append(
                load_flow_file(f, registry=registry, strict_expressions=strict_expressions, warnings=warnings)
            )
        except FlowValidationError as exc:
            issues.extend(exc.issues)
    if issues:
        raise FlowValidationError(issues)
    return flows
