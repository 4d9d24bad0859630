"""Log, Echo, Return, OutputValues, Fail, Exit, Labels, Sleep."""

from __future__ import annotations

import time

import anyio
import pytest
from plugin_harness import FakeContext, registry, run_task

from engine.core.errors import TaskFailed
from plugins.core.execution import is_truthy

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    "name",
    [
        "io.kestra.plugin.core.log.Log",
        "io.kestra.core.tasks.log.Log",
        "io.kestra.plugin.core.debug.Return",
        "io.kestra.core.tasks.debugs.Return",
        "io.kestra.plugin.core.debug.Echo",
        "io.kestra.core.tasks.debugs.Echo",
        "io.kestra.plugin.core.output.OutputValues",
        "io.kestra.core.tasks.outputs.OutputValues",
        "io.kestra.plugin.core.execution.Fail",
        "io.kestra.core.tasks.executions.Fail",
        "io.kestra.plugin.core.execution.Exit",
        "io.kestra.plugin.core.execution.Labels",
        "io.kestra.core.tasks.executions.Labels",
        "io.kestra.plugin.core.flow.Sleep",
        "io.kestra.core.tasks.flows.Sleep",
    ],
)
def test_types_resolve(name: str) -> None:
    spec = registry().resolve(name)
    assert spec.kind == "runnable" and spec.run is not None


async def test_log_single_message_default_info(ctx: FakeContext) -> None:
    result = await run_task("io.kestra.plugin.core.log.Log", {"message": "hello"}, ctx)
    assert result.state == "SUCCESS" and result.outputs == {}
    assert ctx.logs == [("INFO", "hello")]


async def test_log_list_and_level(ctx: FakeContext) -> None:
    await run_task("io.kestra.core.tasks.log.Log", {"message": ["a", "b"], "level": "warn"}, ctx)
    assert ctx.logs == [("WARN", "a"), ("WARN", "b")]


async def test_log_bad_level(ctx: FakeContext) -> None:
    with pytest.raises(TaskFailed, match="invalid log level"):
        await run_task("io.kestra.plugin.core.log.Log", {"message": "x", "level": "LOUD"}, ctx)


async def test_log_requires_message(ctx: FakeContext) -> None:
    import msgspec

    with pytest.raises(msgspec.ValidationError):
        await run_task("io.kestra.plugin.core.log.Log", {}, ctx)


async def test_echo(ctx: FakeContext) -> None:
    await run_task("io.kestra.core.tasks.debugs.Echo", {"format": "hi", "level": "ERROR"}, ctx)
    assert ctx.logs == [("ERROR", "hi")]


async def test_return(ctx: FakeContext) -> None:
    result = await run_task("io.kestra.core.tasks.debugs.Return", {"format": "v 1"}, ctx)
    assert result.outputs == {"value": "v 1"}
    empty = await run_task("io.kestra.plugin.core.debug.Return", {}, ctx)
    assert empty.outputs == {"value": None}


async def test_output_values(ctx: FakeContext) -> None:
    values = {"a": "x", "n": 1, "l": [1, 2], "m": {"k": True}}
    result = await run_task("io.kestra.plugin.core.output.OutputValues", {"values": values}, ctx)
    assert result.outputs == {"values": values}


async def test_fail_unconditional(ctx: FakeContext) -> None:
    with pytest.raises(TaskFailed, match=r"^Task failure$") as info:
        await run_task("io.kestra.plugin.core.execution.Fail", {}, ctx)
    assert info.value.retryable  # Kestra retries Fail like any task failure when retry is set
    with pytest.raises(TaskFailed, match=r"^boom$"):
        await run_task("io.kestra.core.tasks.executions.Fail", {"errorMessage": "boom"}, ctx)


@pytest.mark.parametrize("condition", ["false", "0", "-0", "", " false ", False, 0])
async def test_fail_condition_falsy_passes(ctx: FakeContext, condition: object) -> None:
    result = await run_task("io.kestra.plugin.core.execution.Fail", {"condition": condition}, ctx)
    assert result.state == "SUCCESS"


@pytest.mark.parametrize("condition", ["true", "1", "yes", "False but not exactly", True, 2])
async def test_fail_condition_truthy_fails(ctx: FakeContext, condition: object) -> None:
    with pytest.raises(TaskFailed, match="Fail on a condition: nope"):
        await run_task(
            "io.kestra.plugin.core.execution.Fail", {"condition": condition, "errorMessage": "nope"}, ctx
        )
    assert ("ERROR", "nope") in ctx.logs


def test_truthiness() -> None:
    assert not is_truthy(None)
    assert is_truthy("FALSE")  # Kestra compares case-sensitively
    assert is_truthy("null")


@pytest.mark.parametrize("state", ["SUCCESS", "WARNING", "KILLED", "FAILED", "CANCELED", "failed"])
async def test_exit(ctx: FakeContext, state: str) -> None:
    result = await run_task("io.kestra.plugin.core.execution.Exit", {"state": state}, ctx)
    assert result.state == "SUCCESS"
    assert result.outputs == {"exit": {"state": state.upper()}}


async def test_exit_default_and_bad(ctx: FakeContext) -> None:
    result = await run_task("io.kestra.plugin.core.execution.Exit", {}, ctx)
    assert result.outputs == {"exit": {"state": "SUCCESS"}}
    with pytest.raises(TaskFailed, match="invalid exit state"):
        await run_task("io.kestra.plugin.core.execution.Exit", {"state": "RUNNING"}, ctx)


async def test_labels_map_list_and_json(ctx: FakeContext) -> None:
    t = "io.kestra.plugin.core.execution.Labels"
    assert (await run_task(t, {"labels": {"env": "prod", "n": 3}}, ctx)).outputs == {
        "labels": {"env": "prod", "n": "3"}
    }
    listed = await run_task(t, {"labels": [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}]}, ctx)
    assert listed.outputs == {"labels": {"a": "1", "b": "2"}}
    assert (await run_task(t, {"labels": '{"x": "y"}'}, ctx)).outputs == {"labels": {"x": "y"}}


async def test_labels_rejects_system_and_garbage(ctx: FakeContext) -> None:
    t = "io.kestra.plugin.core.execution.Labels"
    with pytest.raises(TaskFailed, match="System labels"):
        await run_task(t, {"labels": {"system.correlationId": "x"}}, ctx)
    with pytest.raises(TaskFailed, match="not a JSON"):
        await run_task(t, {"labels": "{nope"}, ctx)
    with pytest.raises(TaskFailed, match="key, value"):
        await run_task(t, {"labels": ["a"]}, ctx)


async def test_sleep(ctx: FakeContext) -> None:
    start = time.monotonic()
    result = await run_task("io.kestra.plugin.core.flow.Sleep", {"duration": "PT0.2S"}, ctx)
    assert result.state == "SUCCESS"
    assert 0.18 <= time.monotonic() - start < 2
    assert ctx.logs == [("INFO", "Waiting for PT0.2S")]


async def test_sleep_is_cancellable(ctx: FakeContext) -> None:
    start = time.monotonic()
    with anyio.move_on_after(0.1) as scope:
        await run_task("io.kestra.plugin.core.flow.Sleep", {"duration": "PT30S"}, ctx)
    assert scope.cancelled_caught
    assert time.monotonic() - start < 2


async def test_sleep_bad_duration(ctx: FakeContext) -> None:
    with pytest.raises(TaskFailed, match="duration"):
        await run_task("io.kestra.plugin.core.flow.Sleep", {"duration": "soon"}, ctx)
    with pytest.raises(TaskFailed, match="negative"):
        await run_task("io.kestra.plugin.core.flow.Sleep", {"duration": "-PT1S"}, ctx)


async def test_assert_names_the_failed_expression(ctx: FakeContext) -> None:
    from plugins.core.execution import Assert, run_assert

    await run_assert(Assert(conditions=["true", "1"]), ctx)
    with pytest.raises(TaskFailed, match="boom"):
        await run_assert(Assert(conditions=["true", "false"], errorMessage="boom"), ctx)
    assert any("Assertion `false` failed (condition 2)" in line for _, line in ctx.logs)
