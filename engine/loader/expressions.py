"""The syntax of every template the sections collected, checked with ``engine.expressions.check``."""

from __future__ import annotations

from engine.core.errors import Issue
from engine.expressions import check
from engine.loader.checker import Checker

__all__ = ["check_expressions"]


def check_expressions(ctx: Checker) -> list[Issue]:
    """One issue per template that does not parse (the caller decides: warning or error)."""
    found: list[Issue] = []
    for path, template in ctx.expressions:
        try:
            check(template)
        except Exception as exc:  # ExpressionError, but never let a checker bug hide other issues
            ctx.issue_to(found, path, f"{exc} — fix the template syntax")
    return found
