"""engine.yamlpos: YAML with positions, and the bound on alias expansion ("billion laughs")."""

from __future__ import annotations

import itertools
import time

import pytest
import yaml

from engine.core.errors import FlowValidationError, InputError
from engine.core.model import Input
from engine.inputs import coerce_input
from engine.loader.loader import load_flow
from engine.yamlpos import MAX_ALIAS_NODES, load_yaml, safe_load


def alias_bomb(levels: int = 10, width: int = 9) -> str:
    """``levels`` nested anchors, each a list of ``width`` aliases of the one before: width**levels nodes."""
    names = [f"l{i}" for i in range(levels)]
    lines = [f"{names[0]}: &{names[0]} [" + ", ".join(['"lol"'] * width) + "]"]
    for prev, name in itertools.pairwise(names):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * width) + "]")
    return "\n".join(lines) + "\n"


def test_yamlpos_positions() -> None:
    data, pos = load_yaml("a:\n  b: [1, 2]\n  c:\n    - x: 1\n      y: yes\nd: 2023-01-01\non: true\n")
    assert data == {"a": {"b": [1, 2], "c": [{"x": 1, "y": "yes"}]}, "d": "2023-01-01", "on": True}
    assert pos.key("a.b") == (2, 3)
    assert pos.value("a.b[1]") == (2, 10)
    assert pos.value("a.c[0]") == (4, 7)
    assert pos.key("a.c[0].y") == (5, 7) and pos.value("a.c[0].y") == (5, 10)
    assert pos.at("a.c[0].missing") == (4, 7)


def test_alias_bomb_is_refused_quickly() -> None:
    text = alias_bomb()
    started = time.process_time()  # CPU, not wall time: the bound is on work, not on the machine's load
    with pytest.raises(FlowValidationError) as info:
        load_yaml(text, file="bomb.yml")
    assert time.process_time() - started < 0.5
    (issue,) = info.value.issues
    # the outermost alias of the expansion that went over: l5's first item, as written
    assert (issue.path, issue.line, issue.column, issue.file) == ("l5[0]", 6, 10, "bomb.yml")
    assert f"expand to more than {MAX_ALIAS_NODES} nodes" in issue.message
    assert "write the repeated part out" in issue.message


def test_alias_bomb_in_a_flow_and_in_a_yaml_input() -> None:
    flow = "id: f\nnamespace: n\nvariables:\n" + "".join(
        "  " + line + "\n" for line in alias_bomb().splitlines()
    )
    with pytest.raises(FlowValidationError) as info:
        load_flow(flow + "tasks: []\n")
    assert info.value.issues[0].path.startswith("variables.l5[0]")
    started = time.process_time()
    with pytest.raises(FlowValidationError):
        safe_load(alias_bomb())
    assert time.process_time() - started < 0.5
    with pytest.raises(InputError, match="alias bomb"):
        coerce_input(Input(id="doc", type="YAML"), alias_bomb())


def test_alias_bound_is_exact_and_spares_ordinary_anchors() -> None:
    items = "[" + ", ".join(["1"] * 999) + "]"  # the list and its items: 1,000 nodes a reuse
    uses = MAX_ALIAS_NODES // 1000

    def reused(times: int) -> str:
        return f"a: &a {items}\nb: [" + ", ".join(["*a"] * times) + "]\n"

    assert len(safe_load(reused(uses))["b"]) == uses
    with pytest.raises(FlowValidationError):
        safe_load(reused(uses + 1))
    data, _ = load_yaml("base: &b {x: 1}\nt: {<<: *b, y: 2}\nme: &me [*me]\n")
    assert data == {"base": {"x": 1}, "t": {"x": 1, "y": 2}, "me": [[]]}


def test_safe_load_keeps_yaml_safe_load() -> None:
    text = "d: 2023-01-01\non: yes\nn: ~\n"
    assert safe_load(text) == yaml.safe_load(text)
    with pytest.raises(yaml.YAMLError):
        safe_load("a: [1,\n")
    assert safe_load("") is None


def test_nesting_too_deep_is_an_issue_not_a_crash() -> None:
    text = "a: " + "[" * 600 + "]" * 600 + "\n"
    for parse in (lambda: load_yaml(text, file="deep.yml"), lambda: safe_load(text)):
        with pytest.raises(FlowValidationError) as info:
            parse()
        (issue,) = info.value.issues
        assert "nested too deep" in issue.message and issue.line == 1
    assert load_yaml("a: " + "[" * 50 + "]" * 50)[0]["a"][0][0]  # a deep but sane document is fine
