"""Plugin properties (a task's or a trigger's) checked against the plugin's ``props`` Struct.

Any property may hold an expression (rendered at run time); otherwise a value must fit the field's
annotation, and comes back normalized (``"3"`` -> 3 for an int, 42 -> ``"42"`` for a str).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Any, Literal

import msgspec

from engine.core.errors import Issue
from engine.loader.checker import Checker, closest, is_expression, scalar_key, show
from engine.yamlpos import child_path, index_path
from plugins.api import PluginSpec

__all__ = ["validate_props"]


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _describe(tp: Any) -> tuple[str, str]:
    """(noun, fix) for a Python type annotation."""
    if tp is int:
        return "an integer", "write a whole number like 3"
    if tp is float:
        return "a number", "write a number like 1.5"
    if tp is bool:
        return "true or false", "write true or false"
    if tp is str:
        return "a string", 'write text, quoted if it has special characters, like "text"'
    if tp is type(None):
        return "nothing", "remove it"
    origin = typing.get_origin(tp)
    if origin is Literal:
        vals = ", ".join(repr(a) for a in typing.get_args(tp))
        return f"one of {vals}", f"use one of {vals}"
    if _is_union(tp):
        parts = [_describe(a) for a in typing.get_args(tp) if a is not type(None)]
        noun = " or ".join(p[0] for p in parts)
        return noun, parts[0][1] if parts else "fix the value"
    if origin in (list, tuple, set, frozenset) or tp in (list, tuple, set):
        return "a list", "write a YAML list, one '- item' per line"
    if origin is dict or tp is dict or (isinstance(tp, type) and issubclass(tp, msgspec.Struct)):
        return "a map", "write 'key: value' pairs indented below it"
    name = getattr(tp, "__name__", str(tp))
    return f"a {name}", f"write a valid {name}"


def _tag(tp: Any) -> tuple[str, str] | None:
    """(tag field, tag value) of a tagged Struct (a member of a union told apart by e.g. ``type``)."""
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        config = tp.__struct_config__
        if config.tag_field is not None and isinstance(config.tag, str):
            return config.tag_field, config.tag
    return None


def _same_shape(value: Any, tp: Any) -> bool:
    origin = typing.get_origin(tp) or tp
    if isinstance(value, dict):
        return origin is dict or (isinstance(tp, type) and issubclass(tp, msgspec.Struct))
    if isinstance(value, list):
        return origin in (list, tuple, set, frozenset)
    return False


def validate_props(ctx: Checker, spec: PluginSpec, props: dict[Any, Any], path: str) -> dict[Any, Any]:
    """``props`` checked against ``spec.props`` (issues into ``ctx``), normalized."""
    allow_unknown = bool(spec.extra.get("allow_unknown_props"))
    return _Props(ctx).struct(
        props,
        spec.props,
        path,
        ctx.issues,
        allow_unknown=allow_unknown,
        what=f"property of {spec.type.rsplit('.', 1)[-1]}",
    )


class _Props:
    """The conversion walk; a union tries each member into its own issue list, hence ``issues``."""

    def __init__(self, ctx: Checker) -> None:
        self.ctx = ctx

    def struct(
        self,
        value: dict[Any, Any],
        cls: type[msgspec.Struct],
        path: str,
        issues: list[Issue],
        *,
        allow_unknown: bool = False,
        what: str = "property",
    ) -> dict[Any, Any]:
        try:
            fields = msgspec.structs.fields(cls)
        except Exception:  # unresolvable annotations: don't block the flow on a plugin bug
            return value
        by_name = {f.encode_name: f for f in fields}
        tag = _tag(cls)
        result: dict[Any, Any] = {}
        for k, v in value.items():
            if tag is not None and k == tag[0]:
                result[k] = v
                continue
            sub = child_path(path, k)
            field = by_name.get(str(k))
            if field is None:
                if not allow_unknown:
                    self.ctx.issue_to(
                        issues, sub, f"unknown {what} '{k}' — {closest(str(k), list(by_name))}", key=True
                    )
                result[k] = v
                continue
            if v is None:
                continue  # null = not set, the plugin default applies
            result[k] = self.convert(v, field.type, sub, issues)
        for f in fields:
            if f.required and value.get(f.encode_name) is None:
                self.ctx.issue_to(
                    issues, path, f"missing required property '{f.encode_name}' — add '{f.encode_name}: ...'"
                )
        return result

    def mismatch(self, issues: list[Issue], path: str, tp: Any, value: Any) -> None:
        noun, fix = _describe(tp)
        self.ctx.issue_to(issues, path, f"expected {noun}, got {show(value)} — {fix}")

    def convert(self, value: Any, tp: Any, path: str, issues: list[Issue]) -> Any:
        """Check ``value`` against annotation ``tp`` (expressions accepted anywhere)."""
        if tp is Any or tp is object or is_expression(value):
            return value
        if _is_union(tp):
            return self.union(value, tp, path, issues)
        origin = typing.get_origin(tp)
        if origin is Literal:
            if value not in typing.get_args(tp):
                self.mismatch(issues, path, tp, value)
            return value
        if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
            if not isinstance(value, dict):
                self.mismatch(issues, path, tp, value)
                return value
            return self.struct(value, tp, path, issues)
        if origin in (list, tuple, set, frozenset) or tp in (list, tuple, set, frozenset):
            return self.items(value, tp, path, issues)
        if origin is dict or tp is dict or origin in (Mapping, typing.Mapping):
            if not isinstance(value, dict):
                self.mismatch(issues, path, tp, value)
                return value
            args = typing.get_args(tp)
            vt = args[1] if len(args) == 2 else Any
            return {k: self.convert(v, vt, child_path(path, k), issues) for k, v in value.items()}
        if tp is str:
            if isinstance(value, str | bool | int | float):
                return scalar_key(value)
            self.mismatch(issues, path, tp, value)
            return value
        if tp in (int, float, bool):
            try:
                return msgspec.convert(value, tp, strict=False)
            except msgspec.ValidationError:
                self.mismatch(issues, path, tp, value)
                return value
        if tp is type(None):
            if value is not None:
                self.mismatch(issues, path, tp, value)
            return value
        try:
            msgspec.convert(value, tp, strict=False)
        except msgspec.ValidationError:
            self.mismatch(issues, path, tp, value)
        except Exception:  # a type msgspec can't handle: don't block on it
            return value
        return value

    def union(self, value: Any, tp: Any, path: str, issues: list[Issue]) -> Any:
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        tagged = {t[1]: (t[0], arg) for arg in args if (t := _tag(arg)) is not None}
        if tagged and isinstance(value, dict):
            return self.tagged(value, tagged, path, issues)
        attempts: list[tuple[Any, list[Issue]]] = []
        for arg in args:
            if arg is type(None):
                continue
            trial: list[Issue] = []
            out = self.convert(value, arg, path, trial)
            if not trial:
                return out
            attempts.append((arg, trial))
        # report the member of the same shape (map/list) precisely, else a plain mismatch
        for arg, trial in attempts:
            if _same_shape(value, arg):
                issues.extend(trial)
                return value
        self.mismatch(issues, path, tp, value)
        return value

    def tagged(
        self, value: dict[Any, Any], members: dict[str, tuple[str, Any]], path: str, issues: list[Issue]
    ) -> Any:
        """A map checked against the union member its tag (``type``) names."""
        field = next(iter(members.values()))[0]
        kind = value.get(field)
        if is_expression(kind):
            return value
        member = members.get(kind) if isinstance(kind, str) else None
        if member is None:
            names = ", ".join(members)
            if kind is None:
                self.ctx.issue_to(issues, path, f"missing '{field}' — add '{field}: ' and one of {names}")
            else:
                self.ctx.issue_to(
                    issues,
                    child_path(path, field),
                    f"{field} {show(kind)} is unknown or not supported — use one of {names}",
                )
            return value
        return self.struct(value, member[1], path, issues)

    def items(self, value: Any, tp: Any, path: str, issues: list[Issue]) -> Any:
        if not isinstance(value, list):
            self.mismatch(issues, path, tp, value)
            return value
        args = typing.get_args(tp)
        if typing.get_origin(tp) is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(args) != len(value):
                self.ctx.issue_to(
                    issues,
                    path,
                    f"expected a list of {len(args)} items, got {len(value)} — "
                    f"write exactly {len(args)} items",
                )
                return value
            return [
                self.convert(v, a, index_path(path, i), issues)
                for i, (v, a) in enumerate(zip(value, args, strict=True))
            ]
        item = args[0] if args else Any
        return [self.convert(v, item, index_path(path, i), issues) for i, v in enumerate(value)]
