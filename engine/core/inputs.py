"""Execution inputs: coerce given values (CLI strings or typed API values) to a flow's typed inputs.

Follows Kestra's ``FlowInputOutput.resolveInputs``: only declared inputs are read (extra names
given are ignored, as Kestra does); a missing value falls back to ``defaults``; a missing
required input is an error, a missing optional one is ``None``. Values are typed per input type
and validated (min/max, after/before, validator, values...). Every problem is collected and
raised as one ``InputError`` whose ``problems`` attribute lists ``(input_id, message)`` pairs.

The result is nested on dots like Kestra's execution inputs: input ``nested.more.int`` is
``result["nested"]["more"]["int"]``.

Notes:
- A default that is a string containing an expression (``{{``) is returned unrendered: the
  caller renders it (it may use ``flow``/``execution`` variables) — see ``has_expression_default``.
- ``dependsOn.condition`` needs rendering: inputs with a condition are treated as enabled here.
- SECRET values are kept as plain strings; ``secret_input_ids(flow)`` names them so callers can
  mask them in logs and events.
- FILE values are kept as given (a local path or a ``kestra://`` URI): ``Runtime.create_execution``
  uploads local files (``engine.files.upload_file_inputs``) and stores their ``kestra://`` URIs.
- Typed values: DATETIME -> ISO string in UTC with ``Z`` (Java ``Instant.toString``), DATE ->
  ``YYYY-MM-DD``, TIME -> ``HH:MM[:SS[.fff]]`` (Java ``LocalTime.toString``), DURATION -> ISO
  string normalized like Java ``Duration.toString`` (``P1D`` -> ``PT24H``), JSON/YAML -> parsed.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from engine.core.durations import format_duration, parse_duration
from engine.core.errors import EngineError, InputError
from engine.core.model import Flow, Input
from engine.core.tree import is_truthy

__all__ = [
    "coerce_input",
    "has_expression_default",
    "parse_cli_inputs",
    "resolve_inputs",
    "secret_input_ids",
]

# Kestra's patterns (FlowInputOutput.URI_PATTERN, EmailInput.EMAIL_PATTERN)
_URI_RE = re.compile(
    r"^[a-z]+://(?:www\.)?[-a-zA-Z0-9@:%._+~#=]{1,256}\.[a-zA-Z0-9()]{1,6}\b(?:[-a-zA-Z0-9()@:%_+.~#?&/=]*)$"
)
_EMAIL_RE = re.compile("^$|^[a-zA-Z0-9_!#$%&\u2019*+/=?`{|}~^.-]+@[a-zA-Z0-9.-]+$")


LoadYaml = Callable[[str], Any]
"""The YAML parser (the core has none of its own: the caller brings a bounded one)."""


class _Bad(Exception):
    """One input's problem (message already says how to fix it)."""


def _show(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str) if isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def has_expression_default(inp: Input) -> bool:
    return isinstance(inp.defaults, str) and ("{{" in inp.defaults or "{%" in inp.defaults)


def secret_input_ids(flow: Flow) -> set[str]:
    """Ids of the SECRET inputs of ``flow`` (mask their values in logs and events)."""
    return {i.id for i in flow.inputs if i.type == "SECRET"}


def parse_cli_inputs(pairs: list[str]) -> dict[str, str]:
    """``["a=1", "b=x=y"]`` -> ``{"a": "1", "b": "x=y"}``; InputError lists every malformed pair."""
    result: dict[str, str] = {}
    bad: list[str] = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            bad.append(pair)
            continue
        result[key.strip()] = value
    if bad:
        raise InputError(
            "invalid --input: "
            + ", ".join(repr(b) for b in bad)
            + " — write each input as name=value, like --input count=3"
        )
    return result


# ---------------------------------------------------------------------------------------------
# per-type coercion


def _as_str(value: Any, what: str = "a text value") -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    raise _Bad(f"expected {what}, got {_show(value)}")


# Values travel in msgpack/JSON events: an integer must fit in 64 bits (Java's long), a number
# must be finite.
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1


def _int(value: Any) -> int:
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif (isinstance(value, float) and value.is_integer()) or (
        isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d{1,40}\s*", value)
    ):
        number = int(value)
    if number is None:
        raise _Bad(f"expected an integer, got {_show(value)} — give a whole number like 42")
    if not _INT_MIN <= number <= _INT_MAX:
        raise _Bad(f"{_show(value)} is out of range — an integer must be between {_INT_MIN} and {_INT_MAX}")
    return number


def _float(value: Any) -> float:
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value) if not isinstance(value, int) or abs(value) < 2**1023 else math.inf
    elif isinstance(value, str) and len(value) <= 400:
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None:
        raise _Bad(f"expected a number, got {_show(value)} — give a number like 4.2")
    if not math.isfinite(number):
        raise _Bad(f"{_show(value)} is not a finite number — give a number like 4.2")
    return number


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _Bad(f"expected a boolean, got {_show(value)} — give true or false")


def _instant(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        parsed = value
    else:
        text = _as_str(value, "a date-time").strip()
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            raise _Bad(
                f"expected a date-time, got {_show(value)} — "
                "give an ISO-8601 instant like 2024-01-31T12:00:00Z"
            ) from None
    if parsed.tzinfo is None:
        raise _Bad(f"the date-time {_show(value)} has no time zone — add Z (UTC) or an offset like +02:00")
    return parsed.astimezone(dt.UTC)


def _format_instant(value: dt.datetime) -> str:
    """Java ``Instant.toString()``: seconds always, fraction in groups of 3 digits if non-zero."""
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        frac = f"{value.microsecond:06d}"
        text += "." + (frac[:3] if frac.endswith("000") else frac)
    return text + "Z"


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    text = _as_str(value, "a date").strip()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise _Bad(f"expected a date, got {_show(value)} — give an ISO date like 2024-01-31") from None


def _time(value: Any) -> dt.time:
    if isinstance(value, dt.time):
        return value
    text = _as_str(value, "a time").strip()
    try:
        parsed = dt.time.fromisoformat(text)
    except ValueError:
        raise _Bad(f"expected a time, got {_show(value)} — give a time like 18:27:49") from None
    if parsed.tzinfo is not None:
        raise _Bad(f"expected a local time without offset, got {_show(value)} — give a time like 18:27:49")
    return parsed


def _format_time(value: dt.time) -> str:
    """Java ``LocalTime.toString()``: ``HH:mm``, then ``:ss`` and fraction only when non-zero."""
    text = f"{value.hour:02d}:{value.minute:02d}"
    if value.second or value.microsecond:
        text += f":{value.second:02d}"
        if value.microsecond:
            frac = f"{value.microsecond:06d}"
            text += "." + (frac[:3] if frac.endswith("000") else frac)
    return text


def _duration(value: Any) -> float:
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError:
            pass
    raise _Bad(f"expected a duration, got {_show(value)} — give an ISO-8601 duration like PT5M or PT1H30M")


def _list(value: Any) -> list[Any]:
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if isinstance(parsed, list):
            return parsed
    raise _Bad(f"expected a list, got {_show(value)} — give a JSON array like [1, 2, 3]")


def coerce_input(inp: Input, value: Any, *, load_yaml: LoadYaml) -> Any:
    """Type and validate one non-null value for ``inp``; raises InputError with a fix."""
    try:
        return _coerce(inp.type, inp.extra, value, inp, load_yaml)
    except _Bad as exc:
        raise InputError(f"input '{inp.id}': {exc}") from None


def coerce_output(output_id: str, type_: str, value: Any, *, load_yaml: LoadYaml) -> Any:
    """Type a flow output like an input of the same type (Kestra converts outputs too)."""
    if value is None:
        return None
    try:
        return _coerce(type_, {}, value, None, load_yaml)
    except _Bad as exc:
        raise InputError(f"flow output '{output_id}': {exc}") from None


def _coerce(type_: str, extra: Mapping[str, Any], value: Any, inp: Input | None, load_yaml: LoadYaml) -> Any:
    if type_ in ("STRING", "SECRET", "FILE"):
        text = _as_str(value)
        validator = extra.get("validator") if type_ == "STRING" else None
        if validator is not None and re.fullmatch(str(validator), text) is None:
            raise _Bad(f"{_show(text)}: it must match the pattern `{validator}`")
        return text
    if type_ == "INT":
        number = _int(value)
        _bounds(number, extra, _int)
        return number
    if type_ == "FLOAT":
        real = _float(value)
        _bounds(real, extra, _float)
        return real
    if type_ == "BOOLEAN":
        return _bool(value)
    if type_ == "DATETIME":
        return _format_instant(_between(value, _instant(value), extra, _instant, _format_instant))
    if type_ == "DATE":
        return _between(value, _date(value), extra, _date, dt.date.isoformat).isoformat()
    if type_ == "TIME":
        return _format_time(_between(value, _time(value), extra, _time, _format_time))
    if type_ == "DURATION":
        seconds = _duration(value)
        if extra.get("min") is not None and seconds < _duration(extra["min"]):
            raise _Bad(f"{_show(value)}: it must be more than `{format_duration(_duration(extra['min']))}`")
        if extra.get("max") is not None and seconds > _duration(extra["max"]):
            raise _Bad(f"{_show(value)}: it must be less than `{format_duration(_duration(extra['max']))}`")
        return format_duration(seconds)
    if type_ == "JSON":
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError as exc:
            raise _Bad(
                f'expected JSON, got {_show(value)} ({exc}) — give valid JSON like {{"a": 1}}'
            ) from None
    if type_ == "YAML":
        if not isinstance(value, str):
            return value
        try:
            return load_yaml(value)
        except Exception as exc:  # the parser is the caller's: any refusal of it is a bad value
            problem = getattr(exc, "problem", None) or str(exc)
            raise _Bad(f"expected YAML, got {_show(value)} ({problem}) — give valid YAML") from None
    if type_ == "URI":
        text = _as_str(value, "a URI")
        if _URI_RE.match(text) is None:
            raise _Bad(f"expected a URI, got {_show(value)} — give a full URI like https://example.com/path")
        return text
    if type_ == "EMAIL":
        text = _as_str(value, "an email address")
        if _EMAIL_RE.match(text) is None:
            raise _Bad(
                f"{_show(value)}: the input must be a valid email — give an address like name@example.com"
            )
        return text
    if type_ in ("SELECT", "ENUM"):
        text = _as_str(value)
        values = [str(v) for v in (extra.get("values") or [])]
        custom = type_ == "SELECT" and is_truthy(extra.get("allowCustomValue"))
        if values and text not in values and not custom:
            raise _Bad(f"{_show(text)}: it must match the values `[{', '.join(values)}]` — give one of them")
        return text
    if type_ == "MULTISELECT":
        items = _list(value)
        values = [str(v) for v in (extra.get("values") or extra.get("options") or [])]
        custom = is_truthy(extra.get("allowCustomValue"))
        item_type = str(extra.get("itemType") or "STRING")
        out: list[Any] = []
        for item in items:
            text = _as_str(item)
            if values and text not in values and not custom:
                raise _Bad(
                    f"{_show(text)}: it must match the values `[{', '.join(values)}]` — give one of them"
                )
            out.append(_coerce(item_type, {}, item, None, load_yaml) if item_type != "STRING" else text)
        return out
    if type_ == "ARRAY":
        items = _list(value)
        array_item_type = extra.get("itemType")
        if array_item_type is None:
            return items
        result: list[Any] = []
        for item in items:
            try:
                result.append(_coerce(str(array_item_type), {}, item, None, load_yaml))
            except _Bad as exc:
                raise _Bad(
                    f"unable to parse array element {_show(item)} as `{array_item_type}`: {exc}"
                ) from None
        return result
    raise _Bad(f"unknown input type {type_!r}")


def _between(original: Any, value: Any, extra: Mapping[str, Any], parse: Any, show: Any) -> Any:
    """Check a DATETIME/DATE/TIME input against its `after` and `before` bounds; returns the value."""
    if extra.get("after") is not None and value < parse(extra["after"]):
        raise _Bad(f"{_show(original)}: it must be after `{show(parse(extra['after']))}`")
    if extra.get("before") is not None and value > parse(extra["before"]):
        raise _Bad(f"{_show(original)}: it must be before `{show(parse(extra['before']))}`")
    return value


def _bounds(value: float, extra: Mapping[str, Any], conv: Any) -> None:
    if extra.get("min") is not None and value < conv(extra["min"]):
        raise _Bad(f"{_show(value)}: it must be more than `{extra['min']}` — give a value >= {extra['min']}")
    if extra.get("max") is not None and value > conv(extra["max"]):
        raise _Bad(f"{_show(value)}: it must be less than `{extra['max']}` — give a value <= {extra['max']}")


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Kestra's ``MapUtils.flattenToNestedMap``: ``{"a.b": 1}`` -> ``{"a": {"b": 1}}``."""
    result: dict[str, Any] = {}
    for key, value in flat.items():
        parts = key.split(".")
        node = result
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[parts[-1]] = value
    return result


def resolve_inputs(
    flow: Flow,
    given: Mapping[str, Any],
    render: Callable[[str, dict[str, Any]], str] | None = None,
    *,
    load_yaml: LoadYaml,
) -> dict[str, Any]:
    """Typed inputs of an execution of ``flow`` from ``given`` values (see the module doc).

    With ``render``, a default written as an expression (``{{ now() }}``) is rendered against the
    flow and the inputs resolved before it, then typed like a given value.
    """
    flat: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for inp in flow.inputs:
        value = given.get(inp.id)
        from_default = False
        if value is None:
            value = inp.defaults
            from_default = True
        if value is None:
            if inp.required:
                problems.append((inp.id, f"missing required input — pass it with --input {inp.id}=<value>"))
            flat[inp.id] = None
            continue
        if from_default and has_expression_default(inp):
            if render is None:
                flat[inp.id] = value  # rendered by the caller
                continue
            try:
                value = render(
                    value, {"flow": {"id": flow.id, "namespace": flow.namespace}, "inputs": dict(flat)}
                )
            except EngineError as exc:
                problems.append((inp.id, f"its default {inp.defaults!r} does not render: {exc}"))
                continue
        try:
            flat[inp.id] = _coerce(inp.type, inp.extra, value, inp, load_yaml)
        except _Bad as exc:
            problems.append((inp.id, f"{exc} (from its default)" if from_default else str(exc)))
    if problems:
        lines = "\n".join(f"  - {iid}: {msg}" for iid, msg in problems)
        error = InputError(f"invalid inputs for flow {flow.namespace}.{flow.id}:\n{lines}")
        error.problems = problems  # type: ignore[attr-defined]
        raise error
    return _nest(flat)
