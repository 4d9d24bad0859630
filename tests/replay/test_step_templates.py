"""The templates bound to a decider step: ``now()`` is the step's time, ``uuid()``, ``id()`` and
``randomInt()`` come from the step's seed (the replayer depends on it: tests/replay/test_replay.py)."""

from __future__ import annotations

from engine.expressions import Expressions

TEMPLATE = "{{ now() }} {{ uuid() }} {{ id() }} {{ randomInt(0, 1000000) }}"


def test_now_is_the_step_time() -> None:
    rendered = Expressions().for_step("2020-01-02T03:04:05.678Z", "e:1").render_value("{{ now() }}", {})
    assert rendered.startswith("2020-01-02T03:04:05.678")


def test_the_same_step_renders_the_same_values() -> None:
    first = Expressions().for_step("2020-01-02T03:04:05Z", "e:1").render_value(TEMPLATE, {})
    again = Expressions().for_step("2020-01-02T03:04:05Z", "e:1").render_value(TEMPLATE, {})
    other = Expressions().for_step("2020-01-02T03:04:05Z", "e:2").render_value(TEMPLATE, {})
    assert first == again
    assert first.split()[1:] != other.split()[1:]


def test_a_variable_named_like_a_function_does_not_hide_it() -> None:
    rendered = (
        Expressions()
        .for_step("2020-01-02T03:04:05Z", "e:1")
        .render_value("{{ now }} {{ now() }}", {"now": "var"})
    )
    assert rendered.startswith("var 2020-01-02T03:04:05")
