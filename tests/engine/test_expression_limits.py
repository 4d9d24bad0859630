"""Expressions are untrusted input: what one may build or loop over is bounded, with a clear error."""

from __future__ import annotations

import time

import pytest

from engine._expr import limits
from engine.core.errors import ExpressionError
from engine.expressions import Expressions

E = Expressions()


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ ('x' * 100000) * 100000 }}", "the repeated value would be 10,000,000,000 long"),
        ("{{ 100000 * ('x' * 100000) }}", "the repeated value would be 10,000,000,000 long"),
        ("{{ [1, 2] * 1000000 }}", "the repeated value would be 2,000,000 long"),
        ("{{ range(0, 100000000) | length }}", "the range would be 100,000,001 long"),
        ("{{ range(0.0, 100000000.0) | length }}", "the range would be 100,000,001 long"),
    ],
)
def test_values_too_big_are_refused_before_they_are_built(template: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        E.render(template, {})


def test_concatenation_that_grows_past_the_limit_is_refused() -> None:
    big = "x" * limits.MAX_CHARS
    with pytest.raises(ExpressionError, match="the joined value"):
        E.render("{{ a + 'y' }}", {"a": big})


def test_nested_loops_stop_at_the_step_budget() -> None:
    template = "{% for i in range(0, 100000) %}{% for j in range(0, 100000) %}{% endfor %}{% endfor %}"
    started = time.perf_counter()
    with pytest.raises(ExpressionError, match="more than 1,000,000 steps"):
        E.render(template, {})
    assert time.perf_counter() - started < 30  # a bound on the test, not a benchmark


@pytest.mark.anyio
async def test_the_budget_holds_in_async_rendering_too() -> None:
    template = "{% for i in range(0, 2000) %}{% for j in range(0, 2000) %}{% endfor %}{% endfor %}"
    with pytest.raises(ExpressionError, match="steps"):
        await E.render_async(template, {})


def test_ordinary_expressions_are_untouched() -> None:
    assert (
        E.render("{{ 'ab' * 3 }}|{{ [1, 2] + [3] }}|{{ 2 * 21 }}|{{ 'a' + 'b' }}", {})
        == "ababab|[1,2,3]|42|ab"
    )
    assert E.render("{% for i in range(1, 3) %}{{ i }}{% endfor %}", {}) == "123"


def test_each_rendering_has_its_own_budget() -> None:
    template = "{% for i in range(1, 600000) %}{% endfor %}ok"
    assert E.render(template, {}) == "ok"
    assert E.render(template, {}) == "ok"  # the first rendering's steps are not charged to the second
