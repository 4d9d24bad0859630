"""Flow ``inputs``: ids, types, the fields of each type and defaults that must fit their type."""

from __future__ import annotations

import re
from typing import Any

from engine.core.model import Input
from engine.inputs import coerce_input
from engine.loader.checker import Checker, closest, is_expression, show
from engine.yamlpos import child_path, index_path

__all__ = ["INPUT_EXTRA", "INPUT_TYPES", "inputs"]

INPUT_ID_RE = re.compile(r"^[a-zA-Z0-9][.a-zA-Z0-9_-]*$")
INPUT_TYPES = (
    "STRING",
    "INT",
    "FLOAT",
    "BOOLEAN",
    "DATETIME",
    "DATE",
    "TIME",
    "DURATION",
    "JSON",
    "YAML",
    "ARRAY",
    "SELECT",
    "MULTISELECT",
    "ENUM",
    "SECRET",
    "URI",
    "EMAIL",
    "FILE",
)
# type-specific input fields (Kestra names), kept in Input.extra
INPUT_EXTRA: dict[str, tuple[str, ...]] = {
    "STRING": ("validator",),
    "INT": ("min", "max"),
    "FLOAT": ("min", "max"),
    "DATETIME": ("after", "before"),
    "DATE": ("after", "before"),
    "TIME": ("after", "before"),
    "DURATION": ("min", "max"),
    "SELECT": ("values", "expression", "allowCustomValue", "isRadio"),
    "MULTISELECT": ("values", "options", "expression", "itemType", "allowCustomValue"),
    "ENUM": ("values",),
    "FILE": ("extension",),
    "ARRAY": ("itemType",),
}
_INPUT_COMMON = ("id", "name", "type", "description", "displayName", "required", "defaults", "dependsOn")


def declared_ids(value: Any) -> frozenset[str] | None:
    """The input ids the section declares, None unless every input names its id (not certain then)."""
    if value is None:
        return frozenset()
    if not isinstance(value, list):
        return None
    ids: set[str] = set()
    for data in value:
        key = data.get("id", data.get("name")) if isinstance(data, dict) else None
        if not isinstance(key, str):
            return None
        ids.add(key)
    return frozenset(ids)


def inputs(ctx: Checker, value: Any, path: str) -> tuple[Input, ...]:
    result: list[Input] = []
    seen: dict[str, str] = {}
    for sub, data in ctx.maps(value, path, "an input definition (a map)"):
        parsed = _input(ctx, data, sub)
        if parsed is None:
            continue
        if parsed.id in seen:
            first = ctx.pos.at(seen[parsed.id])
            ctx.add(
                child_path(sub, "id" if "id" in data else "name"),
                f"duplicate input id '{parsed.id}'"
                + (f", already defined at line {first[0]}" if first else "")
                + " — give each input a unique id",
            )
            continue
        seen[parsed.id] = sub
        result.append(parsed)
    return tuple(result)


def _input(ctx: Checker, data: dict[Any, Any], path: str) -> Input | None:
    key = "id" if data.get("id") is not None else "name"
    input_id = ctx.string(data.get(key), child_path(path, key))
    if input_id is None:
        ctx.add(path, "missing input 'id' — add 'id: my_input'")
    elif not INPUT_ID_RE.match(input_id):
        ctx.add(
            child_path(path, key),
            f"invalid input id {show(input_id)} — start with a letter or digit "
            "and use only letters, digits, '.', '_' and '-'",
        )
    type_ = _input_type(ctx, data, path)
    extra_keys = INPUT_EXTRA.get(type_, ())
    ctx.unknown_keys(data, path, (*_INPUT_COMMON, *extra_keys), f"property for a {type_} input")
    required = ctx.boolean(data.get("required"), child_path(path, "required"), default=True)
    description = ctx.string(data.get("description"), child_path(path, "description"))
    display = ctx.string(data.get("displayName"), child_path(path, "displayName"))
    if display is not None and len(display) > 64:
        ctx.add(child_path(path, "displayName"), "displayName is longer than 64 characters — shorten it")
    depends = ctx.mapping(data.get("dependsOn"), child_path(path, "dependsOn"))
    if depends is not None:
        dpath = child_path(path, "dependsOn")
        ctx.unknown_keys(depends, dpath, ("inputs", "condition"), "dependsOn property")
        deps = ctx.sequence(depends.get("inputs"), child_path(dpath, "inputs"))
        for j, dep in enumerate(deps or []):
            ctx.string(dep, index_path(child_path(dpath, "inputs"), j))
        if depends.get("condition") is not None:
            ctx.collect_expressions(depends["condition"], child_path(dpath, "condition"))
    extra: dict[str, Any] = {}
    for k in extra_keys:
        if k in data and data[k] is not None:
            extra[k] = data[k]
    _check_extra(ctx, type_, extra, path)
    defaults = data.get("defaults")
    ctx.collect_expressions(defaults, child_path(path, "defaults"))
    if defaults is not None and not is_expression(defaults) and type_ not in ("FILE",):
        try:
            coerce_input(Input(id=input_id or "?", type=type_, extra=extra), defaults)
        except Exception as exc:
            reason = str(exc).split(": ", 1)[-1]
            ctx.add(child_path(path, "defaults"), f"invalid default: {reason}")
    if input_id is None:
        return None
    return Input(
        id=input_id,
        type=type_,
        required=required,
        defaults=defaults,
        description=description,
        display_name=display,
        extra=extra,
        depends_on=depends,
    )


def _input_type(ctx: Checker, data: dict[Any, Any], path: str) -> str:
    """The declared type, upper case; STRING (after an issue) when missing or unknown."""
    if data.get("type") is None:
        ctx.add(path, "missing input 'type' — add 'type: STRING' (or INT, BOOLEAN, ...)")
        return "STRING"
    raw = ctx.string(data.get("type"), child_path(path, "type"))
    if raw is None:
        return "STRING"
    if raw.upper() not in INPUT_TYPES:
        ctx.add(
            child_path(path, "type"),
            f"unknown input type {show(raw)} — use one of "
            f"{', '.join(INPUT_TYPES)} ({closest(raw.upper(), INPUT_TYPES)})",
        )
        return "STRING"
    if raw != raw.upper():
        ctx.add(child_path(path, "type"), f"input type {show(raw)} must be upper case — write {raw.upper()}")
    return raw.upper()


def _check_extra(ctx: Checker, type_: str, extra: dict[str, Any], path: str) -> None:
    if type_ == "STRING" and "validator" in extra:
        try:
            re.compile(str(extra["validator"]))
        except re.error as exc:
            ctx.add(
                child_path(path, "validator"),
                f"invalid regular expression {show(extra['validator'])}: {exc} — fix the pattern",
            )
    if type_ in ("INT", "FLOAT"):
        for k in ("min", "max"):
            if k in extra:
                if type_ == "INT":
                    ctx.integer(extra[k], child_path(path, k))
                else:
                    ctx.number(extra[k], child_path(path, k))
    if type_ == "DURATION":
        for k in ("min", "max"):
            if k in extra:
                ctx.duration(extra[k], child_path(path, k))
    if type_ in ("ENUM", "SELECT", "MULTISELECT"):
        _check_choices(ctx, type_, extra, path)
    if type_ in ("ARRAY", "MULTISELECT"):
        item_type = extra.get("itemType")
        if item_type is None and type_ == "ARRAY":
            ctx.add(path, "an ARRAY input needs 'itemType' — add 'itemType: STRING' (or INT, ...)")
        elif item_type is not None:
            text = str(item_type)
            if text not in INPUT_TYPES or text == "ARRAY":
                ctx.add(
                    child_path(path, "itemType"),
                    f"invalid itemType {show(item_type)} — use one of "
                    f"{', '.join(t for t in INPUT_TYPES if t != 'ARRAY')}",
                )


def _check_choices(ctx: Checker, type_: str, extra: dict[str, Any], path: str) -> None:
    values = extra.get("values", extra.get("options"))
    if values is None and "expression" not in extra:
        ctx.add(path, f"a {type_} input needs 'values' — add 'values:' with the list of choices")
    elif values is not None:
        items = ctx.sequence(values, child_path(path, "values" if "values" in extra else "options"))
        for j, v in enumerate(items or []):
            if isinstance(v, dict | list):
                ctx.wrong(
                    index_path(child_path(path, "values"), j),
                    "a text value",
                    v,
                    "write each choice as plain text",
                )
    if "allowCustomValue" in extra:
        ctx.boolean(extra["allowCustomValue"], child_path(path, "allowCustomValue"))
