"""``engine test DIR``: Kestra's flow unit tests (fixtures, mocked tasks, assertions) on the in-memory
engine, with a readable report, exit codes and JUnit XML."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from engine.core.errors import FlowValidationError
from engine.testing.flowtests import _compare, discover, junit_xml, report, run_suites
from engine.testing.suite import load_suite

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
WEATHER = Path(__file__).parent / "flowtests"


def _engine_test(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "engine", "test", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_acceptance_a_mocked_http_task_true_assertion_exits_0_false_exits_1(tmp_path: Path) -> None:
    good = tmp_path / "good"
    shutil.copytree(WEATHER, good)
    res = _engine_test(str(good), "--junit", str(tmp_path / "good.xml"), cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "PASS  reads_the_temperature" in res.stdout
    assert "2 test cases: 2 passed" in res.stdout

    bad = tmp_path / "bad"
    shutil.copytree(WEATHER, bad)
    suite = bad / "weather_test.yaml"
    suite.write_text(suite.read_text().replace('equalTo: "21"', 'equalTo: "22"'))
    res = _engine_test(str(bad), "--junit", str(tmp_path / "bad.xml"), cwd=tmp_path)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "FAIL  reads_the_temperature" in res.stdout
    # which assertion, where, and why
    assert "line 17: equalTo: expected '{{ outputs.parse.value }}' to equal '22' but was '21'" in res.stdout
    assert "1 failed" in res.stdout and "1 passed" in res.stdout
    xml = ET.parse(tmp_path / "bad.xml").getroot()
    suite_node = xml.find("testsuite")
    assert suite_node is not None
    assert (suite_node.get("tests"), suite_node.get("failures")) == ("2", "1")
    failure = xml.find(".//testcase[@name='reads_the_temperature']/failure")
    assert failure is not None and "to equal '22' but was '21'" in (failure.get("message") or "")


FILE_FLOW = """
id: mocked
namespace: company.team
tasks:
  - id: side_effect
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - echo ran > {marker}
      - exit 3
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ outputs.side_effect.exitCode }}}}"
"""

FILE_SUITE = """
id: mocked_test
namespace: company.team
flowId: mocked
testCases:
  - id: {case}
    type: io.kestra.core.tests.flow.UnitTest
    fixtures:
{fixtures}
    assertions:
      - value: "{{{{ execution.state }}}}"
        equalTo: {state}
"""


async def test_a_mocked_task_never_runs_and_an_unmocked_one_does(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "flow.yaml").write_text(FILE_FLOW.format(marker=marker))
    mocked = "      tasks:\n        - id: side_effect\n          outputs: {exitCode: 0}"
    (flows / "mocked_test.yaml").write_text(
        FILE_SUITE.format(case="mocked", fixtures=mocked, state="SUCCESS")
    )
    found = discover(flows)
    assert not found.issues, found.issues
    [result] = await run_suites(found.suites, found.flows)
    assert [c.status for c in result.cases] == ["passed"], report([result])
    assert not marker.exists()  # the script would have written it, and failed with exit 3

    (flows / "mocked_test.yaml").write_text(
        FILE_SUITE.format(case="real", fixtures="      inputs: {}", state="FAILED")
    )
    found = discover(flows)
    [result] = await run_suites(found.suites, found.flows)
    assert [c.status for c in result.cases] == ["passed"], report([result])
    assert marker.read_text() == "ran\n"  # the control: unmocked, the task does run


LOOP_FLOW = """
id: loop
namespace: company.team
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: ["a", "b"]
    tasks:
      - id: work
        type: io.kestra.plugin.core.debug.Return
        format: "real {{ taskrun.value }}"
"""

LOOP_SUITE = """
id: loop_test
namespace: company.team
flowId: loop
testCases:
  - id: only_b_is_mocked
    type: io.kestra.core.tests.flow.UnitTest
    fixtures:
      files:
        data/note.txt: hello
      tasks:
        - id: work
          value: b
          outputs: {value: "mocked {{ taskrun.value }}"}
    assertions:
      - value: "{{ outputs.work.a.value }}"
        equalTo: real a
      - value: "{{ outputs.work.b.value }}"
        equalTo: mocked b
      - value: "{{ outputs.work.b.value }}"
        contains: mock
        endsWith: b
      - value: "{{ outputs.work.c ?? null }}"
        isNull: true
      - value: "{{ outputs.work.a }}"
        isNotNull: true
      - value: "{{ execution.state }}"
        notIn: [FAILED, KILLED]
  - id: skipped_one
    type: io.kestra.core.tests.flow.UnitTest
    disabled: true
    assertions:
      - value: "{{ execution.state }}"
        equalTo: FAILED
"""


async def test_a_fixture_with_a_value_mocks_one_loop_iteration(tmp_path: Path) -> None:
    (tmp_path / "loop.yaml").write_text(LOOP_FLOW)
    (tmp_path / "loop_test.yaml").write_text(LOOP_SUITE)
    found = discover(tmp_path)
    assert not found.issues, found.issues
    [result] = await run_suites(found.suites, found.flows)
    assert [c.status for c in result.cases] == ["passed", "skipped"], report([result])
    xml = ET.fromstring(junit_xml([result]).split("\n", 1)[1])
    assert xml.find(".//testcase[@name='skipped_one']/skipped") is not None


READ_FLOW = """
id: reader
namespace: company.team
inputs:
  - id: n
    type: INT
tasks:
  - id: read
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read('data/note.txt') }} x{{ inputs.n * 2 }}"
"""


async def test_inputs_and_files_fixtures_reach_the_execution(tmp_path: Path) -> None:
    (tmp_path / "reader.yaml").write_text(READ_FLOW)
    (tmp_path / "reader_test.yaml").write_text(
        """
id: reader_test
namespace: company.team
flowId: reader
testCases:
  - id: reads
    type: io.kestra.core.tests.flow.UnitTest
    fixtures:
      inputs: {n: 21}
      files: {data/note.txt: hello}
    assertions:
      - value: "{{ outputs.read.value }}"
        equalTo: hello x42
  - id: a_bad_input_is_an_error_not_a_pass
    type: io.kestra.core.tests.flow.UnitTest
    fixtures:
      inputs: {n: not-a-number}
    assertions:
      - value: "{{ execution.state }}"
        equalTo: SUCCESS
"""
    )
    found = discover(tmp_path)
    assert not found.issues, found.issues
    [result] = await run_suites(found.suites, found.flows)
    statuses = {c.id: c.status for c in result.cases}
    assert statuses["reads"] == "passed", report([result])
    assert statuses["a_bad_input_is_an_error_not_a_pass"] in ("error", "failed"), report([result])
    assert not result.ok


def test_a_bad_suite_lists_every_problem_with_its_line() -> None:
    text = """
id: t
namespace: company.team
flowId: weather
testCases:
  - id: one
    type: io.kestra.core.tests.flow.UnitTest
    fixtures:
      tasks:
        - id: fetch
          state: RUNNING
    assertions:
      - value: "{{ outputs.x }}"
        equalsToo: 1
      - value: "{{ outputs.x }}"
        greaterThan: many
  - id: two
    type: io.kestra.core.tests.flow.Other
"""
    with pytest.raises(FlowValidationError) as info:
        load_suite(text, file="t.yaml")
    messages = [str(i) for i in info.value.issues]
    assert any("state" in m and "RUNNING" in m and "(line 11" in m for m in messages), messages
    assert any("unknown assertion property 'equalsToo' — did you mean 'equalsTo'?" in m for m in messages)
    assert any("greaterThan takes a number, got 'many'" in m for m in messages), messages
    assert any("unknown test case type 'io.kestra.core.tests.flow.Other'" in m for m in messages)
    assert any("expected a non-empty list of 'assertions'" in m for m in messages), messages


def test_a_fixture_for_an_unknown_task_or_a_flowables_loop_value_is_refused(tmp_path: Path) -> None:
    (tmp_path / "loop.yaml").write_text(LOOP_FLOW)
    (tmp_path / "t.yaml").write_text(
        LOOP_SUITE.replace("- id: work\n          value: b", "- id: each\n          value: b")
        + """
  - id: unknown
    type: io.kestra.core.tests.flow.UnitTest
    fixtures:
      tasks: [{id: nope}]
    assertions: [{value: x, equalTo: x}]
"""
    )
    found = discover(tmp_path)
    messages = [str(i) for i in found.issues]
    assert any("task 'each' is a flowable task" in m and "not supported" in m for m in messages), messages
    assert any("no task 'nope' in flow company.team.loop" in m for m in messages), messages


SUBFLOW_PARENT = """
id: parent
namespace: company.team
tasks:
  - id: call
    type: io.kestra.plugin.core.flow.Subflow
    namespace: company.team
    flowId: not-deployed-anywhere
    wait: true
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: [a, b]
    tasks:
      - id: inner
        type: io.kestra.plugin.core.execution.Fail
  - id: use
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.call.outputs.result }} {{ outputs.each.done }}"
"""


async def test_a_mocked_flowable_never_starts_its_subflow_or_branches(tmp_path: Path) -> None:
    (tmp_path / "parent.yaml").write_text(SUBFLOW_PARENT)
    (tmp_path / "parent_test.yaml").write_text(
        """
id: parent_test
namespace: company.team
flowId: parent
testCases:
  - id: mocked
    type: io.kestra.core.tests.flow.UnitTest
    fixtures:
      tasks:
        - id: call
          outputs: {outputs: {result: from-the-mock}}
        - id: each
          outputs: {done: yes}
    assertions:
      - value: "{{ outputs.use.value }}"
        equalTo: from-the-mock yes
      - value: "{{ tasks.inner ?? null }}"
        isNull: true
"""
    )
    found = discover(tmp_path)
    assert not found.issues, found.issues
    [result] = await run_suites(found.suites, found.flows)
    assert [c.status for c in result.cases] == ["passed"], report([result])


def test_the_cli_refuses_invalid_files_with_exit_2(tmp_path: Path) -> None:
    shutil.copytree(WEATHER, tmp_path / "d")
    suite = tmp_path / "d" / "weather_test.yaml"
    suite.write_text(suite.read_text().replace("flowId: weather", "flowId: nothere"))
    res = _engine_test(str(tmp_path / "d"), cwd=tmp_path)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "no flow company.team.nothere" in res.stderr


@pytest.mark.parametrize(
    ("operator", "expected", "actual", "ok"),
    [
        ("equalTo", 200, "200", True),
        ("equalTo", "a", "b", False),
        ("equalTo", True, "true", True),
        ("equalTo", 1, True, False),
        ("notEqualTo", "a", "b", True),
        ("notEqualTo", 3, 3.0, False),
        ("contains", "ell", "hello", True),
        ("contains", "x", ["x", "y"], True),
        ("contains", "z", "hello", False),
        ("startsWith", "he", "hello", True),
        ("endsWith", "he", "hello", False),
        ("greaterThan", 2, "3", True),
        ("greaterThan", 3, 3, False),
        ("greaterThanOrEqualTo", 3, 3, True),
        ("lessThan", 3, 2.5, True),
        ("lessThanOrEqualTo", 3, 4, False),
        ("lessThan", 3, "abc", False),
        ("in", ["a", "b"], "b", True),
        ("in", ["a", "b"], "c", False),
        ("notIn", ["a", "b"], "c", True),
        ("isNull", True, None, True),
        ("isNull", True, "", False),
        ("isNotNull", True, 0, True),
        ("isNotNull", True, None, False),
    ],
)
def test_each_operator(operator: str, expected: object, actual: object, ok: bool) -> None:
    result, message = _compare(operator, expected, actual, "{{ q }}")
    assert result is ok, message
    assert "'{{ q }}'" in message


TRIGGER_FLOW = """
id: triggered
namespace: company.team
tasks:
  - id: echo
    type: io.kestra.plugin.core.debug.Return
    format: "{{ trigger.body ?? 'manual' }}"
triggers:
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: k3y
"""


async def test_a_trigger_fixture_is_what_the_flow_sees_as_trigger(tmp_path: Path) -> None:
    (tmp_path / "triggered.yaml").write_text(TRIGGER_FLOW)
    (tmp_path / "triggered_test.yaml").write_text(
        """
id: triggered_test
namespace: company.team
flowId: triggered
testCases:
  - id: from_the_webhook
    type: io.kestra.core.tests.flow.UnitTest
    fixtures:
      trigger:
        id: hook
        type: io.kestra.plugin.core.trigger.Webhook
        variables: {body: hello}
    assertions:
      - value: "{{ outputs.echo.value }}"
        equalTo: hello
  - id: manual
    type: io.kestra.core.tests.flow.UnitTest
    assertions:
      - value: "{{ outputs.echo.value }}"
        equalTo: manual
"""
    )
    found = discover(tmp_path)
    assert not found.issues, found.issues
    [result] = await run_suites(found.suites, found.flows)
    assert [c.status for c in result.cases] == ["passed", "passed"], report([result])


async def test_tests_beside_the_flows_are_skipped_by_validate_and_deploy(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from engine.cli import app
    from engine.flows import FlowCache
    from engine.loader.loader import load_flows_dir
    from engine.testing.memory import MemoryStore

    shutil.copytree(WEATHER, tmp_path / "flows")
    res = CliRunner().invoke(app, ["flow", "validate", str(tmp_path / "flows")])
    assert res.exit_code == 0, res.output
    assert "1 flow(s) valid" in res.output
    assert [f.id for f in load_flows_dir(tmp_path / "flows")] == ["weather"]
    deployed = await FlowCache(MemoryStore()).deploy_dir(tmp_path / "flows")
    assert [f.id for f in deployed] == ["weather"]
