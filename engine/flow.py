"""Parse and validate Kestra flow YAML into the ``engine.model`` Structs.

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

import contextlib
import difflib
import importlib
import json
import re
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec

from engine.core.durations import parse_duration
from engine.core.errors import FlowValidationError, Issue
from engine.core.model import SLA, Concurrency, Flow, Input, Output, PluginDefault, Retry, Task, Trigger
from engine.yamlpos import Positions, child_path, index_path, load_yaml
from plugins.api import PluginSpec
from plugins.registry import Registry, default_registry

__all__ = [
    "INPUT_TYPES",
    "is_expression",
    "load_flow",
    "load_flow_file",
    "load_flows_dir",
]

FLOW_ID_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$")
NAMESPACE_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
TASK_ID_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]*$")
INPUT_ID_RE = re.compile(r"^[a-zA-Z0-9][.a-zA-Z0-9_-]*$")
TYPE_NAME_RE = re.compile(r"^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*$")

INPUT_TYPES = (
    "STRING",
    "INT",
    "FLOAT",
    "BOOLEAN",
    "DATETIME",
    "DATE",
    "TIME",
    "DURATION",
    "JSON",
    "YAML",
    "ARRAY",
    "SELECT",
    "MULTISELECT",
    "ENUM",
    "SECRET",
    "URI",
    "EMAIL",
    "FILE",
)
# type-specific input fields (Kestra names), kept in Input.extra
INPUT_EXTRA: dict[str, tuple[str, ...]] = {
    "STRING": ("validator",),
    "INT": ("min", "max"),
    "FLOAT": ("min", "max"),
    "DATETIME": ("after", "before"),
    "DATE": ("after", "before"),
    "TIME": ("after", "before"),
    "DURATION": ("min", "max"),
    "SELECT": ("values", "expression", "allowCustomValue", "isRadio"),
    "MULTISELECT": ("values", "options", "expression", "itemType", "allowCustomValue"),
    "ENUM": ("values",),
    "FILE": ("extension",),
    "ARRAY": ("itemType",),
}
_INPUT_COMMON = ("id", "name", "type", "description", "displayName", "required", "defaults", "dependsOn")

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
_LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR")
_RETRY_FIELDS: dict[str, tuple[str, ...]] = {
    "constant": ("interval",),
    "exponential": ("interval", "maxInterval", "delayFactor"),
    "random": ("minInterval", "maxInterval"),
}
_RETRY_REQUIRED: dict[str, tuple[str, ...]] = {
    "constant": ("interval",),
    "exponential": ("interval", "maxInterval"),
    "random": ("minInterval", "maxInterval"),
}
_RETRY_COMMON = ("type", "maxAttempt", "maxDuration", "warningOnRetry", "behavior")
_RETRY_BEHAVIORS = ("RETRY_FAILED_TASK", "CREATE_NEW_EXECUTION")
_CONCURRENCY_BEHAVIORS = ("QUEUE", "CANCEL", "FAIL")
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

_EXPR_MARKERS = ("{{", "{%")
_MISSING: Any = object()


def is_expression(value: object) -> bool:
    """True if ``value`` is a string holding a template expression (rendered at run time)."""
    return isinstance(value, str) and any(m in value for m in _EXPR_MARKERS)


def _show(value: object) -> str:
    """The offending value as the user wrote it, shortened."""
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif value is None:
        text = "null (nothing)"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, dict):
        text = (
            "a map {" + ", ".join(str(k) for k in list(value)[:4]) + (", ..." if len(value) > 4 else "") + "}"
        )
    elif isinstance(value, list):
        text = f"a list of {len(value)} item" + ("" if len(value) == 1 else "s")
    else:
        text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _closest(name: str, candidates: Iterable[str], noun: str = "properties") -> str:
    options = list(candidates)
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in options}
        if name.lower() in lowered:
            close = [lowered[name.lower()]]
    if close:
        return f"did you mean '{close[0]}'?"
    if options and len(options) <= 12:
        return f"known {noun}: " + ", ".join(sorted(options))
    return "remove it or check the spelling"


def _integral(value: object) -> bool:
    if isinstance(value, str):
        return re.fullmatch(r"\s*-?\d+\s*", value) is not None
    return isinstance(value, float) and value.is_integer()


def _scalar_key(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


# --------------------------------------------------------------------------------------------
# type descriptions for messages


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _describe(tp: Any) -> tuple[str, str]:
    """(noun, fix) for a Python type annotation."""
    if tp is int:
        return "an integer", "write a whole number like 3"
    if tp is float:
        return "a number", "write a number like 1.5"
    if tp is bool:
        return "true or false", "write true or false"
    if tp is str:
        return "a string", 'write text, quoted if it has special characters, like "text"'
    if tp is type(None):
        return "nothing", "remove it"
    origin = typing.get_origin(tp)
    if origin is Literal:
        vals = ", ".join(repr(a) for a in typing.get_args(tp))
        return f"one of {vals}", f"use one of {vals}"
    if _is_union(tp):
        parts = [_describe(a) for a in typing.get_args(tp) if a is not type(None)]
        noun = " or ".join(p[0] for p in parts)
        return noun, parts[0][1] if parts else "fix the value"
    if origin in (list, tuple, set, frozenset) or tp in (list, tuple, set):
        return "a list", "write a YAML list, one '- item' per line"
    if origin is dict or tp is dict or (isinstance(tp, type) and issubclass(tp, msgspec.Struct)):
        return "a map", "write 'key: value' pairs indented below it"
    name = getattr(tp, "__name__", str(tp))
    return f"a {name}", f"write a valid {name}"


# --------------------------------------------------------------------------------------------


class _Ctx:
    def __init__(self, positions: Positions, file: str | None, registry: Registry) -> None:
        self.pos = positions
        self.file = file
        self.registry = registry
        self.issues: list[Issue] = []
        self.task_ids: dict[str, tuple[str, int | None]] = {}
        self.expressions: list[tuple[str, str]] = []
        self.plugin_defaults: tuple[PluginDefault, ...] = ()

    # -- issues ---------------------------------------------------------------------------
    def add(self, path: str, message: str, *, key: bool = False) -> None:
        where = self.pos.key_or_at(path) if key else self.pos.at(path)
        line, column = where if where is not None else (None, None)
        self.issues.append(Issue(path or "(flow)", message, line, column, self.file))

    def wrong(self, path: str, expected: str, value: object, fix: str) -> None:
        self.add(path, f"expected {expected}, got {_show(value)} — {fix}")

    def unknown_keys(self, data: Mapping[Any, Any], path: str, known: Iterable[str], what: str) -> None:
        known_list = list(known)
        for k in data:
            if k not in known_list:
                self.add(
                    child_path(path, k),
                    f"unknown {what} '{k}' — {_closest(str(k), known_list)}",
                    key=True,
                )

    # -- scalars --------------------------------------------------------------------------
    def string(self, value: Any, path: str) -> str | None:
        if value is None:
            return None
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        self.wrong(path, "a string", value, 'write text, like "my text"')
        return None

    def required_string(self, data: Mapping[str, Any], key: str, path: str, what: str) -> str | None:
        value = data.get(key)
        if value is None or value == "":
            self.add(
                path if key not in data else child_path(path, key),
                f"missing required {what} '{key}' — add '{key}: ...'",
            )
            return None
        return self.string(value, child_path(path, key))

    def boolean(self, value: Any, path: str, default: bool = False) -> bool:
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        self.wrong(path, "true or false", value, "write true or false")
        return default

    def integer(self, value: Any, path: str, *, minimum: int | None = None) -> int | None:
        if value is None:
            return None
        result: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            result = value
        elif _integral(value):
            result = int(value)
        if result is None:
            self.wrong(path, "an integer", value, "write a whole number like 3")
            return None
        if minimum is not None and result < minimum:
            self.add(path, f"must be at least {minimum}, got {result} — write a number >= {minimum}")
            return None
        return result

    def number(self, value: Any, path: str) -> float | None:
        if value is None:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        self.wrong(path, "a number", value, "write a number like 1.5")
        return None

    def duration(self, value: Any, path: str) -> float | None:
        if value is None:
            return None
        if is_expression(value):
            self.add(
                path,
                f"expected a fixed duration, got the expression {_show(value)} — "
                "write an ISO-8601 duration like PT30S (expressions aren't supported here)",
            )
            return None
        try:
            return parse_duration(value)
        except ValueError:
            self.wrong(
                path, "an ISO-8601 duration", value, "write a duration like PT30S, PT5M, PT1H30M or P1D"
            )
            return None

    def choice(self, value: Any, path: str, choices: Iterable[str], what: str) -> str | None:
        if value is None:
            return None
        options = list(choices)
        text = self.string(value, path)
        if text is None:
            return None
        if text in options:
            return text
        upper = {o.upper(): o for o in options}
        hint = _closest(text, options)
        if text.upper() in upper and upper[text.upper()] != text:
            hint = f"did you mean '{upper[text.upper()]}'?"
        self.add(path, f"invalid {what} {_show(value)} — use one of {', '.join(options)} ({hint})")
        return None

    def mapping(self, value: Any, path: str, what: str = "a map") -> dict[Any, Any] | None:
        if value is None:
            return None
        if isinstance(value, dict):
            return value
        self.wrong(path, what, value, "write 'key: value' pairs indented below it")
        return None

    def sequence(self, value: Any, path: str, what: str = "a list") -> list[Any] | None:
        if value is None:
            return None
        if isinstance(value, list):
            return value
        self.wrong(path, what, value, "write a YAML list, one '- item' per line")
        return None

    # -- expressions ----------------------------------------------------------------------
    def collect_expressions(self, value: Any, path: str) -> None:
        if isinstance(value, str):
            if is_expression(value):
                self.expressions.append((path, value))
        elif isinstance(value, dict):
            for k, v in value.items():
                self.collect_expressions(v, child_path(path, k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self.collect_expressions(v, index_path(path, i))

    def check_expressions(self, into: list[Issue]) -> None:
        try:
            expressions = importlib.import_module("engine.expressions")
        except ImportError:  # written concurrently; until it exists, expressions aren't syntax-checked
            return
        check = getattr(expressions, "check", None)
        if check is None:
            return
        for path, template in self.expressions:
            try:
                check(template)
            except Exception as exc:  # ExpressionError, but never let a checker bug hide other issues
                self.issue_to(into, path, f"{exc} — fix the template syntax")

    # -- flow -----------------------------------------------------------------------------
    def flow(self, data: Any, source: str) -> Flow | None:
        if data is None:
            self.add("", "the flow is empty — a flow needs at least 'id', 'namespace' and 'tasks'")
            return None
        if not isinstance(data, dict):
            self.wrong(
                "", "a map of flow properties", data, "start the file with 'id:', 'namespace:' and 'tasks:'"
            )
            return None
        self.unknown_keys(data, "", _FLOW_KEYS, "flow property")

        flow_id = self.required_string(data, "id", "", "flow property")
        if flow_id is not None and (not FLOW_ID_RE.match(flow_id) or len(flow_id) > 100):
            self.add(
                "id",
                f"invalid flow id {_show(flow_id)} — start with a letter or digit and use only "
                "letters, digits, '.', '_' and '-' (at most 100 characters)",
            )
        namespace = self.required_string(data, "namespace", "", "flow property")
        if namespace is not None and (not NAMESPACE_RE.match(namespace) or len(namespace) > 150):
            self.add(
                "namespace",
                f"invalid namespace {_show(namespace)} — use lowercase letters, digits, "
                "'.', '_' and '-', starting with a letter or digit, like company.team",
            )

        # revision is server-assigned: checked but ignored (the flow store numbers revisions)
        self.integer(data.get("revision"), "revision", minimum=1)
        description = self.string(data.get("description"), "description")
        labels = self.labels(data.get("labels"), "labels")
        inputs = self.inputs(data.get("inputs"), "inputs")
        variables = self.mapping(data.get("variables"), "variables") or {}
        self.collect_expressions(variables, "variables")
        outputs = self.outputs(data.get("outputs"), "outputs")

        defaults_key = "pluginDefaults"
        if "taskDefaults" in data:
            if "pluginDefaults" in data:
                self.add(
                    "taskDefaults",
                    "both 'taskDefaults' (deprecated) and 'pluginDefaults' are set — "
                    "move the entries of 'taskDefaults' into 'pluginDefaults'",
                    key=True,
                )
            else:
                defaults_key = "taskDefaults"
        self.plugin_defaults = self.parse_plugin_defaults(data.get(defaults_key), defaults_key)

        if "tasks" not in data or data.get("tasks") in (None, []):
            self.add(
                "tasks" if "tasks" in data else "",
                "a flow needs at least one task — add 'tasks:' with a list of tasks",
            )
        tasks = self.task_list(data.get("tasks"), "tasks")
        errors = self.task_list(data.get("errors"), "errors")
        finally_ = self.task_list(data.get("finally"), "finally")
        after = self.task_list(data.get("afterExecution"), "afterExecution")

        if data.get("listeners"):
            self.add(
                "listeners",
                "'listeners' is deprecated and not supported — move its tasks to "
                "'afterExecution' (with runIf) or use a Flow trigger in another flow",
                key=True,
            )
        triggers = self.triggers(data.get("triggers"), "triggers")
        concurrency = self.concurrency(data.get("concurrency"), "concurrency")
        retry = self.retry(data.get("retry"), "retry")
        timeout = self.duration(data.get("timeout"), "timeout")
        disabled = self.boolean(data.get("disabled"), "disabled")
        self.boolean(data.get("deleted"), "deleted")
        sla = self.sla(data.get("sla"), "sla")
        self.checks(data.get("checks"), "checks")

        if flow_id is None or namespace is None:
            return None
        return Flow(
            id=flow_id,
            namespace=namespace,
            tasks=tasks,
            description=description,
            labels=labels,
            inputs=inputs,
            variables=variables,
            outputs=outputs,
            errors=errors,
            finally_=finally_,
            after_execution=after,
            triggers=triggers,
            plugin_defaults=self.plugin_defaults,
            concurrency=concurrency,
            sla=sla,
            retry=retry,
            timeout=timeout,
            disabled=disabled,
            source=source,
        )

    # -- flow parts -----------------------------------------------------------------------
    def labels(self, value: Any, path: str) -> dict[str, str]:
        result: dict[str, str] = {}
        if value is None:
            return result
        if isinstance(value, dict):
            for k, v in value.items():
                sub = child_path(path, k)
                if isinstance(v, dict | list):
                    self.wrong(sub, "a text label value", v, "write 'key: value' with a plain value")
                    continue
                result[_scalar_key(k)] = _scalar_key(v)
            return result
        if isinstance(value, list):
            for i, item in enumerate(value):
                sub = index_path(path, i)
                if not isinstance(item, dict) or "key" not in item or "value" not in item:
                    self.wrong(sub, "a label {key, value}", item, "write '- key: name' and 'value: text'")
                    continue
                self.unknown_keys(item, sub, ("key", "value"), "label property")
                result[_scalar_key(item["key"])] = _scalar_key(item["value"])
            return result
        self.wrong(path, "a map of labels", value, "write 'name: value' pairs, or a list of {key, value}")
        return result

    def inputs(self, value: Any, path: str) -> tuple[Input, ...]:
        items = self.sequence(value, path)
        if not items:
            return ()
        result: list[Input] = []
        seen: dict[str, str] = {}
        for i, item in enumerate(items):
            sub = index_path(path, i)
            data = self.mapping(item, sub, "an input definition (a map)")
            if data is None:
                continue
            parsed = self.input(data, sub)
            if parsed is None:
                continue
            if parsed.id in seen:
                first = self.pos.at(seen[parsed.id])
                self.add(
                    child_path(sub, "id" if "id" in data else "name"),
                    f"duplicate input id '{parsed.id}'"
                    + (f", already defined at line {first[0]}" if first else "")
                    + " — give each input a unique id",
                )
                continue
            seen[parsed.id] = sub
            result.append(parsed)
        return tuple(result)

    def input(self, data: dict[Any, Any], path: str) -> Input | None:
        key = "id" if data.get("id") is not None else "name"
        input_id = self.string(data.get(key), child_path(path, key))
        if input_id is None:
            self.add(path, "missing input 'id' — add 'id: my_input'")
        elif not INPUT_ID_RE.match(input_id):
            self.add(
                child_path(path, key),
                f"invalid input id {_show(input_id)} — start with a letter or digit "
                "and use only letters, digits, '.', '_' and '-'",
            )
        type_ = "STRING"
        if data.get("type") is None:
            self.add(path, "missing input 'type' — add 'type: STRING' (or INT, BOOLEAN, ...)")
        else:
            raw = self.string(data.get("type"), child_path(path, "type"))
            if raw is not None:
                if raw.upper() in INPUT_TYPES:
                    type_ = raw.upper()
                    if raw != type_:
                        self.add(
                            child_path(path, "type"),
                            f"input type {_show(raw)} must be upper case — write {type_}",
                        )
                else:
                    self.add(
                        child_path(path, "type"),
                        f"unknown input type {_show(raw)} — use one of "
                        f"{', '.join(INPUT_TYPES)} ({_closest(raw.upper(), INPUT_TYPES)})",
                    )
        extra_keys = INPUT_EXTRA.get(type_, ())
        self.unknown_keys(data, path, (*_INPUT_COMMON, *extra_keys), f"property for a {type_} input")
        required = self.boolean(data.get("required"), child_path(path, "required"), default=True)
        description = self.string(data.get("description"), child_path(path, "description"))
        display = self.string(data.get("displayName"), child_path(path, "displayName"))
        if display is not None and len(display) > 64:
            self.add(child_path(path, "displayName"), "displayName is longer than 64 characters — shorten it")
        depends = self.mapping(data.get("dependsOn"), child_path(path, "dependsOn"))
        if depends is not None:
            dpath = child_path(path, "dependsOn")
            self.unknown_keys(depends, dpath, ("inputs", "condition"), "dependsOn property")
            deps = self.sequence(depends.get("inputs"), child_path(dpath, "inputs"))
            for j, dep in enumerate(deps or []):
                self.string(dep, index_path(child_path(dpath, "inputs"), j))
            if depends.get("condition") is not None:
                self.collect_expressions(depends["condition"], child_path(dpath, "condition"))
        extra: dict[str, Any] = {}
        for k in extra_keys:
            if k in data and data[k] is not None:
                extra[k] = data[k]
        self.check_input_extra(type_, extra, path)
        defaults = data.get("defaults")
        self.collect_expressions(defaults, child_path(path, "defaults"))
        if defaults is not None and not is_expression(defaults) and type_ not in ("FILE",):
            from engine.inputs import coerce_input

            try:
                coerce_input(Input(id=input_id or "?", type=type_, extra=extra), defaults)
            except Exception as exc:
                reason = str(exc).split(": ", 1)[-1]
                self.add(child_path(path, "defaults"), f"invalid default: {reason}")
        if input_id is None:
            return None
        return Input(
            id=input_id,
            type=type_,
            required=required,
            defaults=defaults,
            description=description,
            display_name=display,
            extra=extra,
            depends_on=depends,
        )

    def check_input_extra(self, type_: str, extra: dict[str, Any], path: str) -> None:
        if type_ == "STRING" and "validator" in extra:
            try:
                re.compile(str(extra["validator"]))
            except re.error as exc:
                self.add(
                    child_path(path, "validator"),
                    f"invalid regular expression {_show(extra['validator'])}: {exc} — fix the pattern",
                )
        if type_ in ("INT", "FLOAT"):
            for k in ("min", "max"):
                if k in extra:
                    if type_ == "INT":
                        self.integer(extra[k], child_path(path, k))
                    else:
                        self.number(extra[k], child_path(path, k))
        if type_ == "DURATION":
            for k in ("min", "max"):
                if k in extra:
                    self.duration(extra[k], child_path(path, k))
        if type_ in ("ENUM", "SELECT", "MULTISELECT"):
            values = extra.get("values", extra.get("options"))
            if values is None and "expression" not in extra:
                self.add(path, f"a {type_} input needs 'values' — add 'values:' with the list of choices")
            elif values is not None:
                items = self.sequence(values, child_path(path, "values" if "values" in extra else "options"))
                for j, v in enumerate(items or []):
                    if isinstance(v, dict | list):
                        self.wrong(
                            index_path(child_path(path, "values"), j),
                            "a text value",
                            v,
                            "write each choice as plain text",
                        )
            if "allowCustomValue" in extra:
                self.boolean(extra["allowCustomValue"], child_path(path, "allowCustomValue"))
        if type_ in ("ARRAY", "MULTISELECT"):
            item_type = extra.get("itemType")
            if item_type is None and type_ == "ARRAY":
                self.add(path, "an ARRAY input needs 'itemType' — add 'itemType: STRING' (or INT, ...)")
            elif item_type is not None:
                text = str(item_type)
                if text not in INPUT_TYPES or text == "ARRAY":
                    self.add(
                        child_path(path, "itemType"),
                        f"invalid itemType {_show(item_type)} — use one of "
                        f"{', '.join(t for t in INPUT_TYPES if t != 'ARRAY')}",
                    )

    def outputs(self, value: Any, path: str) -> tuple[Output, ...]:
        items = self.sequence(value, path)
        if not items:
            return ()
        result: list[Output] = []
        seen: set[str] = set()
        for i, item in enumerate(items):
            sub = index_path(path, i)
            data = self.mapping(item, sub, "an output definition (a map)")
            if data is None:
                continue
            self.unknown_keys(
                data,
                sub,
                ("id", "type", "value", "description", "displayName", "required"),
                "output property",
            )
            out_id = self.required_string(data, "id", sub, "output property")
            if "value" not in data:
                self.add(
                    sub,
                    "missing required output property 'value' — add 'value: \"{{ outputs.task.value }}\"'",
                )
            type_ = "STRING"
            if data.get("type") is not None:
                type_ = (
                    self.choice(data["type"], child_path(sub, "type"), INPUT_TYPES, "output type") or "STRING"
                )
            self.collect_expressions(data.get("value"), child_path(sub, "value"))
            description = self.string(data.get("description"), child_path(sub, "description"))
            required = self.boolean(data.get("required"), child_path(sub, "required"), default=True)
            if out_id is None:
                continue
            if out_id in seen:
                self.add(
                    child_path(sub, "id"), f"duplicate output id '{out_id}' — give each output a unique id"
                )
                continue
            seen.add(out_id)
            result.append(
                Output(
                    id=out_id, value=data.get("value"), type=type_, description=description, required=required
                )
            )
        return tuple(result)

    def triggers(self, value: Any, path: str) -> tuple[Trigger, ...]:
        items = self.sequence(value, path)
        if not items:
            return ()
        result: list[Trigger] = []
        seen: set[str] = set()
        for i, item in enumerate(items):
            sub = index_path(path, i)
            data = self.mapping(item, sub, "a trigger definition (a map)")
            if data is None:
                continue
            trig_id = self.required_string(data, "id", sub, "trigger property")
            trig_type = self.required_string(data, "type", sub, "trigger property")
            disabled = self.boolean(data.get("disabled"), child_path(sub, "disabled"))
            props = {k: v for k, v in data.items() if k not in ("id", "type", "disabled")}
            declared = self.registry.trigger(trig_type) if trig_type is not None else None
            if declared is not None:
                props = self.validate_props(declared, props, sub)
            self.collect_expressions(props, sub)
            if trig_id is None or trig_type is None:
                continue
            if trig_id in seen:
                self.add(
                    child_path(sub, "id"), f"duplicate trigger id '{trig_id}' — give each trigger a unique id"
                )
                continue
            seen.add(trig_id)
            result.append(Trigger(id=trig_id, type=trig_type, props=props, disabled=disabled))
        return tuple(result)

    def concurrency(self, value: Any, path: str) -> Concurrency | None:
        data = self.mapping(value, path)
        if data is None:
            return None
        self.unknown_keys(data, path, ("limit", "behavior"), "concurrency property")
        if data.get("limit") is None:
            self.add(path, "missing required concurrency property 'limit' — add 'limit: 1'")
            return None
        limit = self.integer(data.get("limit"), child_path(path, "limit"), minimum=1)
        behavior = "QUEUE"
        if data.get("behavior") is not None:
            behavior = (
                self.choice(
                    data["behavior"],
                    child_path(path, "behavior"),
                    _CONCURRENCY_BEHAVIORS,
                    "concurrency behavior",
                )
                or "QUEUE"
            )
        return Concurrency(limit=limit, behavior=behavior) if limit is not None else None

    def retry(self, value: Any, path: str) -> Retry | None:
        data = self.mapping(value, path)
        if data is None:
            return None
        type_ = None
        if data.get("type") is None:
            self.add(path, "missing retry 'type' — add 'type: constant' (or exponential, random)")
        else:
            type_ = self.choice(data["type"], child_path(path, "type"), tuple(_RETRY_FIELDS), "retry type")
        if type_ is None:
            return None
        known = (*_RETRY_COMMON, *_RETRY_FIELDS[type_])
        for k in data:
            if k not in known:
                if k == "maxAttempts":
                    self.add(
                        child_path(path, k),
                        "unknown retry property 'maxAttempts' — Kestra calls it 'maxAttempt'",
                        key=True,
                    )
                elif any(k in fields for fields in _RETRY_FIELDS.values()):
                    self.add(
                        child_path(path, k),
                        f"'{k}' does not apply to a {type_} retry — remove it or change "
                        f"the type (constant: interval; exponential: interval, "
                        f"maxInterval, delayFactor; random: minInterval, maxInterval)",
                        key=True,
                    )
                else:
                    self.add(
                        child_path(path, k),
                        f"unknown retry property '{k}' — {_closest(str(k), known)}",
                        key=True,
                    )
        for k in _RETRY_REQUIRED[type_]:
            if data.get(k) is None:
                self.add(path, f"a {type_} retry needs '{k}' — add '{k}: PT1S' (an ISO-8601 duration)")
        behavior = None
        if data.get("behavior") is not None:
            behavior = self.choice(
                data["behavior"], child_path(path, "behavior"), _RETRY_BEHAVIORS, "retry behavior"
            )
        return Retry(
            type=type_,
            interval=self.duration(data.get("interval"), child_path(path, "interval")),
            max_interval=self.duration(data.get("maxInterval"), child_path(path, "maxInterval")),
            min_interval=self.duration(data.get("minInterval"), child_path(path, "minInterval")),
            delay_factor=self.number(data.get("delayFactor"), child_path(path, "delayFactor")),
            max_attempt=self.integer(data.get("maxAttempt"), child_path(path, "maxAttempt"), minimum=1),
            max_duration=self.duration(data.get("maxDuration"), child_path(path, "maxDuration")),
            warning_on_retry=self.boolean(data.get("warningOnRetry"), child_path(path, "warningOnRetry")),
            behavior=behavior,
        )

    def parse_plugin_defaults(self, value: Any, path: str) -> tuple[PluginDefault, ...]:
        items = self.sequence(value, path)
        if not items:
            return ()
        result: list[PluginDefault] = []
        for i, item in enumerate(items):
            sub = index_path(path, i)
            data = self.mapping(item, sub, "a plugin default (a map with type and values)")
            if data is None:
                continue
            self.unknown_keys(data, sub, ("type", "values", "forced"), "plugin default property")
            type_ = self.required_string(data, "type", sub, "plugin default property")
            values = self.mapping(data.get("values"), child_path(sub, "values"))
            if values is None and "values" not in data:
                self.add(sub, "missing 'values' — add 'values:' with the properties to default")
            forced = self.boolean(data.get("forced"), child_path(sub, "forced"))
            if type_ is None:
                continue
            if values:
                self.collect_expressions(values, child_path(sub, "values"))
            result.append(PluginDefault(type=type_, values=dict(values or {}), forced=forced))
        return tuple(result)

    def sla(self, value: Any, path: str) -> tuple[SLA, ...]:
        """Flow SLAs (MAX_DURATION, EXECUTION_ASSERTION), enforced by the executor."""
        found: list[SLA] = []
        items = self.sequence(value, path)
        for i, item in enumerate(items or []):
            sub = index_path(path, i)
            data = self.mapping(item, sub, "an SLA definition (a map)")
            if data is None:
                continue
            self.unknown_keys(
                data, sub, ("id", "type", "behavior", "labels", "duration", "assert"), "sla property"
            )
            self.required_string(data, "id", sub, "sla property")
            if data.get("type") is None:
                self.add(sub, "missing sla 'type' — add 'type: MAX_DURATION' or 'type: EXECUTION_ASSERTION'")
            else:
                self.choice(
                    data["type"], child_path(sub, "type"), ("MAX_DURATION", "EXECUTION_ASSERTION"), "sla type"
                )
            if data.get("behavior") is not None:
                self.choice(
                    data["behavior"], child_path(sub, "behavior"), ("FAIL", "CANCEL", "NONE"), "sla behavior"
                )
            duration = None
            if data.get("duration") is not None:
                duration = self.duration(data["duration"], child_path(sub, "duration"))
            self.collect_expressions(data.get("assert"), child_path(sub, "assert"))
            labels = self.labels(data.get("labels"), child_path(sub, "labels"))
            if data.get("id") is not None and data.get("type") in ("MAX_DURATION", "EXECUTION_ASSERTION"):
                found.append(
                    SLA(
                        id=str(data["id"]),
                        type=str(data["type"]),
                        behavior=str(data.get("behavior") or "FAIL").upper(),
                        duration=duration,
                        assert_=None if data.get("assert") is None else str(data["assert"]),
                        labels=labels,
                    )
                )
        return tuple(found)

    def checks(self, value: Any, path: str) -> None:
        """Kestra 1.2 ``checks`` are accepted and their expressions checked, but not stored yet."""
        items = self.sequence(value, path)
        for i, item in enumerate(items or []):
            sub = index_path(path, i)
            data = self.mapping(item, sub, "a check definition (a map)")
            if data is not None:
                self.collect_expressions(data, sub)

    # -- tasks ----------------------------------------------------------------------------
    def task_list(self, value: Any, path: str) -> tuple[Task, ...]:
        items = self.sequence(value, path, "a list of tasks")
        if not items:
            return ()
        result: list[Task] = []
        for i, item in enumerate(items):
            task = self.task(item, index_path(path, i))
            if task is not None:
                result.append(task)
        return tuple(result)

    def register_id(self, task_id: str, path: str) -> None:
        id_path = child_path(path, "id")
        pos = self.pos.at(id_path)
        if task_id in self.task_ids:
            first_path, first_line = self.task_ids[task_id]
            where = f"line {first_line}" if first_line is not None else first_path
            self.add(
                id_path,
                f"duplicate task id '{task_id}': already used at {where} ({first_path}) — "
                "task ids must be unique in the whole flow, rename one",
            )
            return
        self.task_ids[task_id] = (path, pos[0] if pos else None)

    def apply_defaults(self, data: dict[Any, Any], canonical: str | None, raw_type: str) -> dict[Any, Any]:
        if not self.plugin_defaults:
            return data
        names = {raw_type}
        if canonical:
            names.add(canonical)

        def matches(default_type: str) -> bool:
            targets = {default_type}
            with contextlib.suppress(Exception):
                targets.add(self.registry.resolve(default_type).type)
            return any(n == t or n.startswith(t + ".") for n in names for t in targets)

        result = data
        for d in self.plugin_defaults:
            if not d.forced and matches(d.type):
                result = _deep_merge(_strip(d.values), result)
        for d in reversed(self.plugin_defaults):
            if d.forced and matches(d.type):
                result = _deep_merge(result, _strip(d.values))
        return result

    def task(self, item: Any, path: str) -> Task | None:
        data = self.mapping(item, path, "a task (a map with id and type)")
        if data is None:
            return None
        task_id = self.required_string(data, "id", path, "task property")
        if task_id is not None:
            if not TASK_ID_RE.match(task_id):
                self.add(
                    child_path(path, "id"),
                    f"invalid task id {_show(task_id)} — start with a letter or "
                    "digit and use only letters, digits, '_' and '-'",
                )
            self.register_id(task_id, path)
        raw_type = self.required_string(data, "type", path, "task property")
        spec: PluginSpec | None = None
        if raw_type is not None:
            try:
                spec = self.registry.resolve(raw_type)
            except Exception:
                spec = None
                hint = self.registry.suggest(raw_type)
                self.add(child_path(path, "type"), f"unknown task type {_show(raw_type)} — {hint}")

        data = self.apply_defaults(data, spec.type if spec else None, raw_type or "")

        description = self.string(data.get("description"), child_path(path, "description"))
        disabled = self.boolean(data.get("disabled"), child_path(path, "disabled"))
        allow_failure = self.boolean(data.get("allowFailure"), child_path(path, "allowFailure"))
        allow_warning = self.boolean(data.get("allowWarning"), child_path(path, "allowWarning"))
        self.boolean(data.get("logToFile"), child_path(path, "logToFile"))
        timeout = self.duration(data.get("timeout"), child_path(path, "timeout"))
        retry = self.retry(data.get("retry"), child_path(path, "retry"))
        worker_group = self.worker_group(data.get("workerGroup"), child_path(path, "workerGroup"))
        log_level = None
        if data.get("logLevel") is not None:
            log_level = self.choice(data["logLevel"], child_path(path, "logLevel"), _LOG_LEVELS, "log level")
        run_if = None
        if data.get("runIf") is not None:
            raw_run_if = data["runIf"]
            run_if = (
                _scalar_key(raw_run_if)
                if isinstance(raw_run_if, bool)
                else self.string(raw_run_if, child_path(path, "runIf"))
            )
            if run_if is not None:
                self.collect_expressions(run_if, child_path(path, "runIf"))

        branches: dict[str, tuple[Task, ...]] = {}
        branch_keys: set[str] = {"errors", "finally"}
        if spec is not None and spec.kind == "flowable":
            branch_keys.update(spec.branches)
            required = set(_REQUIRED_BRANCHES.get(spec.type, ())) | set(
                spec.extra.get("required_branches", ())
            )
            for name in spec.branches:
                if name in ("errors", "finally"):
                    continue
                bpath = child_path(path, name)
                value = data.get(name)
                if name == "cases":
                    cases = self.mapping(value, bpath, "a map of case value to a list of tasks")
                    for case, tasks_value in (cases or {}).items():
                        branches[f"case:{_scalar_key(case)}"] = self.task_list(
                            tasks_value, child_path(bpath, case)
                        )
                    continue
                if name in required and not value:
                    self.add(
                        bpath if name in data else path,
                        f"'{name}' needs at least one task — add '{name}:' with a list of tasks",
                    )
                if name == "tasks" and spec.type in _DAG_TYPES + tuple(spec.extra.get("dag_types", ())):
                    branches[name] = self.dag_tasks(value, bpath)
                elif value is not None:
                    branches[name] = self.task_list(value, bpath)
        for name in ("errors", "finally"):
            if data.get(name) is not None:
                branches[name] = self.task_list(data[name], child_path(path, name))

        props = {k: v for k, v in data.items() if k not in _TASK_COMMON and k not in branch_keys}
        if spec is not None:
            props = self.validate_props(spec, props, path)
        self.collect_expressions(props, path)

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
            retry=retry,
            worker_group=worker_group,
            log_level=log_level,
            run_if=run_if,
            flowable=spec is not None and spec.kind == "flowable",
        )

    def worker_group(self, value: Any, path: str) -> str | None:
        if value is None:
            return None
        if isinstance(value, str):
            return value
        data = self.mapping(value, path, "a worker group {key: ...}")
        if data is None:
            return None
        self.unknown_keys(data, path, ("key", "fallback"), "workerGroup property")
        if data.get("fallback") is not None:
            self.choice(
                data["fallback"],
                child_path(path, "fallback"),
                ("FAIL", "WAIT", "CANCEL"),
                "workerGroup fallback",
            )
        return self.string(data.get("key"), child_path(path, "key"))

    def dag_tasks(self, value: Any, path: str) -> tuple[Task, ...]:
        items = self.sequence(value, path, "a list of {task, dependsOn}")
        if not items:
            return ()
        parsed: list[tuple[Task, list[str], str]] = []
        for i, item in enumerate(items):
            sub = index_path(path, i)
            data = self.mapping(item, sub, "a DAG entry {task: ..., dependsOn: [...]}")
            if data is None:
                continue
            self.unknown_keys(data, sub, ("task", "dependsOn"), "DAG entry property")
            if data.get("task") is None:
                self.add(
                    sub,
                    "a DAG entry needs 'task:' — write '- task: {id: ..., type: ...}' "
                    "with an optional 'dependsOn: [ids]'",
                )
                continue
            task = self.task(data["task"], child_path(sub, "task"))
            deps: list[str] = []
            dep_list = self.sequence(
                data.get("dependsOn"), child_path(sub, "dependsOn"), "a list of task ids"
            )
            for j, dep in enumerate(dep_list or []):
                dep_id = self.string(dep, index_path(child_path(sub, "dependsOn"), j))
                if dep_id is not None:
                    deps.append(dep_id)
            if task is not None:
                parsed.append((task, deps, sub))
        ids = {t.id for t, _, _ in parsed}
        graph: dict[str, list[str]] = {}
        for task, deps, sub in parsed:
            good: list[str] = []
            for j, dep in enumerate(deps):
                dpath = index_path(child_path(sub, "dependsOn"), j)
                if dep == task.id:
                    self.add(dpath, f"task '{task.id}' depends on itself — remove '{dep}' from its dependsOn")
                elif dep not in ids:
                    self.add(
                        dpath,
                        f"dependsOn refers to unknown task '{dep}' — use the id of another task of "
                        f"this Dag ({_closest(dep, sorted(ids - {task.id}), 'task ids')})",
                    )
                else:
                    good.append(dep)
            graph[task.id] = good
        cycle = _find_cycle(graph)
        if cycle:
            first = next(sub for t, _, sub in parsed if t.id == cycle[0])
            self.add(
                child_path(first, "dependsOn"),
                "dependsOn has a cycle: " + " -> ".join(cycle) + " — remove one of these dependencies",
            )
        return tuple(msgspec.structs.replace(t, depends_on=tuple(deps)) for t, deps, _ in parsed)

    # -- plugin properties ------------------------------------------------------------------
    def validate_props(self, spec: PluginSpec, props: dict[Any, Any], path: str) -> dict[Any, Any]:
        allow_unknown = bool(spec.extra.get("allow_unknown_props"))
        return self.struct(
            props,
            spec.props,
            path,
            self.issues,
            allow_unknown=allow_unknown,
            what=f"property of {spec.type.rsplit('.', 1)[-1]}",
        )

    def struct(
        self,
        value: dict[Any, Any],
        cls: type[msgspec.Struct],
        path: str,
        issues: list[Issue],
        *,
        allow_unknown: bool = False,
        what: str = "property",
    ) -> dict[Any, Any]:
        try:
            fields = msgspec.structs.fields(cls)
        except Exception:  # unresolvable annotations: don't block the flow on a plugin bug
            return value
        by_name = {f.encode_name: f for f in fields}
        result: dict[Any, Any] = {}
        for k, v in value.items():
            sub = child_path(path, k)
            field = by_name.get(str(k))
            if field is None:
                if not allow_unknown:
                    self.issue_to(
                        issues, sub, f"unknown {what} '{k}' — {_closest(str(k), list(by_name))}", key=True
                    )
                result[k] = v
                continue
            if v is None:
                continue  # null = not set, the plugin default applies
            result[k] = self.convert(v, field.type, sub, issues)
        for f in fields:
            if f.required and value.get(f.encode_name) is None:
                self.issue_to(
                    issues, path, f"missing required property '{f.encode_name}' — add '{f.encode_name}: ...'"
                )
        return result

    def issue_to(self, issues: list[Issue], path: str, message: str, *, key: bool = False) -> None:
        where = self.pos.key_or_at(path) if key else self.pos.at(path)
        line, column = where if where is not None else (None, None)
        issues.append(Issue(path or "(flow)", message, line, column, self.file))

    def mismatch(self, issues: list[Issue], path: str, tp: Any, value: Any) -> None:
        noun, fix = _describe(tp)
        self.issue_to(issues, path, f"expected {noun}, got {_show(value)} — {fix}")

    def convert(self, value: Any, tp: Any, path: str, issues: list[Issue]) -> Any:
        """Check ``value`` against annotation ``tp`` (expressions accepted anywhere).

        Returns the value normalized (``"3"`` -> 3 for an int, 42 -> ``"42"`` for a str).
        """
        if tp is Any or tp is object or is_expression(value):
            return value
        if _is_union(tp):
            args = typing.get_args(tp)
            if value is None and type(None) in args:
                return None
            attempts: list[tuple[Any, list[Issue]]] = []
            for arg in args:
                if arg is type(None):
                    continue
                trial: list[Issue] = []
                out = self.convert(value, arg, path, trial)
                if not trial:
                    return out
                attempts.append((arg, trial))
            # report the member of the same shape (map/list) precisely, else a plain mismatch
            for arg, trial in attempts:
                if _same_shape(value, arg):
                    issues.extend(trial)
                    return value
            self.mismatch(issues, path, tp, value)
            return value
        origin = typing.get_origin(tp)
        if origin is Literal:
            if value in typing.get_args(tp):
                return value
            self.mismatch(issues, path, tp, value)
            return value
        if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
            if not isinstance(value, dict):
                self.mismatch(issues, path, tp, value)
                return value
            return self.struct(value, tp, path, issues)
        if origin in (list, tuple, set, frozenset) or tp in (list, tuple, set, frozenset):
            if not isinstance(value, list):
                self.mismatch(issues, path, tp, value)
                return value
            args = typing.get_args(tp)
            if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
                if len(args) != len(value):
                    self.issue_to(
                        issues,
                        path,
                        f"expected a list of {len(args)} items, got {len(value)} — "
                        f"write exactly {len(args)} items",
                    )
                    return value
                return [
                    self.convert(v, a, index_path(path, i), issues)
                    for i, (v, a) in enumerate(zip(value, args, strict=True))
                ]
            item = args[0] if args else Any
            return [self.convert(v, item, index_path(path, i), issues) for i, v in enumerate(value)]
        if origin is dict or tp is dict or origin in (Mapping, typing.Mapping):
            if not isinstance(value, dict):
                self.mismatch(issues, path, tp, value)
                return value
            args = typing.get_args(tp)
            vt = args[1] if len(args) == 2 else Any
            return {k: self.convert(v, vt, child_path(path, k), issues) for k, v in value.items()}
        if tp is str:
            if isinstance(value, str):
                return value
            if isinstance(value, bool):
                return "true" if value else "false"
            if isinstance(value, int | float):
                return str(value)
            self.mismatch(issues, path, tp, value)
            return value
        if tp in (int, float, bool):
            try:
                return msgspec.convert(value, tp, strict=False)
            except msgspec.ValidationError:
                self.mismatch(issues, path, tp, value)
                return value
        if tp is type(None):
            if value is not None:
                self.mismatch(issues, path, tp, value)
            return value
        try:
            msgspec.convert(value, tp, strict=False)
        except msgspec.ValidationError:
            self.mismatch(issues, path, tp, value)
        except Exception:  # a type msgspec can't handle: don't block on it
            return value
        return value


def _same_shape(value: Any, tp: Any) -> bool:
    origin = typing.get_origin(tp) or tp
    if isinstance(value, dict):
        return origin is dict or (isinstance(tp, type) and issubclass(tp, msgspec.Struct))
    if isinstance(value, list):
        return origin in (list, tuple, set, frozenset)
    return False


def _strip(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k not in ("id", "type")}


def _deep_merge(base: Mapping[Any, Any], override: Mapping[Any, Any]) -> dict[Any, Any]:
    """``base`` updated with ``override``; nested maps are merged, everything else replaced."""
    result = dict(base)
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(result.get(k), dict):
            result[k] = _deep_merge(result[k], v)
        else:
            result[k] = v
    return result


def _find_cycle(graph: Mapping[str, list[str]]) -> list[str] | None:
    """One cycle in ``graph`` (node -> dependencies) as a list ``[a, b, ..., a]``, or None."""
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(graph, white)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        color[node] = grey
        stack.append(node)
        for dep in graph.get(node, []):
            if color.get(dep, black) == grey:
                return [*stack[stack.index(dep) :], dep]
            if color.get(dep) == white:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        color[node] = black
        return None

    for node in graph:
        if color[node] == white:
            found = visit(node)
            if found:
                return found
    return None


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
    ctx = _Ctx(positions, file, registry if registry is not None else default_registry())
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
    flow = ctx.flow(data, text)
    expression_issues: list[Issue] = []
    ctx.check_expressions(expression_issues)
    if strict_expressions:
        ctx.issues.extend(expression_issues)
    elif warnings is not None:
        warnings.extend(sorted(expression_issues, key=_sort_key))
    if ctx.issues or flow is None:
        issues = sorted(ctx.issues, key=_sort_key) or [Issue("", "invalid flow", None, None, file)]
        raise FlowValidationError(issues)
    return flow


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
            flows.append(
                load_flow_file(f, registry=registry, strict_expressions=strict_expressions, warnings=warnings)
            )
        except FlowValidationError as exc:
            issues.extend(exc.issues)
    if issues:
        raise FlowValidationError(issues)
    return flows
