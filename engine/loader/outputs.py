"""Flow ``outputs``: ids, a value (usually an expression) and a type among the input types."""

from __future__ import annotations

from typing import Any

from engine.core.model import Output
from engine.loader.checker import Checker
from engine.loader.inputs import INPUT_TYPES
from engine.yamlpos import child_path

__all__ = ["outputs"]

_OUTPUT_KEYS = ("id", "type", "value", "description", "displayName", "required")


def outputs(ctx: Checker, value: Any, path: str) -> tuple[Output, ...]:
    result: list[Output] = []
    seen: set[str] = set()
    for sub, data in ctx.maps(value, path, "an output definition (a map)"):
        ctx.unknown_keys(data, sub, _OUTPUT_KEYS, "output property")
        out_id = ctx.required_string(data, "id", sub, "output property")
        if "value" not in data:
            ctx.add(
                sub, "missing required output property 'value' — add 'value: \"{{ outputs.task.value }}\"'"
            )
        type_ = "STRING"
        if data.get("type") is not None:
            type_ = ctx.choice(data["type"], child_path(sub, "type"), INPUT_TYPES, "output type") or "STRING"
        ctx.collect_expressions(data.get("value"), child_path(sub, "value"))
        description = ctx.string(data.get("description"), child_path(sub, "description"))
        required = ctx.boolean(data.get("required"), child_path(sub, "required"), default=True)
        if out_id is None or not ctx.unique(seen, out_id, child_path(sub, "id"), "output"):
            continue
        result.append(
            Output(id=out_id, value=data.get("value"), type=type_, description=description, required=required)
        )
    return tuple(result)
