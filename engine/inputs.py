"""Typed execution inputs with the YAML parser bound (the core's coercion brings none of its own).

YAML inputs are written by whoever starts an execution: they are parsed with the loader's bounded
``yaml.safe_load``, which refuses alias bombs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from engine.core import inputs as core
from engine.core.errors import InputError
from engine.core.model import Flow, Input
from engine.yamlpos import safe_load

__all__ = ["check_known_inputs", "coerce_input", "load_yaml", "resolve_inputs"]


def load_yaml(text: str) -> Any:
    return safe_load(text)


def resolve_inputs(
    flow: Flow, given: Mapping[str, Any], render: Callable[[str, dict[str, Any]], str] | None = None
) -> dict[str, Any]:
    return core.resolve_inputs(flow, given, render, load_yaml=load_yaml)


def coerce_input(inp: Input, value: Any) -> Any:
    return core.coerce_input(inp, value, load_yaml=load_yaml)


def check_known_inputs(flow: Flow, given: Mapping[str, Any]) -> None:
    """Refuse a name the flow does not declare (a typo would otherwise be dropped in silence), with
    the names it does declare. For what a person or a client gives (``--input``, the API's body);
    a Subflow's or a trigger's inputs go through ``resolve_inputs`` alone."""
    declared = [inp.id for inp in flow.inputs]
    unknown = [name for name in given if name not in declared]
    if not unknown:
        return
    names = ", ".join(declared) if declared else "none: it declares no inputs"
    problems = [(name, f"flow {flow.namespace}.{flow.id} has no input {name!r}") for name in unknown]
    error = InputError(
        f"unknown input{'s' if len(unknown) > 1 else ''} {', '.join(repr(n) for n in unknown)} for flow "
        f"{flow.namespace}.{flow.id}; its inputs: {names}"
    )
    error.problems = problems  # type: ignore[attr-defined]
    raise error
