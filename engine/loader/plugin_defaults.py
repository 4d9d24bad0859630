"""Flow ``pluginDefaults`` (formerly ``taskDefaults``) and their merge into each task they match.

Kestra's order: a non-forced default fills what the task leaves out (the first matching default
wins); a forced one overrides the task (the first matching forced default wins).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from engine.core.errors import PluginNotFound
from engine.core.model import PluginDefault
from engine.loader.checker import Checker
from engine.yamlpos import child_path

__all__ = ["apply_defaults", "plugin_defaults"]


def plugin_defaults(ctx: Checker, value: Any, path: str) -> tuple[PluginDefault, ...]:
    result: list[PluginDefault] = []
    for sub, data in ctx.maps(value, path, "a plugin default (a map with type and values)"):
        ctx.unknown_keys(data, sub, ("type", "values", "forced"), "plugin default property")
        type_ = ctx.required_string(data, "type", sub, "plugin default property")
        values = ctx.mapping(data.get("values"), child_path(sub, "values"))
        if values is None and "values" not in data:
            ctx.add(sub, "missing 'values' — add 'values:' with the properties to default")
        forced = ctx.boolean(data.get("forced"), child_path(sub, "forced"))
        if type_ is None:
            continue
        if values:
            ctx.collect_expressions(values, child_path(sub, "values"))
        result.append(PluginDefault(type=type_, values=dict(values or {}), forced=forced))
    return tuple(result)


def apply_defaults(
    ctx: Checker, data: dict[Any, Any], canonical: str | None, raw_type: str
) -> dict[Any, Any]:
    """The task's properties with the flow's matching defaults merged in."""
    if not ctx.plugin_defaults:
        return data
    names = {raw_type}
    if canonical:
        names.add(canonical)

    def matches(default_type: str) -> bool:
        targets = {default_type}
        with contextlib.suppress(PluginNotFound):  # a prefix (a whole plugin group) names no plugin
            targets.add(ctx.registry.resolve(default_type).type)
        return any(n == t or n.startswith(t + ".") for n in names for t in targets)

    result = data
    for d in ctx.plugin_defaults:
        if not d.forced and matches(d.type):
            result = _deep_merge(_strip(d.values), result)
    for d in reversed(ctx.plugin_defaults):
        if d.forced and matches(d.type):
            result = _deep_merge(result, _strip(d.values))
    return result


def _strip(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k not in ("id", "type")}


def _deep_merge(base: Mapping[Any, Any], override: Mapping[Any, Any]) -> dict[Any, Any]:
    """``base`` updated with ``override``; nested maps are merged, everything else replaced."""
    result = dict(base)
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(result.get(k), dict):
            result[k] = _deep_merge(result[k], v)
        else:
            result[k] = v
    return result
