"""Pebble's filters on lists, maps, numbers, JSON/YAML/jq and dates."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache
from typing import Any

import jq
import yaml
from jinja2 import Undefined

from . import dates
from .common import _defined, _type, is_empty
from .errors import FilterError
from .values import kestra_str, to_json


def f_abs(value: Any) -> Any:
    if value is None:
        return None
    return abs(_defined(value))


def f_default(value: Any, default: Any = None) -> Any:
    if isinstance(value, Undefined) or is_empty(value):
        return default
    return value


def f_length(value: Any) -> int:
    _defined(value)
    if value is None:
        return 0
    if isinstance(value, str | Mapping | Sequence | AbstractSet):
        return len(value)
    if isinstance(value, Iterable):
        return sum(1 for _ in value)
    return len(kestra_str(value))


def f_join(value: Any, separator: str | None = None) -> Any:
    _defined(value)
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return (separator or "").join(kestra_str(v) for v in value)


def f_first(value: Any) -> Any:
    _defined(value)
    if value is None:
        return None
    if isinstance(value, str):
        return value[:1] or None
    if isinstance(value, Mapping):
        raise FilterError("first: cannot be applied to a map; use keys or values first")
    for v in value:
        return v
    return None


def f_last(value: Any) -> Any:
    _defined(value)
    if value is None:
        return None
    if isinstance(value, str):
        return value[-1:] or None
    if isinstance(value, Mapping):
        raise FilterError("last: cannot be applied to a map; use keys or values first")
    items = list(value)
    return items[-1] if items else None


def f_keys(value: Any) -> Any:
    _defined(value)
    if value is None:
        return None
    if isinstance(value, Mapping):
        return list(value.keys())
    if isinstance(value, Sequence) and not isinstance(value, str):
        return list(range(len(value)))
    raise FilterError(f"'keys' filter can only be applied to List, Map. Actual type was: {_type(value)}")


def f_values(value: Any) -> Any:
    _defined(value)
    if value is None:
        return None
    if isinstance(value, Mapping):
        return list(value.values())
    raise FilterError(f"'values' filter can only be applied to Map. Actual type was: {_type(value)}")


def f_sort(value: Any) -> Any:
    _defined(value)
    return None if value is None else sorted(value)


def f_rsort(value: Any) -> Any:
    _defined(value)
    return None if value is None else sorted(value, reverse=True)


def f_reverse(value: Any) -> Any:
    _defined(value)
    if value is None:
        return None
    if isinstance(value, str):
        return value[::-1]
    return list(reversed(list(value)))


def f_slice(value: Any, fromIndex: int = 0, toIndex: int | None = None) -> Any:
    _defined(value)
    if value is None:
        return None
    size = len(value)
    end = size if toIndex is None else toIndex
    if fromIndex < 0 or end > size or fromIndex > end:
        raise FilterError(f"slice: indexes {fromIndex}..{end} are out of bounds for length {size}")
    return value[fromIndex:end]


def f_merge(value: Any, items: Any) -> Any:
    _defined(value)
    _defined(items)
    if value is None:
        return items
    if isinstance(value, Mapping):
        if not isinstance(items, Mapping):
            raise FilterError("merge: a map can only be merged with a map")
        return {**value, **items}
    if isinstance(value, list | tuple):
        if isinstance(items, Mapping):
            raise FilterError("merge: a list can only be merged with a list")
        if isinstance(items, list | tuple | AbstractSet):
            return [*value, *items]
        return [*value, items]
    raise FilterError(f"merge: cannot be applied to a {_type(value)}")


def f_chunk(value: Any, size: int) -> Any:
    _defined(value)
    if value is None:
        return None
    if not isinstance(value, list | tuple):
        raise FilterError(f"'chunk' filter can only be applied to List. Actual type was: {_type(value)}")
    if int(size) <= 0:
        raise FilterError("chunk: size must be > 0")
    n = int(size)
    return [list(value[i : i + n]) for i in range(0, len(value), n)]


def f_flatten(value: Any) -> Any:
    _defined(value)
    if value is None:
        return None
    if not isinstance(value, list | tuple):
        raise FilterError("The 'flatten' filter can only be applied to lists.")
    out: list[Any] = []
    for v in value:
        if isinstance(v, list | tuple):
            out.extend(v)
        else:
            out.append(v)
    return out


_JAVA_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[fFdDlL]?")


def f_number(value: Any, type: str | None = None) -> Any:
    _defined(value)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if not isinstance(value, str):
        raise FilterError(f"'number' filter can only be applied to String. Actual type was: {_type(value)}")
    s = value.strip()
    kind = (type or "").upper()
    try:
        if kind in ("INT", "LONG", "BIGINTEGER"):
            return int(s, 0) if s.lower().startswith(("0x", "-0x")) else int(s)
        if kind in ("FLOAT", "DOUBLE", "BIGDECIMAL"):
            return float(s.rstrip("fFdD"))
        if re.fullmatch(r"[+-]?0[xX][0-9a-fA-F]+", s):
            return int(s, 16)
        if not _JAVA_NUMBER.fullmatch(s):
            raise ValueError(s)
        core = s.rstrip("fFdDlL")
        if re.fullmatch(r"[+-]?\d+", core) and s[-1:] not in "fFdD":
            return int(core)
        return float(core)
    except ValueError as e:
        raise FilterError(f"number: {value!r} is not a valid number") from e


def f_numberformat(value: Any, format: str) -> Any:
    _defined(value)
    if value is None:
        return None
    pattern = format.split(";")[0]
    prefix = re.match(r"[^#0,.]*", pattern)
    pre = prefix.group(0) if prefix else ""
    core_end = len(pattern)
    m = re.search(r"[#0,.]+", pattern)
    if not m:
        return pattern
    core = m.group(0)
    suf = pattern[m.end() : core_end]
    int_part, _, frac_part = core.partition(".")
    min_frac = frac_part.count("0")
    max_frac = len(frac_part)
    min_int = int_part.replace(",", "").count("0")
    grouping = "," in int_part
    group_size = len(int_part) - int_part.rfind(",") - 1 if grouping else 0
    d = Decimal(str(value)).quantize(Decimal(1).scaleb(-max_frac), rounding=ROUND_HALF_EVEN)
    sign = "-" if d < 0 else ""
    d = abs(d)
    text = f"{d:f}"
    ip, _, fp = text.partition(".")
    fp = fp.rstrip("0")
    fp = fp.ljust(min_frac, "0")
    ip = ip.lstrip("0").rjust(min_int, "0")
    if grouping and group_size > 0 and ip:
        groups: list[str] = []
        while len(ip) > group_size:
            groups.insert(0, ip[-group_size:])
            ip = ip[:-group_size]
        groups.insert(0, ip)
        ip = ",".join(groups)
    out = ip + ("." + fp if fp else "")
    if out == "":
        out = "0"
    return pre + sign + out + suf


def f_json(value: Any) -> str:
    _defined(value)
    return "null" if value is None else to_json(value)


def f_yaml(value: Any) -> str:
    _defined(value)
    if value is None:
        return "null"
    text = yaml.dump(
        json.loads(to_json(value)),
        Dumper=_IndentDumper,
        default_flow_style=False,
        sort_keys=False,
        allow_unicode=True,
        width=2**31 - 1,
    )
    if text.endswith("\n...\n"):
        text = text[:-4]
    return text


class _IndentDumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


@lru_cache(maxsize=256)
def _jq_program(expression: str) -> Any:
    return jq.compile(expression)


def f_jq(value: Any, expression: str) -> Any:
    _defined(value)
    if value is None:
        return None
    if expression is None:
        raise FilterError("The 'jq' filter expects an argument 'expression'.")
    try:
        prog = _jq_program(expression)
    except ValueError as e:
        raise FilterError(f"invalid jq expression {expression!r}: {e}") from e
    text = value if isinstance(value, str) else to_json(value)
    try:
        return prog.input_text(text).all()
    except ValueError as e:
        raise FilterError(f"Failed to resolve JQ expression {expression!r} and value {text!r}: {e}") from e


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def f_date(
    value: Any,
    format: str | None = None,
    timeZone: str | None = None,
    existingFormat: str | None = None,
    locale: str | None = None,
) -> Any:
    return f_date_add(value, 0, "SECONDS", format, timeZone, existingFormat, locale)


def f_date_add(
    value: Any,
    amount: int,
    unit: str,
    format: str | None = None,
    timeZone: str | None = None,
    existingFormat: str | None = None,
    locale: str | None = None,
) -> Any:
    _defined(value)
    if value is None:
        return None
    tz = dates.zone(timeZone)
    dt = dates.convert(value, tz, existingFormat)
    if amount:
        dt = dates.add(dt, int(amount), unit)
    return dates.format_date(dt, format, tz)


def _epoch(value: Any, timeZone: str | None, existingFormat: str | None) -> tuple[int, int]:
    tz = dates.zone(timeZone)
    dt = dates.convert(value, tz, existingFormat)
    micros = (dt - _EPOCH) // timedelta(microseconds=1)
    secs, us = divmod(micros, 1_000_000)
    return secs, us


def f_timestamp(value: Any, timeZone: str | None = None, existingFormat: str | None = None) -> Any:
    _defined(value)
    if value is None:
        return None
    return _epoch(value, timeZone, existingFormat)[0]


def f_timestamp_micro(value: Any, timeZone: str | None = None, existingFormat: str | None = None) -> Any:
    _defined(value)
    if value is None:
        return None
    s, us = _epoch(value, timeZone, existingFormat)
    return str(s * 1_000_000_000 + us)


def f_timestamp_nano(value: Any, timeZone: str | None = None, existingFormat: str | None = None) -> Any:
    _defined(value)
    if value is None:
        return None
    s, us = _epoch(value, timeZone, existingFormat)
    return str(s * 1_000_000_000 + us * 1000)
