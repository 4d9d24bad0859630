"""Validation refuses what it can know before a run (issue #12), and errorLogs() works.

Each case loaded fine before: an unknown function, a plugin enum value, a count that is not a number,
an input the flow does not declare, a Switch without ``value``.
"""

from __future__ import annotations

import textwrap
from types import SimpleNamespace
from typing import Any

import pytest

from engine.core.errors import ExpressionError, FlowValidationError, Issue
from engine.core.model import Flow
from engine.core.ports import LogLine
from engine.expressions import RUNTIME_FUNCTIONS, Expressions, error_logs_function
from engine.loader.loader import load_flow
from engine.runtime import make_expressions


def _flow(tasks: str, head: str = "") -> str:
    return (
        "id: f\nnamespace: company.team\n"
        + textwrap.dedent(head)
        + "tasks:\n"
        + textwrap.indent(textwrap.dedent(tasks), "  ")
    )


def _issues(source: str) -> list[Issue]:
    with pytest.raises(FlowValidationError) as info:
        load_flow(source, strict_expressions=True)
    return info.value.issues


def _one(source: str) -> Issue:
    issues = _issues(source)
    assert len(issues) == 1, [str(i) for i in issues]
    return issues[0]


def _loads(source: str) -> Flow:
    warnings: list[Issue] = []
    flow = load_flow(source, strict_expressions=True, warnings=warnings)
    assert not warnings
    return flow


LOG = "- id: t\n  type: io.kestra.plugin.core.log.Log\n"


# ------------------------------------------------------------------------------ unknown functions


def test_unknown_function_is_refused_with_path_position_and_fix() -> None:
    issue = _one(_flow(LOG + '  message: "{{ nosuchfn() }}"\n'))
    assert issue.path == "tasks[0].message"
    assert (issue.line, issue.column) == (6, 14)
    assert "unknown function 'nosuchfn()'" in issue.message
    assert '"{{ nosuchfn() }}"' in issue.message
    assert "secret" in issue.message  # the fix lists the functions there are


def test_misspelt_function_gets_the_closest_name() -> None:
    issue = _one(_flow(LOG + "  message: \"{{ fromJsn('[1]') }}\"\n"))
    assert "did you mean 'fromJson'?" in issue.message


def test_unknown_function_is_a_warning_when_not_strict() -> None:
    warnings: list[Issue] = []
    load_flow(_flow(LOG + '  message: "{{ nosuchfn() }}"\n'), warnings=warnings)
    assert [w.path for w in warnings] == ["tasks[0].message"]


@pytest.mark.parametrize(
    "template",
    [
        "{{ secret('A') }}",
        "{{ kv('k') }}",
        "{{ read(inputs.file) }}",
        "{{ fileSize(inputs.file) }} {{ isFileEmpty(inputs.file) }} {{ fileExists(inputs.file) }}",
        "{{ fileURI('a.txt') }}",
        "{{ errorLogs() }}",
        "{{ render(inputs.file) }} {{ renderOnce(inputs.file) }}",
        "{{ now() }} {{ uuid() }} {{ id() }} {{ randomInt(1, 3) }} {{ range(1, 3) }}",
        "{% macro greet(n) %}hi {{ n }}{% endmacro %}{{ greet(inputs.file) }}",
    ],
)
def test_functions_the_engine_provides_load(template: str) -> None:
    head = "inputs:\n  - id: file\n    type: STRING\n"
    _loads(_flow(LOG + f"  message: {template!r}\n", head))


def test_runtime_functions_are_the_ones_make_expressions_adds() -> None:
    store = SimpleNamespace(read_logs=None)
    added = frozenset(make_expressions(store).functions)  # type: ignore[arg-type]
    assert added == RUNTIME_FUNCTIONS


# ----------------------------------------------------------------------------------------- enums


@pytest.mark.parametrize(
    ("task", "field", "value"),
    [
        ("log.Log", "level", "LOUD"),
        ("log.Fetch", "level", "LOUD"),
        ("kv.Set", "kvType", "TEXT"),
        ("execution.Exit", "state", "DONE"),
    ],
)
def test_enum_value_is_refused(task: str, field: str, value: str) -> None:
    extra = {"log.Log": "  message: hi\n", "kv.Set": "  key: k\n  value: v\n"}.get(task, "")
    source = _flow(f"- id: t\n  type: io.kestra.plugin.core.{task}\n{extra}  {field}: {value}\n")
    issue = _one(source)
    assert issue.path == f"tasks[0].{field}"
    assert issue.line is not None and issue.column is not None
    assert f'invalid {field} "{value}"' in issue.message
    assert "use one of" in issue.message


def test_log_level_names_in_the_alphabet() -> None:
    issue = _one(_flow(LOG + "  message: hi\n  level: LOUD\n"))
    assert issue.message.endswith("use one of TRACE, DEBUG, INFO, WARN, ERROR")


@pytest.mark.parametrize("level", ["WARN", "warn", "WARNING", "error", "{{ inputs.level }}"])
def test_enum_values_the_plugin_runs_load(level: str) -> None:
    head = "inputs:\n  - id: level\n    type: STRING\n"
    _loads(_flow(LOG + f"  message: hi\n  level: {level!r}\n", head))


# ------------------------------------------------------------------------------------------ counts


FOREACH = """\
- id: each
  type: io.kestra.plugin.core.flow.ForEach
  values: [1, 2]
  concurrencyLimit: {limit}
  tasks:
    - id: t
      type: io.kestra.plugin.core.log.Log
      message: hi
"""


@pytest.mark.parametrize("limit", ['"lots"', "-1", "1.5", "true"])
def test_concurrency_limit_must_be_a_count(limit: str) -> None:
    issue = _one(_flow(FOREACH.format(limit=limit)))
    assert issue.path == "tasks[0].concurrencyLimit"
    assert (issue.line, issue.column) == (7, 23)
    assert "a whole number >= 0" in issue.message and "or an expression" in issue.message


@pytest.mark.parametrize("limit", ["0", "2", '"3"', '"{{ 1 + 1 }}"'])
def test_concurrency_limit_counts_load(limit: str) -> None:
    _loads(_flow(FOREACH.format(limit=limit)))


def test_parallel_concurrent_must_be_a_count() -> None:
    source = _flow(
        "- id: p\n  type: io.kestra.plugin.core.flow.Parallel\n  concurrent: many\n  tasks:\n"
        "    - id: t\n      type: io.kestra.plugin.core.log.Log\n      message: hi\n"
    )
    assert _one(source).path == "tasks[0].concurrent"


# ---------------------------------------------------------------------------------------- inputs


def test_undeclared_input_is_refused() -> None:
    head = "inputs:\n  - id: name\n    type: STRING\n"
    issue = _one(_flow(LOG + '  message: "{{ inputs.nme }}"\n', head))
    assert issue.path == "tasks[0].message"
    assert "reads 'inputs.nme' but the flow declares no input 'nme'" in issue.message
    assert "did you mean 'name'?" in issue.message


def test_undeclared_input_by_subscript_is_refused() -> None:
    assert "inputs.x" in _one(_flow(LOG + "  message: \"{{ inputs['x'] }}\"\n")).message


@pytest.mark.parametrize(
    "template",
    [
        "{{ inputs.x ?? 'none' }}",
        "{{ inputs.x ??? 'none' }}",
        "{{ inputs.x | default('none') }}",
        "{% if inputs.x is defined %}{{ inputs.x }}{% endif %}",
        "{% set inputs = {'x': 1} %}{{ inputs.x }}",
        "{{ inputs[name] }}",
    ],
)
def test_guarded_or_dynamic_input_reads_load(template: str) -> None:
    _loads(_flow(LOG + f"  message: {template!r}\n", "variables:\n  name: x\n"))


def test_subflow_outputs_are_the_childs() -> None:
    # the deprecated Subflow ``outputs`` are rendered by the child: its inputs, not this flow's
    task = "- id: sub\n  type: io.kestra.plugin.core.flow.Subflow\n  namespace: n\n  flowId: child\n"
    _loads(_flow(task + '  outputs:\n    got: "{{ inputs.childs }}"\n'))
    issue = _one(_flow(task + '  inputs:\n    x: "{{ inputs.parents }}"\n'))
    assert issue.path == "tasks[0].inputs.x"


def test_variables_are_not_judged_on_inputs() -> None:
    # vars are exposed as written: the template fails only if render() is asked to render it
    _loads(_flow(LOG + "  message: hi\n", 'variables:\n  later: "{{ inputs.missing }}"\n'))


def test_trigger_templates_are_not_judged_on_inputs() -> None:
    source = _flow(
        LOG + "  message: hi\n",
        "triggers:\n  - id: w\n    type: io.kestra.plugin.core.trigger.Webhook\n    key: k\n"
        "    conditions:\n      - type: io.kestra.plugin.core.condition.Expression\n"
        '        expression: "{{ inputs.other }}"\n',
    )
    load_flow(source, strict_expressions=True)


# ---------------------------------------------------------------------------------------- switch


def test_switch_without_value_is_refused() -> None:
    source = _flow(
        "- id: s\n  type: io.kestra.plugin.core.flow.Switch\n  cases:\n    A:\n"
        "      - id: t\n        type: io.kestra.plugin.core.log.Log\n        message: hi\n"
    )
    issue = _one(source)
    assert issue.path == "tasks[0]"
    assert (issue.line, issue.column) == (4, 5)
    assert "missing required property 'value' of Switch" in issue.message


# ------------------------------------------------------------------------------------- errorLogs


def _line(level: str, message: str, date: str, task: str = "failed") -> LogLine:
    return LogLine(date, level, message, "tr-" + task, task, 1)


async def _render(lines: list[list[LogLine]], template: str, variables: dict[str, Any]) -> str:
    reads: list[str] = []

    async def read_logs(execution_id: str) -> list[LogLine]:
        reads.append(execution_id)
        return lines[min(len(reads), len(lines)) - 1]

    fn = error_logs_function(read_logs, patience=0.5)
    return await Expressions(functions={"errorLogs": fn}).render_async(template, variables)


VARS = {"execution": {"id": "e1"}, "flow": {"id": "f", "namespace": "company.team"}}
TEMPLATE = "{% for log in errorLogs() %}- task: {{ log.taskId }}, message: {{ log.message }};{% endfor %}"


@pytest.mark.anyio
async def test_error_logs_lists_the_error_lines_oldest_first() -> None:
    lines = [
        _line("ERROR", "second", "2026-01-01T00:00:02Z", "b"),
        _line("INFO", "not an error", "2026-01-01T00:00:00Z"),
        _line("ERROR", "Task failure", "2026-01-01T00:00:01Z"),
    ]
    out = await _render([lines], TEMPLATE, VARS)
    assert out == "- task: failed, message: Task failure;- task: b, message: second;"


@pytest.mark.anyio
async def test_error_logs_shape_is_kestras_log_entry() -> None:
    lines = [_line("ERROR", "boom", "2026-01-01T00:00:01Z")]
    out = await _render([lines], "{{ errorLogs()[0] | json }}", VARS)
    assert out == (
        '{"namespace":"company.team","flowId":"f","taskId":"failed","executionId":"e1",'
        '"taskRunId":"tr-failed","attemptNumber":1,"timestamp":"2026-01-01T00:00:01Z",'
        '"level":"ERROR","message":"boom"}'
    )


@pytest.mark.anyio
async def test_error_logs_waits_for_a_line_published_late() -> None:
    late = [_line("ERROR", "Task failure", "2026-01-01T00:00:01Z")]
    out = await _render([[], [], late], TEMPLATE, VARS)
    assert out == "- task: failed, message: Task failure;"


@pytest.mark.anyio
async def test_error_logs_keeps_25_and_ends_empty() -> None:
    many = [_line("ERROR", f"m{i:02}", f"2026-01-01T00:00:{i:02}Z") for i in range(30)]
    assert await _render([many], "{{ errorLogs() | length }}", VARS) == "25"
    assert await _render([[]], "{{ errorLogs() }}", VARS) == "[]"


@pytest.mark.anyio
async def test_error_logs_outside_an_execution_says_so() -> None:
    with pytest.raises(ExpressionError, match="no execution here"):
        await _render([[]], "{{ errorLogs() }}", {})


# -------------------------------------------------------------------------- refused, not ignored


@pytest.mark.parametrize("where", ["flow", "task"])
def test_retry_create_new_execution_loads(where: str) -> None:
    retry = "retry:\n  type: constant\n  interval: PT1S\n  maxAttempt: 3\n  behavior: CREATE_NEW_EXECUTION\n"
    if where == "flow":
        flow = _loads(_flow(LOG + "  message: hi\n", retry))
        assert flow.retry is not None and flow.retry.behavior == "CREATE_NEW_EXECUTION"
    else:
        flow = _loads(_flow(LOG + "  message: hi\n" + textwrap.indent(retry, "  ")))
        assert flow.tasks[0].retry is not None and flow.tasks[0].retry.behavior == "CREATE_NEW_EXECUTION"


def test_retry_unknown_behavior_is_refused() -> None:
    retry = "retry:\n  type: constant\n  interval: PT1S\n  behavior: CREATE_NEW\n"
    issue = _one(_flow(LOG + "  message: hi\n", retry))
    assert issue.path == "retry.behavior"
    assert "CREATE_NEW_EXECUTION" in issue.message


def test_retry_failed_task_loads() -> None:
    retry = "retry:\n  type: constant\n  interval: PT1S\n  behavior: RETRY_FAILED_TASK\n"
    _loads(_flow(LOG + "  message: hi\n", retry))


@pytest.mark.parametrize("kind", ["Script", "Commands"])
def test_python_dependencies_load(kind: str) -> None:
    body = "  script: print(1)\n" if kind == "Script" else "  commands: [python -V]\n"
    task = f"- id: py\n  type: io.kestra.plugin.scripts.python.{kind}\n"
    _loads(_flow(task + body + "  dependencies: [requests]\n  packageManager: UV\n"))


def test_python_script_without_dependencies_loads() -> None:
    task = "- id: py\n  type: io.kestra.plugin.scripts.python.Script\n"
    _loads(_flow(task + "  script: print(1)\n  dependencies: []\n"))


def test_every_rule_names_a_registered_type() -> None:
    from engine.loader import plugin_rules
    from plugins.registry import default_registry

    registry = default_registry()
    tables: list[Any] = [plugin_rules._ENUMS, plugin_rules._COUNTS, plugin_rules._REQUIRED]
    for table in [
        *tables,
        plugin_rules._NOT_SUPPORTED,
        plugin_rules._REFUSED_VALUES,
        plugin_rules._NOT_SUPPORTED_WITHIN,
        plugin_rules._PATTERNS,
        plugin_rules._RENDERED_BY_CHILD,
    ]:
        for task_type in table:
            assert registry.resolve(task_type).type == task_type


def test_error_logs_rendered_without_the_worker_names_the_function() -> None:
    async def read_logs(execution_id: str) -> list[LogLine]:
        return []

    expressions = Expressions(functions={"errorLogs": error_logs_function(read_logs)})
    with pytest.raises(ExpressionError, match="function 'errorLogs' is asynchronous"):
        expressions.render("{{ errorLogs() }}", VARS)


def test_the_editors_schema_follows_the_rules() -> None:
    import jsonschema

    from engine.loader.schema import flow_json_schema

    schema = flow_json_schema()
    defs = schema["$defs"]
    levels = set(defs["io.kestra.plugin.core.log.Log"]["properties"]["level"]["anyOf"][0]["enum"])
    assert {"WARN", "warn", "WARNING"} <= levels and "LOUD" not in levels
    assert "value" in defs["io.kestra.plugin.core.flow.Switch"]["required"]
    assert "dependencies" in defs["io.kestra.plugin.scripts.python.Script"]["properties"]
    assert "dockerOptions" not in defs["io.kestra.core.tasks.scripts.Bash"]["properties"]
    assert defs["Retry"]["properties"]["behavior"]["enum"] == ["RETRY_FAILED_TASK", "CREATE_NEW_EXECUTION"]
    validator = jsonschema.Draft202012Validator(schema)
    each = {"id": "e", "type": "io.kestra.plugin.core.flow.ForEach", "values": [1], "tasks": []}
    flow = {"id": "f", "namespace": "n", "tasks": [{**each, "concurrencyLimit": "lots"}]}
    assert list(validator.iter_errors(flow))
    for limit in (2, "2", "{{ inputs.n }}"):
        flow["tasks"] = [{**each, "concurrencyLimit": limit}]
        assert not list(validator.iter_errors(flow)), limit


def test_namespace_files_of_scripts_and_working_directories_are_refused_not_ignored() -> None:
    """Accepted and ignored before (a WARN at run time, or nothing): refused with what to do instead."""
    flow = (
        "id: nsf\nnamespace: t\ntasks:\n"
        "  - id: wd\n    type: io.kestra.plugin.core.flow.WorkingDirectory\n"
        "    namespaceFiles:\n      enabled: true\n    tasks:\n"
        "      - id: s\n        type: io.kestra.plugin.scripts.shell.Commands\n"
        "        namespaceFiles:\n          include: [a.sql]\n        commands: [ls]\n"
    )
    with pytest.raises(FlowValidationError) as info:
        load_flow(flow)
    issues = {(i.path, i.line) for i in info.value.issues}
    assert issues == {("tasks[0].namespaceFiles", 7), ("tasks[0].tasks[0].namespaceFiles", 12)}
    assert all("not supported yet" in i.message and "read(" in i.message for i in info.value.issues)
    load_flow(flow.replace("enabled: true", "enabled: false").replace("include: [a.sql]", "enabled: false"))
