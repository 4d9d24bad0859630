"""Kestra's flow unit-test YAML, parsed and checked: a suite (``id``, ``namespace``, ``flowId``,
``testCases``) of ``io.kestra.core.tests.flow.UnitTest`` cases with ``fixtures`` and ``assertions``.

A bad suite raises ``FlowValidationError`` listing every problem with its path, line and column, like
a bad flow. Kestra's names are accepted as written, and its Java spelling of two operators
(``equalsTo``, ``notEqualsTo``) as aliases of the documented ``equalTo``, ``notEqualTo``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from engine.core.errors import FlowValidationError, Issue
from engine.core.states import State
from engine.yamlpos import Positions, child_path, index_path, load_yaml

__all__ = ["OPERATORS", "Assertion", "TaskFixture", "TestCase", "TestSuite", "is_suite", "load_suite"]

UNIT_TEST = "io.kestra.core.tests.flow.UnitTest"
# Kestra's Java model spells these two ``equalsTo``/``notEqualsTo``; its documentation ``equalTo``.
ALIASES = {"equalsTo": "equalTo", "notEqualsTo": "notEqualTo"}
OPERATORS = (
    "equalTo",
    "notEqualTo",
    "contains",
    "startsWith",
    "endsWith",
    "greaterThan",
    "greaterThanOrEqualTo",
    "lessThan",
    "lessThanOrEqualTo",
    "in",
    "notIn",
    "isNull",
    "isNotNull",
)
_ASSERTION_KEYS = ("value", "taskId", "errorMessage", "description", *OPERATORS, *ALIASES)
_SUITE_KEYS = ("id", "namespace", "flowId", "description", "testCases", "disabled")
_CASE_KEYS = ("id", "type", "description", "disabled", "fixtures", "assertions")
_FIXTURE_KEYS = ("inputs", "files", "tasks", "trigger")
_TASK_FIXTURE_KEYS = ("id", "value", "state", "outputs", "description")
_TRIGGER_KEYS = ("id", "type", "variables")
MOCK_STATES = ("SUCCESS", "WARNING", "FAILED", "KILLED")
MAX_CASES = 1000


@dataclass(frozen=True)
class Assertion:
    value: Any
    checks: tuple[tuple[str, Any], ...]  # (operator, expected) in the order written
    task_id: str | None = None
    error_message: str | None = None
    description: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class TaskFixture:
    id: str
    value: str | None = None
    state: str = "SUCCESS"
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TestCase:
    id: str
    description: str | None
    disabled: bool
    inputs: dict[str, Any]
    files: dict[str, str]
    tasks: tuple[TaskFixture, ...]
    trigger: dict[str, Any] | None
    assertions: tuple[Assertion, ...]


@dataclass(frozen=True)
class TestSuite:
    id: str
    namespace: str
    flow_id: str
    description: str | None
    disabled: bool
    cases: tuple[TestCase, ...]
    file: str | None = None


def is_suite(data: Any) -> bool:
    """A parsed YAML document that is a test suite (not a flow)."""
    return isinstance(data, dict) and "testCases" in data and "flowId" in data


class _Check:
    def __init__(self, positions: Positions, file: str | None) -> None:
        self.positions = positions
        self.file = file
        self.issues: list[Issue] = []

    def add(self, path: str, message: str) -> None:
        pos = self.positions.at(path)
        self.issues.append(Issue(path, message, pos[0] if pos else None, pos[1] if pos else None, self.file))

    def mapping(self, value: Any, path: str, what: str) -> dict[Any, Any] | None:
        if isinstance(value, dict):
            return value
        self.add(path, f"expected {what}, got {_show(value)} — write 'key: value' pairs indented below it")
        return None

    def keys(self, data: dict[Any, Any], path: str, allowed: tuple[str, ...], what: str) -> None:
        for key in data:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f"did you mean '{close[0]}'?" if close else f"known: {', '.join(allowed)}"
                pos = self.positions.key_or_at(child_path(path, key))
                self.issues.append(
                    Issue(
                        child_path(path, key),
                        f"unknown {what} '{key}' — {hint}",
                        pos[0] if pos else None,
                        pos[1] if pos else None,
                        self.file,
                    )
                )

    def string(self, data: dict[Any, Any], key: str, path: str, required: bool = False) -> str | None:
        value = data.get(key)
        if value is None:
            if required:
                self.add(path, f"missing '{key}' — add '{key}: ...'")
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.add(child_path(path, key), f"expected text, got {_show(value)} — write text")
            return None
        return str(value)

    def boolean(self, data: dict[Any, Any], key: str, path: str) -> bool:
        value = data.get(key, False)
        if not isinstance(value, bool):
            self.add(child_path(path, key), f"expected true or false, got {_show(value)}")
            return False
        return value


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def load_suite(text: str, *, file: str | None = None) -> TestSuite:
    """Parse and check one test suite; FlowValidationError lists every problem."""
    data, positions = load_yaml(text, file=file)
    ctx = _Check(positions, file)
    root = ctx.mapping(data, "", "a test suite (id, namespace, flowId, testCases)")
    if root is None:
        raise FlowValidationError(ctx.issues)
    ctx.keys(root, "", _SUITE_KEYS, "test suite property")
    suite_id = ctx.string(root, "id", "", required=True)
    namespace = ctx.string(root, "namespace", "", required=True)
    flow_id = ctx.string(root, "flowId", "", required=True)
    cases_raw = root.get("testCases")
    cases: list[TestCase] = []
    if not isinstance(cases_raw, list) or not cases_raw:
        ctx.add("testCases", "expected a non-empty list of test cases — add '- id: ...' items")
    elif len(cases_raw) > MAX_CASES:
        ctx.add("testCases", f"{len(cases_raw)} test cases: at most {MAX_CASES} in one suite — split it")
    else:
        seen: set[str] = set()
        for i, raw in enumerate(cases_raw):
            case = _case(ctx, raw, index_path("testCases", i))
            if case is None:
                continue
            if case.id in seen:
                ctx.add(child_path(index_path("testCases", i), "id"), f"duplicate test case id '{case.id}'")
            seen.add(case.id)
            cases.append(case)
    if ctx.issues or suite_id is None or namespace is None or flow_id is None:
        raise FlowValidationError(ctx.issues)
    return TestSuite(
        suite_id,
        namespace,
        flow_id,
        ctx.string(root, "description", ""),
        ctx.boolean(root, "disabled", ""),
        tuple(cases),
        file,
    )


def _case(ctx: _Check, raw: Any, path: str) -> TestCase | None:
    data = ctx.mapping(raw, path, "a test case (id, type, fixtures, assertions)")
    if data is None:
        return None
    ctx.keys(data, path, _CASE_KEYS, "test case property")
    case_id = ctx.string(data, "id", path, required=True)
    kind = ctx.string(data, "type", path, required=True)
    if kind is not None and kind != UNIT_TEST:
        ctx.add(child_path(path, "type"), f"unknown test case type '{kind}' — use {UNIT_TEST}")
    inputs: dict[str, Any] = {}
    files: dict[str, str] = {}
    tasks: list[TaskFixture] = []
    trigger: dict[str, Any] | None = None
    fixtures = data.get("fixtures")
    fpath = child_path(path, "fixtures")
    if fixtures is not None and (fx := ctx.mapping(fixtures, fpath, "fixtures (inputs, files, tasks)")):
        ctx.keys(fx, fpath, _FIXTURE_KEYS, "fixture")
        if fx.get("inputs") is not None:
            inputs = dict(ctx.mapping(fx["inputs"], child_path(fpath, "inputs"), "a map of inputs") or {})
        if fx.get("files") is not None:
            fpath_files = child_path(fpath, "files")
            for name, content in (
                ctx.mapping(fx["files"], fpath_files, "a map of file name to content") or {}
            ).items():
                if not isinstance(content, str):
                    ctx.add(child_path(fpath_files, name), f"expected the file's text, got {_show(content)}")
                elif "../" in str(name) or str(name).startswith("/"):
                    ctx.add(child_path(fpath_files, name), f"file name {name!r} must be a relative path")
                else:
                    files[str(name)] = content
        if fx.get("tasks") is not None:
            tpath = child_path(fpath, "tasks")
            if not isinstance(fx["tasks"], list):
                ctx.add(tpath, "expected a list of task fixtures — '- id: TASK' with outputs or state")
            else:
                for j, item in enumerate(fx["tasks"]):
                    fixture = _task_fixture(ctx, item, index_path(tpath, j))
                    if fixture is not None:
                        tasks.append(fixture)
        if fx.get("trigger") is not None:
            trpath = child_path(fpath, "trigger")
            trig = ctx.mapping(fx["trigger"], trpath, "a trigger fixture (id, type, variables)")
            if trig is not None:
                ctx.keys(trig, trpath, _TRIGGER_KEYS, "trigger fixture property")
                variables = trig.get("variables") or {}
                if not isinstance(variables, dict):
                    ctx.add(child_path(trpath, "variables"), "expected a map of trigger variables")
                    variables = {}
                trigger = {"id": trig.get("id"), "type": trig.get("type"), "variables": variables}
    assertions: list[Assertion] = []
    apath = child_path(path, "assertions")
    raw_assertions = data.get("assertions")
    if not isinstance(raw_assertions, list) or not raw_assertions:
        ctx.add(apath if "assertions" in data else path, "expected a non-empty list of 'assertions'")
    else:
        for j, item in enumerate(raw_assertions):
            assertion = _assertion(ctx, item, index_path(apath, j))
            if assertion is not None:
                assertions.append(assertion)
    if case_id is None:
        return None
    return TestCase(
        case_id,
        ctx.string(data, "description", path),
        ctx.boolean(data, "disabled", path),
        inputs,
        files,
        tuple(tasks),
        trigger,
        tuple(assertions),
    )


def _task_fixture(ctx: _Check, raw: Any, path: str) -> TaskFixture | None:
    data = ctx.mapping(raw, path, "a task fixture (id, outputs, state)")
    if data is None:
        return None
    ctx.keys(data, path, _TASK_FIXTURE_KEYS, "task fixture property")
    task_id = ctx.string(data, "id", path, required=True)
    value = ctx.string(data, "value", path)
    state = ctx.string(data, "state", path) or "SUCCESS"
    if state not in MOCK_STATES:
        ctx.add(
            child_path(path, "state"),
            f"a mocked task ends in one of {', '.join(MOCK_STATES)}, not {state!r}"
            + ("" if state in State.__members__ else " (not a state)"),
        )
    outputs = data.get("outputs") or {}
    if not isinstance(outputs, dict):
        ctx.add(child_path(path, "outputs"), f"expected a map of outputs, got {_show(outputs)}")
        outputs = {}
    if task_id is None:
        return None
    return TaskFixture(task_id, value, state, dict(outputs))


def _assertion(ctx: _Check, raw: Any, path: str) -> Assertion | None:
    data = ctx.mapping(raw, path, "an assertion (value and an operator such as equalTo)")
    if data is None:
        return None
    ctx.keys(data, path, _ASSERTION_KEYS, "assertion property")
    if "value" not in data:
        ctx.add(path, "missing 'value' — the expression to check, such as \"{{ outputs.task.value }}\"")
    checks: list[tuple[str, Any]] = []
    for key, expected in data.items():
        op = ALIASES.get(str(key), str(key))
        if op not in OPERATORS:
            continue
        kpath = child_path(path, key)
        if op in ("isNull", "isNotNull") and not isinstance(expected, bool):
            ctx.add(kpath, f"{key} takes true or false, got {_show(expected)}")
            continue
        if op in ("in", "notIn") and not isinstance(expected, list):
            ctx.add(kpath, f"{key} takes a list of values, got {_show(expected)}")
            continue
        if op.startswith(("greater", "less")) and (isinstance(expected, bool) or not _number(expected)):
            ctx.add(kpath, f"{key} takes a number, got {_show(expected)}")
            continue
        if op in ("contains", "startsWith", "endsWith") and not isinstance(expected, str):
            expected = str(expected)
        checks.append((op, expected))
    if not checks and not any(ALIASES.get(str(k), str(k)) in OPERATORS for k in data):
        ctx.add(path, f"no operator — add one of {', '.join(OPERATORS)}")
    pos = ctx.positions.at(path)
    return Assertion(
        data.get("value"),
        tuple(checks),
        ctx.string(data, "taskId", path),
        ctx.string(data, "errorMessage", path),
        ctx.string(data, "description", path),
        pos[0] if pos else None,
    )


def _number(value: Any) -> bool:
    if isinstance(value, int | float):
        return True
    try:
        float(str(value))
    except ValueError:
        return False
    return True
