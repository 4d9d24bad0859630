"""debug.Return and the deprecated debug.Echo."""

from __future__ import annotations

import msgspec

from plugins.api import RunContext, TaskResult, runnable
from plugins.core.log import check_level


class Return(msgspec.Struct, frozen=True):
    format: str | None = None


class Echo(msgspec.Struct, frozen=True):
    format: str
    level: str = "INFO"


async def run_return(props: Return, ctx: RunContext) -> TaskResult:
    if props.format is not None:
        ctx.log("DEBUG", props.format)
    # Kestra's metric: the rendered text's length, tagged with the text
    ctx.metric("counter", "length", len(props.format or ""), {"format": props.format or ""})
    return TaskResult(outputs={"value": props.format})


async def run_echo(props: Echo, ctx: RunContext) -> TaskResult:
    ctx.log(check_level(props.level), props.format)
    return TaskResult()


SPECS = [
    runnable(
        "io.kestra.plugin.core.debug.Return",
        Return,
        run_return,
        "Render `format` and return it as output `value`.",
    ),
    runnable(
        "io.kestra.plugin.core.debug.Echo",
        Echo,
        run_echo,
        "Deprecated: log `format` at `level`; use log.Log.",
    ),
]
