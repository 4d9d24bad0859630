"""``io.example.greeting.Hello`` 2.0.0: a configurable greeting."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from plugins.api import RunContext, TaskResult, runnable

TYPE = "io.example.greeting.Hello"

EXAMPLE = """\
id: greet
namespace: company.team
tasks:
  - id: hello
    type: io.example.greeting.Hello
    name: "{{ inputs.name ?? 'World' }}"
    style: upper
"""


class Hello(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(description="Who to greet (an expression is rendered first)")]
    punctuation: Annotated[str, msgspec.Meta(description="What ends the greeting", max_length=3)] = "!"
    style: Annotated[Literal["plain", "upper"], msgspec.Meta(description="upper: shout the greeting")] = (
        "plain"
    )


class Outputs(msgspec.Struct, frozen=True):
    greeting: Annotated[str, msgspec.Meta(description="The greeting, as logged")]
    length: Annotated[int, msgspec.Meta(description="Its length in characters")]


async def run(props: Hello, ctx: RunContext) -> TaskResult:
    greeting = f"Hello, {props.name}{props.punctuation}"
    if props.style == "upper":
        greeting = greeting.upper()
    ctx.log("INFO", greeting)
    return TaskResult(outputs=msgspec.to_builtins(Outputs(greeting, len(greeting))))


SPEC = runnable(
    TYPE,
    Hello,
    run,
    "Greet someone, with a punctuation and a style.",
    version="2.0.0",
    outputs=Outputs,
    examples=(EXAMPLE,),
)
