"""Flow unit tests (Kestra's ``io.kestra.core.tests.flow.UnitTest``) run on the in-memory engine.

Each test case is a new, transient execution on its own ``MemoryEngine`` (the real executor and
worker over ``MemoryStore``, no server, no data directory): cases never see each other's executions,
KV or files, and nothing is left behind. The flows of the directory are deployed into it (a flow's
subflows run for real). A task named in ``fixtures.tasks`` never runs: the worker answers its attempt
with the fixture's state and outputs instead of calling the plugin. Assertions are rendered against the
ended execution (``outputs``, ``inputs``, ``execution``, ``tasks``, ``vars``, ``labels``...).
"""

from __future__ import annotations

import asyncio
import json
import math
import operator as operator_module
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from yaml import safe_dump, safe_load

from engine.core.context import variables
from engine.core.errors import EngineError, ExpressionError, FlowValidationError, Issue
from engine.core.execution import Execution
from engine.core.model import Flow
from engine.core.states import TERMINAL, State
from engine.core.tree import index_tasks
from engine.core.work import WorkItem
from engine.expressions import env_vars
from engine.ids import new_execution_id
from engine.inputs import resolve_inputs
from engine.loader.loader import load_flow
from engine.runtime import Starter
from engine.testing.run import MemoryEngine
from engine.testing.suite import Assertion, TaskFixture, TestCase, TestSuite, is_suite, load_suite
from engine.yamlpos import load_yaml
from eventstore.storage import namespace_file_uri
from plugins.api import TaskResult
from workers.context import TaskRunContext
from workers.worker import Worker

__all__ = ["CaseResult", "SuiteResult", "discover", "junit_xml", "report", "run_suites"]

_SINGLE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\}\}).)*)\}\}\s*$", re.S)


@dataclass(frozen=True)
class Check:
    operator: str
    expected: Any
    actual: Any
    ok: bool
    message: str | None
    task_id: str | None = None
    description: str | None = None
    line: int | None = None


@dataclass
class CaseResult:
    id: str
    status: str  # passed, failed, error, skipped
    seconds: float = 0.0
    state: str | None = None
    checks: list[Check] = field(default_factory=list)
    error: str | None = None
    description: str | None = None
    errors: list[str] = field(default_factory=list)  # the execution's ERROR log lines, when it failed


@dataclass
class SuiteResult:
    suite: TestSuite
    cases: list[CaseResult]

    @property
    def ok(self) -> bool:
        return all(c.status in ("passed", "skipped") for c in self.cases)


@dataclass
class Discovered:
    flows: list[tuple[str, Flow]]  # (source, flow)
    suites: list[TestSuite]
    issues: list[Issue]


def discover(directory: Path) -> Discovered:
    """Every flow and test suite under ``directory`` (``*.yml``/``*.yaml``, recursive); a file is a suite
    when it has ``flowId`` and ``testCases``."""
    found = Discovered([], [], [])
    paths = [directory] if directory.is_file() else sorted(directory.rglob("*"))
    for path in paths:
        if path.suffix not in (".yml", ".yaml") or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
            data, _ = load_yaml(text, file=str(path))
            if is_suite(data):
                found.suites.append(load_suite(text, file=str(path)))
            else:
                found.flows.append((text, load_flow(text, file=str(path))))
        except FlowValidationError as exc:
            found.issues.extend(exc.issues)
        except (OSError, UnicodeDecodeError) as exc:
            found.issues.append(Issue("", f"can't read the file: {exc}", None, None, str(path)))
    by_key = {(f.namespace, f.id) for _, f in found.flows}
    for suite in found.suites:
        if (suite.namespace, suite.flow_id) not in by_key:
            found.issues.append(
                Issue(
                    "flowId",
                    f"no flow {suite.namespace}.{suite.flow_id} in {directory} — "
                    "put the flow's file beside its tests",
                    None,
                    None,
                    suite.file,
                )
            )
    for suite in found.suites:
        flow = next(
            (f for _, f in found.flows if (f.namespace, f.id) == (suite.namespace, suite.flow_id)), None
        )
        if flow is not None:
            found.issues.extend(_check_fixtures(suite, flow))
    return found


def _check_fixtures(suite: TestSuite, flow: Flow) -> list[Issue]:
    tasks = index_tasks(flow)
    issues: list[Issue] = []
    for i, case in enumerate(suite.cases):
        for j, fixture in enumerate(case.tasks):
            path = f"testCases[{i}].fixtures.tasks[{j}].id"
            task = tasks.get(fixture.id)
            if task is None:
                close = sorted(tasks)[:10]
                issues.append(
                    Issue(
                        path,
                        f"no task '{fixture.id}' in flow {flow.namespace}.{flow.id} "
                        f"(its tasks: {', '.join(close)})",
                        None,
                        None,
                        suite.file,
                    )
                )
            elif task.flowable and fixture.value is not None:
                issues.append(
                    Issue(
                        path.removesuffix(".id") + ".value",
                        f"task '{fixture.id}' is a flowable task ({task.type}): mocking one of its "
                        "loop values is not supported — mock it whole (no value) or the tasks inside it",
                        None,
                        None,
                        suite.file,
                    )
                )
    return issues


# Where a flow (or a flowable task) holds task lists; a Dag's items hold their task under `task`.
_TASK_LISTS = ("tasks", "errors", "finally", "afterExecution", "then", "else", "defaults")


def without_flowables(source: str, flowable_ids: set[str]) -> str:
    """The flow with each mocked flowable task replaced by a runnable stand-in of the same id (the
    worker answers it from its fixture): its branches, subflow or pause never start."""
    data = safe_load(source)

    def tasks(items: Any) -> Any:
        if not isinstance(items, list):
            return items
        return [task(item) for item in items]

    def task(item: Any) -> Any:
        if not isinstance(item, dict):
            return item
        if isinstance(item.get("task"), dict) and "type" not in item:  # a Dag item
            return {**item, "task": task(item["task"])}
        if item.get("id") in flowable_ids:
            return {"id": item["id"], "type": STAND_IN, "format": "mocked"}
        out = {k: tasks(v) if k in _TASK_LISTS else v for k, v in item.items()}
        if isinstance(out.get("cases"), dict):
            out["cases"] = {k: tasks(v) for k, v in out["cases"].items()}
        return out

    flow = {k: tasks(v) if k in _TASK_LISTS else v for k, v in data.items()}
    return str(safe_dump(flow, sort_keys=False, allow_unicode=True))


STAND_IN = "io.kestra.plugin.core.debug.Return"


class MockingWorker(Worker):
    """The real worker, except that a taskrun named by a fixture is answered by the fixture: its plugin
    is never resolved nor called."""

    def __init__(self, fixtures: Sequence[TaskFixture], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fixtures = tuple(fixtures)
        self.mocked: list[tuple[str, str | None]] = []  # (task id, value) answered by a fixture

    def _fixture(self, item: WorkItem) -> TaskFixture | None:
        value = (item.variables.get("taskrun") or {}).get("value")
        for fixture in self.fixtures:
            if fixture.id == item.task.id and (fixture.value is None or fixture.value == value):
                return fixture
        return None

    async def _run(self, ctx: TaskRunContext, item: WorkItem) -> tuple[TaskResult, str | None, bool]:
        fixture = self._fixture(item)
        if fixture is None:
            return await super()._run(ctx, item)
        self.mocked.append((item.task.id, (item.variables.get("taskrun") or {}).get("value")))
        try:
            outputs = await ctx.render(fixture.outputs)
        except ExpressionError as exc:
            ctx.log("ERROR", f"mocked outputs: {exc}")
            return TaskResult(state="FAILED"), str(exc), False
        ctx.log("INFO", f"mocked by a test fixture: {fixture.state}")
        state: Any = fixture.state
        error = None if state in ("SUCCESS", "WARNING") else f"mocked {state}"
        return TaskResult(state=state, outputs=outputs), error, False


async def run_case(
    suite: TestSuite, case: TestCase, flows: Sequence[tuple[str, Flow]], timeout: float = 60.0
) -> CaseResult:
    """Run one test case on a fresh in-memory engine and check its assertions."""
    if case.disabled or suite.disabled:
        return CaseResult(case.id, "skipped", description=case.description)
    started = time.monotonic()
    engine = MemoryEngine(name=f"test-{case.id}")
    engine.worker = MockingWorker(
        case.tasks,
        engine.store,
        engine.registry,
        engine.expressions,
        kv=engine.store.kv,
        storage=engine.store.files,
        worker_id=f"w-test-{case.id}",
    )
    try:
        async with engine:
            target: Flow | None = None
            for source, flow in flows:
                if (flow.namespace, flow.id) == (suite.namespace, suite.flow_id):
                    index = index_tasks(flow)
                    flowables = {f.id for f in case.tasks if (t := index.get(f.id)) and t.flowable}
                    if flowables:
                        source = without_flowables(source, flowables)
                deployed = await engine.deploy(source)
                if (deployed.namespace, deployed.id) == (suite.namespace, suite.flow_id):
                    target = deployed
            if target is None:
                raise EngineError(f"flow {suite.namespace}.{suite.flow_id} is not in the directory")
            for name, content in case.files.items():
                await engine.store.files.put(namespace_file_uri(suite.namespace, name), content.encode())
            execution = await _execute(engine, target, case, timeout)
            checks = [
                check
                for assertion in case.assertions
                for check in await _check(engine, target, execution, assertion)
            ]
            errors = [
                f"{line.task_id or '-'}: {line.message}"
                for line in await engine.store.read_logs(execution.id)
                if line.level == "ERROR"
            ]
    except (EngineError, TimeoutError) as exc:
        message = str(exc) or f"the execution did not end within {timeout:g}s"
        return CaseResult(
            case.id, "error", time.monotonic() - started, error=message, description=case.description
        )
    status = "passed" if all(c.ok for c in checks) else "failed"
    return CaseResult(
        case.id,
        status,
        time.monotonic() - started,
        execution.state,
        checks,
        description=case.description,
        errors=errors[:5] if status == "failed" else [],
    )


async def _execute(engine: MemoryEngine, flow: Flow, case: TestCase, timeout: float) -> Execution:
    from engine.core import events as ev
    from eventstore.reader import read_execution

    done = asyncio.Event()

    async def on_events(events: list[ev.Event]) -> None:
        if any(isinstance(e, ev.ExecutionStateChanged) and State(e.state) in TERMINAL for e in events):
            done.set()

    execution_id = new_execution_id()
    sub = await engine.store.watch_events(execution_id, on_events)
    try:
        # as `engine run` and the API: defaults applied, values typed, a bad one refused (InputError)
        inputs = resolve_inputs(flow, case.inputs, engine.expressions.render)
        starter = Starter(engine.store, engine.store.files, engine.handoff, engine.store.last_seq)
        await starter.create_execution(
            flow, inputs, execution_id=execution_id, trigger=case.trigger, fresh=True
        )
        await asyncio.wait_for(done.wait(), timeout)
    finally:
        await sub.unsubscribe()
    state = (await read_execution(engine.store, execution_id)).state
    if state is None:
        raise EngineError(f"execution {execution_id} cannot be read")
    return state


async def _check(engine: MemoryEngine, flow: Flow, ex: Execution, assertion: Assertion) -> list[Check]:
    context = variables(ex, flow, index_tasks(flow), envs=env_vars())
    query = assertion.value if isinstance(assertion.value, str) else json.dumps(assertion.value)
    actual: Any = None
    render_error: str | None = None
    try:
        actual = await _render(engine, assertion.value, context)
    except ExpressionError as exc:
        render_error = str(exc)
    results = []
    for operator, expected in assertion.checks:
        if render_error is not None and operator not in ("isNull", "isNotNull"):
            ok, message = False, f"cannot render '{query}': {render_error}"
        else:
            ok, message = _compare(operator, expected, actual, query)
        if not ok and assertion.error_message:
            message = assertion.error_message
        results.append(
            Check(
                operator,
                expected,
                actual,
                ok,
                None if ok else message,
                assertion.task_id,
                assertion.description,
                assertion.line,
            )
        )
    return results


async def _render(engine: MemoryEngine, value: Any, context: dict[str, Any]) -> Any:
    if isinstance(value, str):
        single = _SINGLE_EXPRESSION.match(value)
        if single is not None:  # the typed value: 200 stays a number, a map a map
            return await engine.expressions.evaluate_async(single.group("expr").strip(), context)
        return await engine.expressions.render_value_async(value, context)
    return value


def _text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return str(value)


def _equal(actual: Any, expected: Any) -> bool:
    """Equal as values, or as the text a template would render (an output "200" equals 200)."""
    if actual == expected and type(actual) is not bool and type(expected) is not bool:
        return True
    return _text(actual) == _text(expected)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _compare(operator: str, expected: Any, actual: Any, query: str) -> tuple[bool, str]:
    shown, want = _text(actual), _text(expected)
    if operator == "equalTo":
        return _equal(actual, expected), f"expected '{query}' to equal '{want}' but was '{shown}'"
    if operator == "notEqualTo":
        return not _equal(actual, expected), f"expected '{query}' to not equal '{want}'"
    if operator == "isNull":
        return (
            actual is None
        ) == expected, f"expected '{query}' to be {'' if expected else 'not '}null but was '{shown}'"
    if operator == "isNotNull":
        return (
            actual is not None
        ) == expected, f"expected '{query}' to be {'not ' if expected else ''}null but was '{shown}'"
    if operator in ("in", "notIn"):
        inside = any(_equal(actual, e) for e in expected)
        if operator == "in":
            return inside, f"expected '{query}' to be one of {want} but was '{shown}'"
        return not inside, f"expected '{query}' to be none of {want} but was '{shown}'"
    if operator == "contains":
        if isinstance(actual, list):
            return any(
                _equal(a, expected) for a in actual
            ), f"expected '{query}' to contain '{want}' but was '{shown}'"
        return want in shown, f"expected '{query}' to contain '{want}' but was '{shown}'"
    if operator == "startsWith":
        return shown.startswith(want), f"expected '{query}' to start with '{want}' but was '{shown}'"
    if operator == "endsWith":
        return shown.endswith(want), f"expected '{query}' to end with '{want}' but was '{shown}'"
    number, bound = _number(actual), _number(expected)
    words: dict[str, tuple[str, Callable[[float, float], bool]]] = {
        "greaterThan": ("be greater than", operator_module.gt),
        "greaterThanOrEqualTo": ("be greater than or equal to", operator_module.ge),
        "lessThan": ("be less than", operator_module.lt),
        "lessThanOrEqualTo": ("be less than or equal to", operator_module.le),
    }
    phrase, test = words[operator]
    if number is None or bound is None:
        return False, f"expected '{query}' to {phrase} '{want}' but '{shown}' is not a number"
    return test(number, bound), f"expected '{query}' to {phrase} '{want}' but was '{shown}'"


async def run_suites(
    suites: Sequence[TestSuite], flows: Sequence[tuple[str, Flow]], timeout: float = 60.0
) -> list[SuiteResult]:
    results = []
    for suite in suites:
        cases = [await run_case(suite, case, flows, timeout) for case in suite.cases]
        results.append(SuiteResult(suite, cases))
    return results


def report(results: Sequence[SuiteResult]) -> str:
    """A readable report: each case PASS/FAIL/ERROR/SKIP, each failed assertion with its line and why."""
    lines: list[str] = []
    counts = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
    for result in results:
        suite = result.suite
        lines.append(f"{suite.id} ({suite.namespace}.{suite.flow_id}) {suite.file or ''}".rstrip())
        for case in result.cases:
            counts[case.status] += 1
            mark = {"passed": "PASS", "failed": "FAIL", "error": "ERROR", "skipped": "SKIP"}[case.status]
            state = f" execution {case.state}" if case.state else ""
            lines.append(f"  {mark:5} {case.id} ({case.seconds:.2f}s){state}")
            if case.error:
                lines.append(f"        {case.error}")
            for check in case.checks:
                if check.ok:
                    continue
                where = f"line {check.line}: " if check.line else ""
                task = f"[{check.task_id}] " if check.task_id else ""
                about = f" ({check.description})" if check.description else ""
                lines.append(f"        {where}{task}{check.operator}: {check.message}{about}")
            for error in case.errors:
                lines.append(f"        log ERROR {error}")
    total = sum(counts.values())
    summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    lines.append(f"{total} test case{'s' if total != 1 else ''}: {summary or 'none'}")
    return "\n".join(lines) + "\n"


def junit_xml(results: Sequence[SuiteResult]) -> str:
    """JUnit XML (the schema CI servers read): a testsuite per suite, a testcase per case."""
    root = ET.Element("testsuites", name="engine test")
    for result in results:
        suite = result.suite
        cases = result.cases
        node = ET.SubElement(
            root,
            "testsuite",
            name=suite.id,
            tests=str(len(cases)),
            failures=str(sum(c.status == "failed" for c in cases)),
            errors=str(sum(c.status == "error" for c in cases)),
            skipped=str(sum(c.status == "skipped" for c in cases)),
            time=f"{sum(c.seconds for c in cases):.3f}",
        )
        if suite.file:
            node.set("file", suite.file)
        for case in cases:
            element = ET.SubElement(
                node,
                "testcase",
                classname=f"{suite.namespace}.{suite.flow_id}",
                name=case.id,
                time=f"{case.seconds:.3f}",
            )
            if case.status == "skipped":
                ET.SubElement(element, "skipped", message="disabled")
            elif case.status == "error":
                ET.SubElement(element, "error", message=case.error or "error").text = case.error
            elif case.status == "failed":
                failed = [c for c in case.checks if not c.ok]
                text = "\n".join(f"{c.operator}: {c.message}" for c in failed)
                ET.SubElement(
                    element, "failure", message=failed[0].message or "", type="assertion"
                ).text = text
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
