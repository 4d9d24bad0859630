"""output.OutputValues: expose rendered values as task outputs."""

from __future__ import annotations

from typing import Any

import msgspec

from plugins.api import RunContext, TaskResult, runnable


class OutputValues(msgspec.Struct, frozen=True):
    values: dict[str, Any] = msgspec.field(default_factory=dict)


async def run(props: OutputValues, ctx: RunContext) -> TaskResult:
    del ctx
    return TaskResult(outputs={"values": dict(props.values)})


SPECS = [
    runnable(
        "io.kestra.plugin.core.output.OutputValues",
        OutputValues,
        run,
        "Return the rendered `values` map as output `values`.",
    ),
]
