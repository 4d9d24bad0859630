"""WorkingDirectory `outputFiles` and `cache` in the pure core and the loader (the worker's file work:
tests/integration/test_working_directory.py)."""

from __future__ import annotations

from typing import Any

import pytest

from engine.core import events as ev
from engine.core.errors import EngineError
from engine.loader.loader import load_flow
from engine.testing import drive, simulate

WD = "io.kestra.plugin.core.flow.WorkingDirectory"
LOG = "io.kestra.plugin.core.log.Log"


def flow(body: str) -> Any:
    return load_flow("id: t\nnamespace: io.test\n" + body)


FLOW = f"""
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: ["a"]
    tasks:
      - id: wd
        type: {WD}
        outputFiles: ["*.csv"]
        cache: {{patterns: ["deps/**"], ttl: PT1H}}
        tasks:
          - {{id: one, type: {LOG}, message: x}}
          - id: seq
            type: io.kestra.plugin.core.flow.Sequential
            tasks:
              - {{id: two, type: {LOG}, message: y}}
"""


def test_dispatch_carries_the_working_directory_files_and_cache_key() -> None:
    sim = simulate(flow(FLOW))
    assert sim.state.state == "SUCCESS"
    by_task = {d.task.id: d for d in sim.dispatched}
    for task in ("one", "two"):  # nested in a Sequential: still that WorkingDirectory's
        assert by_task[task].workdir_outputs == ["*.csv"]
        assert by_task[task].workdir_cache == {"patterns": ["deps/**"], "ttl": "PT1H"}
        assert by_task[task].workdir_key == "wd/a"  # per loop value, as Kestra keys its cache


def test_the_last_reported_files_become_the_working_directory_outputs() -> None:
    f = flow(FLOW)
    sim = simulate(f, {"one": "RUNNING", "two": "RUNNING"})
    one = sim.taskrun("one")
    date = "2026-01-02T00:00:01Z"
    first = {"a.csv": "kestra:///io/test/t/executions/x/tasks/one/1/a.csv"}
    ended = ev.AttemptEnded(date=date, taskrun_id=one.id, attempt=1, state="SUCCESS", workdir_outputs=first)
    drive(sim, f, [ended], {"two": "RUNNING"})
    wd = sim.taskrun("wd")
    assert wd.outputs == {"outputFiles": first}
    two = sim.taskrun("two")
    later = {"b.csv": "kestra:///io/test/t/executions/x/tasks/two/2/b.csv"}  # a.csv deleted by `two`
    ended = ev.AttemptEnded(date=date, taskrun_id=two.id, attempt=1, state="SUCCESS", workdir_outputs=later)
    drive(sim, f, [ended])
    assert sim.state.state == "SUCCESS"
    assert sim.taskrun("wd").outputs == {"outputFiles": later}
    assert sim.taskrun("two").outputs == {}  # the task's own outputs are not touched


def test_no_outputs_without_output_files() -> None:
    sim = simulate(
        flow(
            f"tasks:\n  - id: wd\n    type: {WD}\n    tasks:\n      - {{id: one, type: {LOG}, message: x}}\n"
        )
    )
    assert sim.dispatched[0].workdir_outputs is None and sim.dispatched[0].workdir_key is None
    assert sim.taskrun("wd").outputs == {}


def with_cache(cache: str) -> str:
    task = f"{{id: l, type: {LOG}, message: x}}"
    return f"tasks:\n  - id: wd\n    type: {WD}\n    cache: {cache}\n    tasks:\n      - {task}\n"


@pytest.mark.parametrize(
    ("cache", "message"),
    [
        (
            "{patterns: ['*.txt'], ttl: forever}",
            'tasks[0].cache.ttl: expected an ISO-8601 duration, got "forever"',
        ),
        ("{patterns: ['*.txt'], keep: 1}", "tasks[0].cache.keep: unknown property 'keep'"),
        ("{ttl: PT1H}", "tasks[0].cache"),
    ],
)
def test_a_bad_cache_is_refused_with_its_field(cache: str, message: str) -> None:
    with pytest.raises(EngineError) as info:
        flow(with_cache(cache))
    assert message in str(info.value)
    assert "(line 6, column" in str(info.value)


def test_a_ttl_expression_is_left_to_run_time() -> None:
    flow(with_cache("{patterns: [a], ttl: '{{ vars.t }}'}"))
