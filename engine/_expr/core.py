"""The two Jinja environments (sync and async), the template cache and error translation."""

from __future__ import annotations

import contextlib
import inspect
import math
import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any, NoReturn

from jinja2 import (
    StrictUndefined,
    TemplateError,
    TemplateSyntaxError,
    Undefined,
    UndefinedError,
    nodes,
    pass_context,
)
from jinja2.compiler import CodeGenerator, Frame
from jinja2.environment import Template
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from engine.core.errors import EngineError, ExpressionError

from . import limits, walk
from .dates import DateError
from .errors import FilterError
from .library import FILTERS, FUNCTIONS, HELPERS, TESTS, is_nullish, is_undefined
from .translate import FUNCTION_PREFIX, PebbleSyntaxError, to_jinja, translate_expression
from .values import kestra_str

__all__ = [
    "ASYNC_ENV",
    "LIBRARY_FUNCTIONS",
    "SYNC_ENV",
    "compile_expression",
    "compile_template",
    "convert_error",
    "render_compiled",
    "render_compiled_async",
]

MAX_RENDERING = 100
# Every function a template may call without the runtime: the library's and the two that render.
LIBRARY_FUNCTIONS = frozenset((*FUNCTIONS, "render", "renderOnce"))
_RESULT = "_pb_result"


# ---------------------------------------------------------------------------------------- undefined


class UndefinedAccess(UndefinedError):
    """A value that does not exist was used; carries what was looked up where."""

    def __init__(self, message: str, name: str | None, obj: Any) -> None:
        super().__init__(message)
        self.name = name
        self.obj = obj


class PebbleUndefined(StrictUndefined):
    """Strict about being *used*, but chainable: ``a.missing.b`` stays undefined (so ``??``,
    ``is defined``, ``is null`` and ``default`` can inspect it) and only fails when printed, iterated,
    compared, called or computed with; the error names the first missing attribute."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        if name[:2] == "__":
            raise AttributeError(name)
        return self

    def __getitem__(self, key: Any) -> Any:
        return self

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise UndefinedAccess(self._undefined_message, self._undefined_name, self._undefined_obj)


# Jinja binds these operators to the base class' failure function: re-bind them to ours
for _name in [
    "__add__",
    "__radd__",
    "__sub__",
    "__rsub__",
    "__mul__",
    "__rmul__",
    "__div__",
    "__rdiv__",
    "__truediv__",
    "__rtruediv__",
    "__floordiv__",
    "__rfloordiv__",
    "__mod__",
    "__rmod__",
    "__pos__",
    "__neg__",
    "__call__",
    "__lt__",
    "__le__",
    "__gt__",
    "__ge__",
    "__int__",
    "__float__",
    "__complex__",
    "__pow__",
    "__rpow__",
    "__iter__",
    "__str__",
    "__len__",
    "__eq__",
    "__ne__",
    "__bool__",
    "__hash__",
    "__contains__",
    "__aiter__",
]:
    setattr(PebbleUndefined, _name, PebbleUndefined._fail_with_undefined_error)


# ------------------------------------------------------------------------------------- environment


class _CodeGenerator(CodeGenerator):
    """Compiles ``_pb_nc(a, b)`` / ``_pb_uc(a, b)`` lazily: ``b`` is only evaluated when needed,
    and every ``for`` loop over ``environment.pb_counted(...)`` (the rendering's loop budget)."""

    _pb_tmp = 0

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        counted = nodes.Call(nodes.EnvironmentAttribute("pb_counted"), [node.iter], [], None, None)
        super().visit_For(
            nodes.For(
                node.target, counted, node.body, node.else_, node.test, node.recursive, lineno=node.lineno
            ),
            frame,
        )

    def visit_Call(self, node: nodes.Call, frame: Frame, forward_caller: bool = False) -> None:
        fn = node.node
        if (
            isinstance(fn, nodes.Name)
            and fn.name in ("_pb_nc", "_pb_uc")
            and len(node.args) == 2
            and not node.kwargs
            and node.dyn_args is None
            and node.dyn_kwargs is None
        ):
            self._pb_tmp += 1
            tmp = f"t_pbnc_{self._pb_tmp}"
            check = "pb_is_nullish" if fn.name == "_pb_nc" else "pb_is_undefined"
            self.write(f"({tmp} if not environment.{check}(({tmp} := ")
            self.visit(node.args[0], frame)
            self.write(")) else ")
            self.visit(node.args[1], frame)
            self.write(")")
            return
        if forward_caller:  # pragma: no cover - call blocks are not part of the Pebble dialect
            super().visit_Call(node, frame, forward_caller=True)
        else:
            super().visit_Call(node, frame)


def _java_div(left: Any, right: Any) -> Any:
    if isinstance(left, int) and isinstance(right, int) and not isinstance(left, bool):
        if right == 0:
            raise ZeroDivisionError("/ by zero")
        q = abs(left) // abs(right)
        return q if (left >= 0) == (right >= 0) else -q
    if right == 0 and isinstance(left, int | float) and isinstance(right, int | float):
        if left == 0 or math.isnan(left):
            return math.nan
        return math.copysign(math.inf, left) * math.copysign(1.0, right)
    return left / right


def _java_mod(left: Any, right: Any) -> Any:
    if isinstance(left, int) and isinstance(right, int) and not isinstance(left, bool):
        if right == 0:
            raise ZeroDivisionError("/ by zero")
        r = abs(left) % abs(right)
        return -r if left < 0 else r
    if isinstance(left, int | float) and isinstance(right, int | float):
        return math.fmod(left, right) if right != 0 else math.nan
    return left % right


class PebbleEnvironment(ImmutableSandboxedEnvironment):
    code_generator_class = _CodeGenerator
    intercepted_binops = frozenset({"/", "%", "*", "+"})

    pb_counted = staticmethod(limits.counted)
    pb_is_nullish = staticmethod(is_nullish)
    pb_is_undefined = staticmethod(is_undefined)

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict or isinstance(obj, Mapping):
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        if isinstance(obj, Undefined):
            return obj
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(argument, Undefined):
            return argument
        if type(obj) is dict or isinstance(obj, Mapping):
            try:
                return obj[argument]
            except (KeyError, TypeError):
                if not isinstance(argument, str):
                    try:
                        return obj[kestra_str(argument)]
                    except (KeyError, TypeError):
                        pass
                return self.undefined(obj=obj, name=argument)
        if isinstance(obj, Undefined):
            return obj
        if isinstance(argument, str) and argument.isdigit() and isinstance(obj, Sequence):
            argument = int(argument)
        return super().getitem(obj, argument)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        for v in (left, right):
            if isinstance(v, Undefined):
                v._fail_with_undefined_error()
        if operator == "/":
            return _java_div(left, right)
        if operator == "%":
            return _java_mod(left, right)
        if operator == "*":
            return limits.times(left, right)
        if operator == "+":
            return limits.plus(left, right)
        return super().call_binop(context, operator, left, right)  # pragma: no cover

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(__obj, Undefined):
            __obj._fail_with_undefined_error()
        rv = super().call(__context, __obj, *args, **kwargs)
        if not __self.is_async and inspect.iscoroutine(rv):
            rv.close()
            name = getattr(__obj, "__name__", repr(__obj))
            raise ExpressionError(f"function '{name}' is asynchronous: it can only be used with render_async")
        return rv


def _build(is_async: bool) -> PebbleEnvironment:
    env = PebbleEnvironment(
        autoescape=False,
        keep_trailing_newline=True,
        undefined=PebbleUndefined,
        finalize=kestra_str,
        enable_async=is_async,
        cache_size=0,
        auto_reload=False,
    )
    env.filters.clear()
    env.filters.update(FILTERS)
    env.tests.clear()
    env.tests.update(TESTS)
    env.globals.clear()
    env.globals.update(HELPERS)
    return env


SYNC_ENV = _build(False)
ASYNC_ENV = _build(True)


# -------------------------------------------------------------------------------------- render()


def _too_many_renderings(value: str) -> Exception:
    return ExpressionError(f'too many rendering attempts for "{value}"')


def _render_fn_sync(context: Context, toRender: Any, recursive: bool = True) -> Any:
    if isinstance(toRender, Undefined):
        toRender._fail_with_undefined_error()
    merged = context.get_all()
    return walk.run_sync(
        walk.until_fixed(toRender, bool(recursive), MAX_RENDERING, _too_many_renderings),
        lambda text: render_compiled(compile_template(text, False), text, merged),
    )


async def _render_fn_async(context: Context, toRender: Any, recursive: bool = True) -> Any:
    if isinstance(toRender, Undefined):
        toRender._fail_with_undefined_error()
    merged = context.get_all()
    return await walk.run_async(
        walk.until_fixed(toRender, bool(recursive), MAX_RENDERING, _too_many_renderings),
        lambda text: render_compiled_async(compile_template(text, True), text, merged),
    )


def _render_once_sync(context: Context, toRender: Any) -> Any:
    return _render_fn_sync(context, toRender, False)


async def _render_once_async(context: Context, toRender: Any) -> Any:
    return await _render_fn_async(context, toRender, False)


def base_globals(is_async: bool, extra: Mapping[str, Callable[..., Any]] | None) -> dict[str, Any]:
    """The functions (prefixed) and helpers every render context starts from."""
    out: dict[str, Any] = dict(HELPERS)
    for name, fn in FUNCTIONS.items():
        out[FUNCTION_PREFIX + name] = fn
    if is_async:
        out[FUNCTION_PREFIX + "render"] = pass_context(_render_fn_async)
        out[FUNCTION_PREFIX + "renderOnce"] = pass_context(_render_once_async)
    else:
        out[FUNCTION_PREFIX + "render"] = pass_context(_render_fn_sync)
        out[FUNCTION_PREFIX + "renderOnce"] = pass_context(_render_once_sync)
    for name, fn in (extra or {}).items():
        out[FUNCTION_PREFIX + name] = fn
    return out


# ------------------------------------------------------------------------------------------ compile


_LOOP = re.compile(r"\{%-?\s*for\b")


class Compiled:
    __slots__ = ("jinja", "loops", "source", "template")

    def __init__(self, source: str, jinja: str, template: Template) -> None:
        self.source = source
        self.jinja = jinja
        self.template = template
        # Only a template with a loop can run long: the others render without a loop budget.
        self.loops = _LOOP.search(jinja) is not None


def _budget(c: Compiled) -> contextlib.AbstractContextManager[None]:
    return limits.Budget() if c.loops else contextlib.nullcontext()


def _syntax_error(source: str, e: Exception) -> ExpressionError:
    where = ""
    if isinstance(e, PebbleSyntaxError) and e.pos is not None:
        line = source.count("\n", 0, e.pos) + 1
        col = e.pos - (source.rfind("\n", 0, e.pos) + 1) + 1
        where = f" (line {line}, column {col})"
    msg = str(e)
    if isinstance(e, TemplateSyntaxError):
        msg = (
            (e.message or msg)
            .replace("'elif'", "'elseif'")
            .replace("Jinja was looking for the following tags:", "expected one of the tags")
        )
        if e.lineno and source.count("\n"):
            where = f" (line {e.lineno})"
    if FUNCTION_PREFIX in msg:
        msg = msg.replace(FUNCTION_PREFIX, "")
    return ExpressionError(f'invalid expression "{source}": {msg}{where}')


@lru_cache(maxsize=4096)
def compile_template(source: str, is_async: bool) -> Compiled:
    try:
        jinja = to_jinja(source)
        env = ASYNC_ENV if is_async else SYNC_ENV
        return Compiled(source, jinja, env.from_string(jinja))
    except (PebbleSyntaxError, TemplateError) as e:
        raise _syntax_error(source, e) from None


@lru_cache(maxsize=4096)
def compile_expression(expression: str, is_async: bool) -> Compiled:
    src = expression.strip()
    if src.startswith("{{") and src.endswith("}}") and src.count("{{") == 1:
        src = src[2:-2].strip().removeprefix("-").removesuffix("-")
    try:
        jinja = "{% set " + _RESULT + " = " + translate_expression(src) + " %}"
        env = ASYNC_ENV if is_async else SYNC_ENV
        return Compiled(expression, jinja, env.from_string(jinja))
    except (PebbleSyntaxError, TemplateError) as e:
        raise _syntax_error(expression, e) from None


@lru_cache(maxsize=1024)
def check_template(source: str) -> nodes.Template:
    """The parsed template (for ``names``: read it, never change it), or the ``ExpressionError``
    saying why it does not parse. Cached: the loader asks three questions of each template."""
    try:
        tree = SYNC_ENV.parse(to_jinja(source))
        compile_template(source, False)
    except (PebbleSyntaxError, TemplateError) as e:
        raise _syntax_error(source, e) from None
    return tree


# ------------------------------------------------------------------------------------------- render


def render_compiled(c: Compiled, source: str, merged: dict[str, Any]) -> str:
    t = c.template
    try:
        if not c.loops:  # the common case, on the hot path: no context manager to enter
            return "".join(t.root_render_func(t.new_context(merged, shared=True)))
        with limits.Budget():
            return "".join(t.root_render_func(t.new_context(merged, shared=True)))
    except Exception as e:
        raise convert_error(e, c) from (None if isinstance(e, EngineError) else e)


async def render_compiled_async(c: Compiled, source: str, merged: dict[str, Any]) -> str:
    t = c.template
    try:
        with _budget(c):
            gen: AsyncIterator[str] = t.root_render_func(t.new_context(merged, shared=True))  # type: ignore[assignment]
            return "".join([part async for part in gen])
    except Exception as e:
        raise convert_error(e, c) from (None if isinstance(e, EngineError) else e)


def evaluate_compiled(c: Compiled, merged: dict[str, Any]) -> Any:
    t = c.template
    ctx = t.new_context(merged, shared=True)
    try:
        with _budget(c):
            for _ in t.root_render_func(ctx):
                pass
        value = ctx.vars.get(_RESULT)
        if isinstance(value, Undefined):
            value._fail_with_undefined_error()
        return value
    except Exception as e:
        raise convert_error(e, c) from (None if isinstance(e, EngineError) else e)


async def evaluate_compiled_async(c: Compiled, merged: dict[str, Any]) -> Any:
    t = c.template
    ctx = t.new_context(merged, shared=True)
    try:
        with _budget(c):
            gen: AsyncIterator[str] = t.root_render_func(ctx)  # type: ignore[assignment]
            async for _ in gen:
                pass
        value = ctx.vars.get(_RESULT)
        if isinstance(value, Undefined):
            value._fail_with_undefined_error()
        return value
    except Exception as e:
        raise convert_error(e, c) from (None if isinstance(e, EngineError) else e)


# ------------------------------------------------------------------------------------------- errors


def _path(node: nodes.Node) -> str:
    if isinstance(node, nodes.Name):
        return node.name.removeprefix(FUNCTION_PREFIX)
    if isinstance(node, nodes.Getattr):
        return f"{_path(node.node)}.{node.attr}"
    if isinstance(node, nodes.Getitem):
        arg = node.arg
        if isinstance(arg, nodes.Const):
            if isinstance(arg.value, str) and arg.value.isidentifier():
                return f"{_path(node.node)}.{arg.value}"
            return f"{_path(node.node)}[{arg.value!r}]"
        return f"{_path(node.node)}[...]"
    if isinstance(node, nodes.Call):
        return f"{_path(node.node)}(...)"
    if isinstance(node, nodes.Filter):
        inner = _path(node.node) if node.node is not None else "..."
        return f"({inner} | {node.name})"
    return "(...)"


def _find_path(jinja: str, name: str | None, has_obj: bool) -> str | None:
    if name is None:
        return None
    try:
        tree = SYNC_ENV.parse(jinja)
    except TemplateError:  # pragma: no cover - it compiled before
        return None
    if not has_obj:
        for n in tree.find_all(nodes.Name):
            if n.name == name:
                return _path(n)
        return None
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getattr) and node.attr == name:
            return _path(node)
        if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) and node.arg.value == name:
            return _path(node)
    return None


def _undefined_message(e: UndefinedAccess, c: Compiled) -> str:
    from jinja2.utils import missing

    name = e.name
    has_obj = e.obj is not missing
    if name is not None and not has_obj and str(name).startswith(FUNCTION_PREFIX):
        return f"unknown function '{str(name).removeprefix(FUNCTION_PREFIX)}' in \"{c.source}\""
    path = _find_path(c.jinja, str(name) if name is not None else None, has_obj)
    if path is None:
        path = str(name) if name is not None else "a value"
    msg = f'`{path}` is undefined in "{c.source}"'
    obj = e.obj
    if has_obj:
        if obj is None:
            msg += f" (its parent is null, so it has no attribute `{name}`)"
        elif isinstance(obj, Mapping):
            keys = [str(k) for k in obj][:30]
            msg += f" (available keys: {', '.join(keys)})" if keys else " (the map is empty)"
        elif isinstance(obj, Sequence) and not isinstance(obj, str):
            msg += f" (the list has {len(obj)} elements)"
        else:
            msg += f" (a {type(obj).__name__} has no attribute `{name}`)"
    return msg


def convert_error(e: BaseException, c: Compiled) -> EngineError:
    if isinstance(e, EngineError):
        return e
    if isinstance(e, UndefinedAccess):
        return ExpressionError(_undefined_message(e, c))
    if isinstance(e, FilterError | DateError):
        return ExpressionError(f'{e} in "{c.source}"')
    if isinstance(e, TemplateError):
        msg = str(e).replace(FUNCTION_PREFIX, "")
        return ExpressionError(f'{msg} in "{c.source}"')
    if isinstance(e, ZeroDivisionError):
        return ExpressionError(f'division by zero in "{c.source}"')
    msg = str(e).replace(FUNCTION_PREFIX, "")
    return ExpressionError(f'{type(e).__name__}: {msg} in "{c.source}"')
