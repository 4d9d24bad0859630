"""``io.example.greeting.Hello`` 1.0.0: ``Hello, <name>!``."""

from __future__ import annotations

from typing import Annotated

import msgspec

from plugins.api import RunContext, TaskResult, runnable

TYPE = "io.example.greeting.Hello"


class Hello(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(description="Who to greet (an expression is rendered first)")]


class Outputs(msgspec.Struct, frozen=True):
    greeting: Annotated[str, msgspec.Meta(description="The greeting, as logged")]


async def run(props: Hello, ctx: RunContext) -> TaskResult:
    greeting = f"Hello, {props.name}!"
    ctx.log("INFO", greeting)
    return TaskResult(outputs=msgspec.to_builtins(Outputs(greeting)))


SPEC = runnable(
    TYPE,
    Hello,
    run,
    "Greet someone (1.0.0: a fixed format).",
    version="1.0.0",
    outputs=Outputs,
)
