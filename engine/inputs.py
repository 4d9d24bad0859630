"""Typed execution inputs with the YAML parser bound (the core's coercion brings none of its own).

YAML inputs are written by whoever starts an execution: they are parsed with the loader's bounded
``yaml.safe_load``, which refuses alias bombs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from engine.core import inputs as core
from engine.core.model import Flow, Input
from engine.yamlpos import safe_load

__all__ = ["coerce_input", "load_yaml", "resolve_inputs"]


def load_yaml(text: str) -> Any:
    return safe_load(text)


def resolve_inputs(
    flow: Flow, given: Mapping[str, Any], render: Callable[[str, dict[str, Any]], str] | None = None
) -> dict[str, Any]:
    return core.resolve_inputs(flow, given, render, load_yaml=load_yaml)


def coerce_input(inp: Input, value: Any) -> Any:
    return core.coerce_input(inp, value, load_yaml=load_yaml)
