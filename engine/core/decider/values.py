"""Kestra's text forms of loop values and the lenient numbers flowable properties take."""

from __future__ import annotations

import json
from typing import Any

from engine.core.errors import EngineError


def java_text(value: Any) -> str:
    """How Kestra (Java's toString) prints a value in its messages: [1, null, {key=a, value=b}]."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={java_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(java_text(v) for v in value) + "]"
    return str(value)


def lenient_int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def as_list(value: Any) -> list[Any]:
    if isinstance(value, str):
        text = value.strip()
        try:
            value = json.loads(text) if text else []
        except ValueError as exc:
            raise EngineError(f"values: expected a list or a JSON array, got {value!r}") from exc
    if isinstance(value, dict):
        return [{"key": k, "value": v} for k, v in value.items()]
    if not isinstance(value, list | tuple):
        raise EngineError(f"values: expected a list or a JSON array, got {value!r}")
    return list(value)


def value_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"))
