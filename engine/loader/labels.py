"""Labels (of a flow, of an SLA): a map of name to value, or Kestra's list of {key, value}."""

from __future__ import annotations

from typing import Any

from engine.loader.checker import Checker, scalar_key
from engine.yamlpos import child_path, index_path

__all__ = ["labels"]


def labels(ctx: Checker, value: Any, path: str) -> dict[str, str]:
    result: dict[str, str] = {}
    if value is None:
        return result
    if isinstance(value, dict):
        for k, v in value.items():
            sub = child_path(path, k)
            if isinstance(v, dict | list):
                ctx.wrong(sub, "a text label value", v, "write 'key: value' with a plain value")
                continue
            result[scalar_key(k)] = scalar_key(v)
        return result
    if isinstance(value, list):
        for i, item in enumerate(value):
            sub = index_path(path, i)
            if not isinstance(item, dict) or "key" not in item or "value" not in item:
                ctx.wrong(sub, "a label {key, value}", item, "write '- key: name' and 'value: text'")
                continue
            ctx.unknown_keys(item, sub, ("key", "value"), "label property")
            result[scalar_key(item["key"])] = scalar_key(item["value"])
        return result
    ctx.wrong(path, "a map of labels", value, "write 'name: value' pairs, or a list of {key, value}")
    return result
