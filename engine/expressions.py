"""Kestra's Pebble expression dialect, implemented on Jinja2's immutable sandbox.

Templates are translated from Pebble to Jinja once (``engine._expr.translate``) and compiled into an
LRU cache keyed by source string, so rendering a known template only costs a Jinja render.

Kestra semantics kept: undefined variables are errors (except under ``??``, ``???``, ``is defined``,
``is null`` and ``default``); ``null`` prints as nothing, booleans as ``true``/``false``, maps and
lists as compact JSON, floats like Java (``1.0``); integer ``/`` and ``%`` truncate like Java; filter
and function names, argument names and operator precedences are Pebble's.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from typing import Any

from engine.core.errors import ExpressionError
from engine.core.masking import masked
from engine.inputs import load_yaml

from ._expr import core, names, walk
from ._expr.library import step_functions
from ._expr.logs import error_logs_function
from ._expr.translate import FUNCTION_PREFIX

__all__ = [
    "FUNCTION_PREFIX",
    "KNOWN_FUNCTIONS",
    "RUNTIME_FUNCTIONS",
    "Expressions",
    "StepTemplates",
    "check",
    "env_vars",
    "error_logs_function",
    "has_expression",
    "input_reads",
    "unknown_functions",
]

# The functions ``engine.runtime.make_expressions`` adds over the store and the environment (a
# test holds the two lists together): a template may call them though the library lacks them.
RUNTIME_FUNCTIONS = frozenset(
    ("secret", "kv", "read", "fileSize", "isFileEmpty", "fileExists", "fileURI", "errorLogs")
)
KNOWN_FUNCTIONS = core.LIBRARY_FUNCTIONS | RUNTIME_FUNCTIONS


@functools.cache
def env_vars() -> dict[str, str]:
    """Kestra exposes OS variables prefixed ENV_ as ``envs.<name lower-case>`` (read once per process)."""
    return {k[4:].lower(): v for k, v in os.environ.items() if k.startswith("ENV_")}


def has_expression(value: str) -> bool:
    """Does the string contain ``{{`` or ``{%``?"""
    return "{{" in value or "{%" in value


def check(template: str) -> None:
    """Raise ``ExpressionError`` naming the template and the problem when it does not parse.

    Never evaluates anything. Unknown filters and tests are reported; unknown functions are listed by
    ``unknown_functions``.
    """
    if "{" not in template:
        return
    core.check_template(template)


def unknown_functions(template: str) -> list[str]:
    """The functions the template calls that are neither the library's nor the runtime's
    (``KNOWN_FUNCTIONS``); [] if it does not parse (``check`` says why)."""
    if "(" not in template:
        return []
    try:
        called = names.called_functions(core.check_template(template))
    except ExpressionError:
        return []
    return [name for name in called if name not in KNOWN_FUNCTIONS]


def input_reads(template: str) -> list[str]:
    """The input ids the template reads for certain (``inputs.x`` unguarded); [] if it does not parse."""
    if "inputs" not in template:
        return []
    try:
        return names.certain_inputs(core.check_template(template))
    except ExpressionError:
        return []


class Expressions:
    """Renders Kestra expressions; ``functions`` adds global functions (sync or async callables).

    Async functions only work through :meth:`render_async` / :meth:`render_value_async`.
    """

    def __init__(self, functions: Mapping[str, Callable[..., Any]] | None = None) -> None:
        self._functions = dict(functions or {})
        self._sync_globals = core.base_globals(False, self._functions)
        self._async_globals = core.base_globals(True, self._functions)

    @property
    def functions(self) -> Mapping[str, Callable[..., Any]]:
        """The functions injected at construction (``secret``, ``kv``, ``read``...)."""
        return self._functions

    def _merged(self, variables: Mapping[str, Any], is_async: bool) -> dict[str, Any]:
        merged = (self._async_globals if is_async else self._sync_globals).copy()
        merged.update(variables)
        return merged

    def for_step(self, now: str, seed: str, envs: Mapping[str, str] | None = None) -> StepTemplates:
        """These expressions bound to one decider step (``engine.core.ports.Templates``)."""
        return StepTemplates(self, now, seed, env_vars() if envs is None else envs)

    # ----------------------------------------------------------------------------------------- sync

    def render(self, template: str, variables: Mapping[str, Any]) -> str:
        """Render a template to text (Kestra's stringify rendering)."""
        if not walk.needs_render(template):
            return template
        c = core.compile_template(template, False)
        return core.render_compiled(c, template, self._merged(variables, False))

    def render_value(self, value: Any, variables: Mapping[str, Any]) -> Any:
        """Render every string inside ``value`` (dict keys included); other scalars unchanged."""
        merged: dict[str, Any] | None = None

        def render(text: str) -> str:
            nonlocal merged
            merged = merged if merged is not None else self._merged(variables, False)
            return core.render_compiled(core.compile_template(text, False), text, merged)

        if isinstance(value, str):  # the common case, without the walk
            return render(value) if walk.needs_render(value) else value
        return walk.run_sync(walk.strings(value), render)

    def evaluate(self, expression: str, variables: Mapping[str, Any]) -> Any:
        """The typed value of one expression (``"inputs.x > 3"`` or ``"{{ inputs.x > 3 }}"``)."""
        c = core.compile_expression(expression, False)
        return core.evaluate_compiled(c, self._merged(variables, False))

    # ---------------------------------------------------------------------------------------- async

    async def render_async(self, template: str, variables: Mapping[str, Any]) -> str:
        """Like :meth:`render`, and async functions are awaited."""
        if not walk.needs_render(template):
            return template
        c = core.compile_template(template, True)
        return await core.render_compiled_async(c, template, self._merged(variables, True))

    async def render_value_async(self, value: Any, variables: Mapping[str, Any]) -> Any:
        """Like :meth:`render_value`, and async functions are awaited."""
        merged: dict[str, Any] | None = None

        async def render(text: str) -> str:
            nonlocal merged
            merged = merged if merged is not None else self._merged(variables, True)
            return await core.render_compiled_async(core.compile_template(text, True), text, merged)

        return await walk.run_async(walk.strings(value), render)

    async def evaluate_async(self, expression: str, variables: Mapping[str, Any]) -> Any:
        """Like :meth:`evaluate`, and async functions are awaited."""
        c = core.compile_expression(expression, True)
        return await core.evaluate_compiled_async(c, self._merged(variables, True))


class StepTemplates:
    """``Expressions`` for one decider step: ``now()`` is the step's time and ``uuid()``, ``id()``,
    ``randomInt()`` are drawn from a generator seeded by the step (execution id and sequence)."""

    def __init__(self, expressions: Expressions, now: str, seed: str, envs: Mapping[str, str]) -> None:
        self._expressions = expressions
        self._now = now
        self._seed = seed
        self._functions: dict[str, Callable[..., Any]] | None = None  # made on the first render
        self._envs = envs
        self._secrets: set[str] = set()

    def _step_functions(self) -> dict[str, Callable[..., Any]]:
        if self._functions is not None:
            return self._functions
        # Under the prefixed names the translated templates call (``now()`` -> ``_pbf_now()``):
        # unprefixed, they would be plain variables and every call would reach the global, unbound ones.
        functions = {FUNCTION_PREFIX + k: f for k, f in step_functions(self._now, self._seed).items()}
        read_secret = self._expressions.functions.get("secret")
        if read_secret is not None:

            def secret(name: str) -> Any:
                value = read_secret(name)
                self._secrets.add(str(value))
                return value

            functions[FUNCTION_PREFIX + "secret"] = secret
        self._functions = functions
        return functions

    @property
    def envs(self) -> Mapping[str, str]:
        return self._envs

    def render_value(self, value: Any, variables: Mapping[str, Any]) -> Any:
        return self._expressions.render_value(value, {**self._step_functions(), **variables})

    def load_yaml(self, text: str) -> Any:
        return load_yaml(text)

    def masked(self, value: Any) -> Any:
        return masked(value, self._secrets)
