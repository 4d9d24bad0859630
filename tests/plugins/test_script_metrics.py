"""Taskrun metrics: a script's ``::{"metrics": [...]}::`` lines, merged as Kestra's RunContext merges them,
folded onto the attempt and shown in Kestra's shapes."""

from __future__ import annotations

import pytest
from plugin_harness import FakeContext, run_task

from engine.core import events as ev
from engine.core.execution import evolve
from engine.core.metrics import MAX_METRICS, MetricRefused, Metrics, iso_duration, metric_entries
from engine.core.shape import execution_json

SH = "io.kestra.plugin.scripts.shell.Commands"


@pytest.mark.anyio
async def test_script_metrics_are_recorded_and_merged(ctx: FakeContext) -> None:
    commands = [
        """echo '::{"metrics": [{"name": "rows", "type": "counter", "value": 10}]}::'""",
        """echo '::{"metrics": [{"name": "rows", "type": "counter", "value": 5.5}]}::'""",
        """echo '::{"metrics": [{"name": "rows", "type": "counter", "value": 1, "tags": {"p": "a"}}]}::'""",
        """echo '::{"metrics": [{"name": "took", "type": "timer", "value": 1.25}]}::'""",
        """echo '::{"metrics": [{"name": "g", "type": "gauge", "value": 3}]}::'""",
        """echo '::{"metrics": [{"name": "g", "type": "gauge", "value": 2}]}::'""",
        """echo '::{"metrics": [{"name": "h", "type": "histogram", "value": 3}]}::'""",
        """echo '::{"metrics": [{"name": "bad", "type": "counter", "value": "x"}]}::'""",
        """echo '::{"metrics": {"name": "notalist"}}::'""",
    ]
    result = await run_task(SH, {"commands": commands}, ctx)
    assert result.state == "SUCCESS"
    got = {(m.type, m.name, tuple(m.tags.items())): m.value for m in ctx.metrics.snapshot()}
    assert got == {
        ("counter", "rows", ()): 15.5,
        ("counter", "rows", (("p", "a"),)): 1.0,
        ("timer", "took", ()): 1.25,
        ("gauge", "g", ()): 2.0,  # a gauge keeps its last value
    }
    warnings = ctx.messages("WARN")
    assert any("'histogram' is not supported" in w for w in warnings)
    assert any("'bad': value must be a finite number" in w for w in warnings)
    assert any("must be a list" in w for w in warnings)


def test_metrics_refuse_what_is_not_one_and_are_bounded() -> None:
    m = Metrics()
    for bad in [("counter", "", 1), ("counter", "n", float("nan")), ("counter", "n", True), ("x", "n", 1)]:
        with pytest.raises(MetricRefused):
            m.add(*bad, None, "d")
    for i in range(MAX_METRICS):
        m.add("counter", f"n{i}", 1, None, "d")
    m.add("counter", "n0", 1, None, "d")  # an existing one still adds up
    with pytest.raises(MetricRefused, match="at most"):
        m.add("counter", "one-too-many", 1, None, "d")


def test_fold_keeps_metrics_on_the_attempt_and_shapes_show_them() -> None:
    d = "2026-12-03T10:00:00.000000Z"
    metrics = (ev.Metric("counter", "rows", 10.0, {}, d), ev.Metric("timer", "took", 1.5, {"k": "v"}, d))
    state = None
    for event in [
        ev.ExecutionCreated(date=d, execution_id="e1", namespace="ns", flow_id="f", flow_revision=1),
        ev.TaskRunCreated(date=d, taskrun_id="t1", task_id="py"),
        ev.AttemptStarted(date=d, taskrun_id="t1", attempt=1),
        ev.AttemptEnded(date=d, taskrun_id="t1", attempt=1, state="SUCCESS", metrics=metrics),
    ]:
        state = evolve(state, event)
    assert state is not None
    doc = execution_json(state)
    assert doc["taskRunList"][0]["attempts"][0]["metrics"] == [
        {"name": "rows", "type": "counter", "value": 10.0, "tags": {}, "timestamp": d},
        {"name": "took", "type": "timer", "value": "PT1.5S", "tags": {"k": "v"}, "timestamp": d},
    ]
    entries = metric_entries(state)
    assert [(e["taskId"], e["taskRunId"], e["name"], e["value"]) for e in entries] == [
        ("py", "t1", "rows", 10.0),
        ("py", "t1", "took", 1500.0),
    ]
    # the event round-trips through the log's encoding
    assert (
        ev.decode(
            ev.encode([ev.AttemptEnded(date=d, taskrun_id="t1", attempt=1, state="SUCCESS", metrics=metrics)])
        )[0].metrics
        == metrics
    )  # type: ignore[union-attr]


def test_iso_duration() -> None:
    assert iso_duration(1.5) == "PT1.5S"
    assert iso_duration(20) == "PT20S"


@pytest.mark.anyio
async def test_return_records_kestras_length_counter(ctx: FakeContext) -> None:
    await run_task("io.kestra.plugin.core.debug.Return", {"format": "x" * 300}, ctx)
    (metric,) = ctx.metrics.snapshot()
    assert (metric.type, metric.name, metric.value) == ("counter", "length", 300.0)
    assert metric.tags == {"format": "x" * 256}  # a long tag value is cut, not refused
