"""Fuzz what users send: flow YAML, expressions and --input values give a clear error or a result,
never a traceback (an exception that is not an EngineError), never a long hang, never a huge heap."""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.core.errors import EngineError
from engine.core.inputs import parse_cli_inputs
from engine.core.model import Flow, Input, Task
from engine.expressions import Expressions
from engine.inputs import resolve_inputs
from engine.loader.inputs import INPUT_TYPES
from engine.loader.loader import load_flow

FAST = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
MAX_SECONDS = 5.0
MAX_BYTES = 300 * 1024 * 1024


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux


@contextmanager
def bounded(what: str) -> Iterator[None]:
    """Each case: under 5 s of this process's CPU, and its peak memory grows by less than 300 MB.

    CPU time, not wall time: a hang is work (a loop, a huge string), and the machine's other load
    (a test suite beside a benchmark, seen at a load average of 20) must not fail a bounded case."""
    peak_before = _peak_rss()
    started = time.process_time()
    try:
        yield
    finally:
        took = time.process_time() - started
        grown = _peak_rss() - peak_before
    assert took < MAX_SECONDS, f"{what}: {took:.1f} s"
    assert grown < MAX_BYTES, f"{what}: the peak grew by {grown / 1e6:.0f} MB"


def clean_or_engine_error(what: str, call: Callable[[], Any]) -> None:
    with bounded(what), suppress(EngineError):
        call()


# Pieces a hostile or careless author puts in templates: operators that build, loops, deep nesting.
TEMPLATE_PARTS = st.sampled_from(
    [
        "{{ ", " }}", "{% for i in range(0, 100000) %}", "{% endfor %}", "('x' * 100000)", " * ",
        "100000", "range(0, 10**8)", "[1, 2] + [3]", "inputs.x", "outputs.a.b", "now()", "uuid()",
        "| join(',')", "| length", "'a' ~ 'b'", "??", " ? 1 : 2", "((((", "))))", "{{", "}}", "{%", "%}",
        "json('[1]')", "fromJson('{\"a\": 1}')", "render('{{ 1 }}')", "[[[[[[[[", "]]]]]]]]", "\"", "'",
    ]
)  # fmt: skip


@FAST
@given(st.lists(TEMPLATE_PARTS | st.text(max_size=8), max_size=14).map("".join))
def test_rendering_an_arbitrary_template(template: str) -> None:
    expressions = Expressions()
    clean_or_engine_error(template, lambda: expressions.render(template, {"inputs": {"x": 1}}))


def _flow_yaml(message: Any, extra: dict[str, Any]) -> str:
    doc: dict[str, Any] = {
        "id": "fuzz",
        "namespace": "io.fuzz",
        "tasks": [{"id": "t", "type": "io.kestra.plugin.core.log.Log", "message": message, **extra}],
    }
    return yaml.safe_dump(doc)


SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
)
KEYS = st.sampled_from(["retry", "timeout", "runIf", "disabled", "allowFailure", "level", "tasks", "inputs"])


@FAST
@given(VALUES, st.dictionaries(KEYS, VALUES, max_size=3))
def test_loading_a_flow_with_arbitrary_property_values(message: Any, extra: dict[str, Any]) -> None:
    text = _flow_yaml(message, extra)
    clean_or_engine_error(text[:200], lambda: load_flow(text))


@FAST
@given(st.text(max_size=300))
def test_loading_arbitrary_text_as_a_flow(text: str) -> None:
    clean_or_engine_error(text[:200], lambda: load_flow(text))


def test_loading_deeply_nested_and_aliased_yaml() -> None:
    deep = "id: f\nnamespace: n\ntasks: " + "[" * 5000 + "]" * 5000 + "\n"
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join('*' + p for p in [chr(ord(c) - 1)] * 10)}]\n" for c in "bcdefghij"
    )
    for text in (deep, bomb):
        clean_or_engine_error(text[:60], lambda text=text: load_flow(text))  # type: ignore[misc]


FLOW = Flow(
    id="f",
    namespace="n",
    tasks=(Task(id="t", type="x"),),
    inputs=tuple(Input(id=t.lower(), type=t, required=False) for t in INPUT_TYPES if t not in ("FILE",)),
)


@FAST
@given(st.sampled_from([i.id for i in FLOW.inputs]), st.text(max_size=60) | st.integers().map(str))
def test_arbitrary_input_values_on_the_command_line(input_id: str, value: str) -> None:
    def resolve() -> None:
        resolve_inputs(FLOW, parse_cli_inputs([f"{input_id}={value}"]))

    clean_or_engine_error(f"{input_id}={value}", resolve)
