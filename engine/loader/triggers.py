"""Flow ``triggers``: ids and types; a trigger type the registry declares has its properties checked."""

from __future__ import annotations

from typing import Any

from engine.core.model import Trigger
from engine.loader.checker import Checker, show
from engine.loader.props import validate_props
from engine.yamlpos import child_path

__all__ = ["triggers"]


def triggers(ctx: Checker, value: Any, path: str) -> tuple[Trigger, ...]:
    result: list[Trigger] = []
    seen: set[str] = set()
    for sub, data in ctx.maps(value, path, "a trigger definition (a map)"):
        trig_id = ctx.required_string(data, "id", sub, "trigger property")
        trig_type = ctx.required_string(data, "type", sub, "trigger property")
        disabled = ctx.boolean(data.get("disabled"), child_path(sub, "disabled"))
        props = {k: v for k, v in data.items() if k not in ("id", "type", "disabled")}
        declared = ctx.registry.trigger(trig_type) if trig_type is not None else None
        known = ctx.registry.trigger_types()
        if trig_type is not None and known and trig_type not in known:
            hint = ctx.registry.suggest_trigger(trig_type)
            ctx.add(child_path(sub, "type"), f"unknown trigger type {show(trig_type)} — {hint}")
        if declared is not None:
            props = validate_props(ctx, declared, props, sub)
        ctx.collect_expressions(props, sub)
        if trig_id is None or trig_type is None:
            continue
        if ctx.unique(seen, trig_id, child_path(sub, "id"), "trigger"):
            result.append(Trigger(id=trig_id, type=trig_type, props=props, disabled=disabled))
    return tuple(result)
