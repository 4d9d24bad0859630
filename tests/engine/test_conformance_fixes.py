"""Differences with Kestra the conformance runner found, each fixed and pinned here without a server."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest

from engine.core import events as ev
from engine.core.context import millis
from engine.loader.loader import load_flow
from engine.testing import simulate
from engine.testing.run import MemoryEngine

RET = "io.kestra.plugin.core.debug.Return"


def flow(body: str) -> Any:
    return load_flow("id: t\nnamespace: io.test\n" + body)


def test_current_each_output_reads_the_current_iteration_of_nested_loops() -> None:
    # Kestra's `parents` leaves out a parent without value and outputs (here the outer ForEach
    # taskrun): currentEachOutput walks the loop values only, outermost first
    f = flow(f"""
tasks:
  - id: outer
    type: io.kestra.plugin.core.flow.ForEach
    values: [x, y]
    tasks:
      - id: inner
        type: io.kestra.plugin.core.flow.ForEach
        values: ["1", "2"]
        tasks:
          - {{id: first, type: {RET}, format: "{{{{ parents[0].taskrun.value }}}}{{{{ taskrun.value }}}}"}}
          - {{id: second, type: {RET}, format: "got {{{{ currentEachOutput(outputs.first).value }}}}"}}
""")

    rendered: list[str] = []

    def record(dispatch: Any) -> tuple[str, dict[str, Any]]:
        from engine.expressions import Expressions

        text = Expressions().render(dispatch.task.props["format"], dispatch.variables)
        rendered.append(text)
        return "SUCCESS", {"value": text}

    sim = simulate(f, {"first": record, "second": record})
    assert sim.state.state == "SUCCESS"
    seconds = [r for r in rendered if r.startswith("got")]
    assert seconds == ["got x1", "got x2", "got y1", "got y2"]


def test_parents_leave_out_a_parent_without_value_or_outputs() -> None:
    f = flow(f"""
tasks:
  - id: loop
    type: io.kestra.plugin.core.flow.ForEach
    values: [a]
    tasks:
      - id: seq
        type: io.kestra.plugin.core.flow.Sequential
        tasks:
          - {{id: leaf, type: {RET}, format: x}}
""")
    sim = simulate(f)
    (leaf,) = [d for d in sim.dispatched if d.task.id == "leaf"]
    # the Sequential (the loop's child) has the value; the ForEach taskrun has neither value nor outputs
    assert leaf.variables["parents"] == [{"taskrun": {"value": "a"}}]


def test_dates_are_shown_to_the_millisecond_in_expressions() -> None:
    assert millis("2026-12-03T18:10:00.825637Z") == "2026-12-03T18:10:00.825Z"
    assert millis("2026-12-03T18:10:00.8Z") == "2026-12-03T18:10:00.800Z"
    assert millis("2026-12-03T18:10:00Z") == "2026-12-03T18:10:00Z"
    sim = simulate(flow(f"tasks:\n  - {{id: a, type: {RET}, format: x}}\n"))
    variables = sim.dispatched[0].variables
    assert variables["execution"]["startDate"] == millis(sim.state.start_date)
    assert variables["taskrun"]["startDate"].endswith("Z") and len(variables["taskrun"]["startDate"]) == 24


def _for_each_item(wait: bool) -> Any:
    return flow(f"""
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEachItem
    items: "kestra:///io/test/t/file.txt"
    batch: {{rows: 2}}
    namespace: io.test
    flowId: child
    wait: {str(wait).lower()}
    inputs:
      items: "{{{{ taskrun.items }}}}"
""")


def test_for_each_item_without_waiting_counts_no_created_batch() -> None:
    uris = [f"kestra:///b{i}.txt" for i in range(3)]
    sim = simulate(_for_each_item(False), {"each_split": lambda d: ("SUCCESS", {"splits": uris})})
    assert sim.taskrun("each_items").outputs == {
        "numberOfBatches": 3,
        "iterations": {"RUNNING": 0, "SUCCESS": 3},
    }


def test_for_each_item_with_no_batch_has_no_outputs() -> None:
    sim = simulate(_for_each_item(True), {"each_split": lambda d: ("SUCCESS", {"splits": []})})
    items = sim.taskrun("each_items")
    assert items.state == "SUCCESS" and items.outputs == {}


LOGS = """\
id: levels
namespace: io.test
tasks:
  - {id: kept, type: io.kestra.plugin.core.log.Log, message: kept, level: WARN, logLevel: INFO}
  - {id: dropped, type: io.kestra.plugin.core.log.Log, message: dropped, level: DEBUG, logLevel: INFO}
  - {id: default, type: io.kestra.plugin.core.log.Log, message: trace, level: TRACE}
"""


def test_a_tasks_log_level_drops_its_lines_below_it() -> None:
    async def run() -> list[tuple[str | None, str]]:
        async with MemoryEngine() as eng:
            state = await eng.run(await eng.deploy(LOGS))
            assert state.state == "SUCCESS"
            return [(line.task_id, line.message) for line in await eng.store.read_logs(state.id)]

    lines = asyncio.run(run())
    assert ("kept", "kept") in lines
    assert ("default", "trace") in lines
    assert not [m for task, m in lines if task == "dropped"]


def test_a_secret_name_is_read_upper_cased_and_line_wrapped_base64_decodes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from workers.context import read_secret

    value = "passwordveryveryveyrlong" * 5
    monkeypatch.setenv("SECRET_NEW_LINE", base64.encodebytes(value.encode()).decode())
    assert "\n" in base64.encodebytes(value.encode()).decode()
    assert read_secret("new_line") == value
    assert read_secret("NEW_LINE") == value


def test_the_retry_created_event_is_an_execution_created() -> None:
    # whoever handles a creation (executor, replayer, indexer) handles a next try the same way
    assert issubclass(ev.RetryExecutionCreated, ev.ExecutionCreated)
