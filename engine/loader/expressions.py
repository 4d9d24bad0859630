"""Every template the sections collected: its syntax and the functions it calls, checked with
``engine.expressions``, and the inputs it certainly reads against the flow's declared ones."""

from __future__ import annotations

from engine.core.errors import Issue
from engine.expressions import KNOWN_FUNCTIONS, check, input_reads, unknown_functions
from engine.loader.checker import Checker, closest, show

__all__ = ["check_expressions"]

# Templates rendered against another execution (a trigger's conditions see the triggering one), for
# whichever task they end up on (defaults) or only if ``render()`` asks (``vars`` are exposed as
# written): an ``inputs.x`` there does not fail for certain.
_OTHER_CONTEXTS = ("triggers", "pluginDefaults", "taskDefaults", "variables")


def check_expressions(ctx: Checker) -> list[Issue]:
    """One issue per template that does not parse, calls an unknown function or reads an undeclared
    input (the caller decides: warning or error)."""
    found: list[Issue] = []
    for path, template in ctx.expressions:
        try:
            check(template)
        except Exception as exc:  # ExpressionError, but never let a checker bug hide other issues
            ctx.issue_to(found, path, f"{exc} — fix the template syntax")
            continue
        for name in unknown_functions(template):
            fix = closest(name, KNOWN_FUNCTIONS, "functions")
            if not fix.startswith("did you mean"):
                fix = "use one of the functions the engine has: " + ", ".join(sorted(KNOWN_FUNCTIONS))
            ctx.issue_to(found, path, f"unknown function '{name}()' in {show(template)} — {fix}")
        declared = ctx.input_ids
        if declared is None or _elsewhere(ctx, path):
            continue
        for name in input_reads(template):
            if name not in declared:
                fix = f"or fix the name ({closest(name, declared, 'inputs')})" if declared else ""
                ctx.issue_to(
                    found,
                    path,
                    f"{show(template)} reads 'inputs.{name}' but the flow declares no input '{name}' — "
                    f"declare it under 'inputs:' ('- id: {name}') {fix}".rstrip(),
                )
    return found


def _elsewhere(ctx: Checker, path: str) -> bool:
    if path.split(".", 1)[0].split("[", 1)[0] in _OTHER_CONTEXTS:
        return True
    return any(path == p or path.startswith((p + ".", p + "[")) for p in ctx.elsewhere)
