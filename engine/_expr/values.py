"""How Kestra turns values into text: JSON for maps and lists, Java-style numbers and booleans."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping, Set
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any

from jinja2 import Undefined

from engine.core.durations import format_duration

__all__ = ["java_double", "json_default", "kestra_str", "to_json", "undefined_check"]


def java_double(d: float) -> str:
    """``Double.toString``: ``1.0``, ``0.5``, ``1.0E10``, ``1.0E-5``, ``NaN``, ``Infinity``."""
    if math.isnan(d):
        return "NaN"
    if math.isinf(d):
        return "Infinity" if d > 0 else "-Infinity"
    if d == 0:
        return "-0.0" if math.copysign(1.0, d) < 0 else "0.0"
    a = abs(d)
    if 1e-3 <= a < 1e7:
        r = repr(d)
        if "e" not in r:
            return r if "." in r else r + ".0"
    sign, digits, exp = Decimal(repr(d)).as_tuple()
    ds = "".join(map(str, digits)).rstrip("0") or "0"
    assert isinstance(exp, int)
    e10 = exp + len(digits) - 1
    mant = ds[0] + "." + (ds[1:] or "0")
    return ("-" if sign else "") + mant + "E" + str(e10)


def json_default(o: Any) -> Any:
    if isinstance(o, Undefined):
        undefined_check(o)
    if isinstance(o, datetime | date | time):
        return o.isoformat()
    if isinstance(o, timedelta):
        return _iso_duration(o)
    if isinstance(o, Decimal):
        return float(o)
    if isinstance(o, Set | tuple):
        return list(o)
    if isinstance(o, Mapping):
        return dict(o)
    if isinstance(o, Enum):
        return o.value
    if isinstance(o, bytes):
        return base64.b64encode(o).decode("ascii")
    if hasattr(o, "__struct_fields__"):  # msgspec.Struct
        return {f: getattr(o, f) for f in o.__struct_fields__}
    raise TypeError(f"cannot serialize a value of type {type(o).__name__} to JSON")


def _iso_duration(td: timedelta) -> str:
    """Java's ``Duration.toString()``, negative durations included (``-PT1H``)."""
    total = td.total_seconds()
    return ("-" if total < 0 else "") + format_duration(abs(total))


def to_json(value: Any) -> str:
    """Compact JSON like Jackson's default writer (no spaces, unicode kept)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=json_default, allow_nan=True)


def undefined_check(value: Undefined) -> None:
    value._fail_with_undefined_error()


def kestra_str(value: Any) -> str:
    """Text of a value the way Kestra prints it in ``{{ }}``."""
    t = type(value)
    if t is str:
        return value  # type: ignore[no-any-return]
    if value is None:
        return ""
    if t is bool:
        return "true" if value else "false"
    if t is int:
        return str(value)
    if t is float:
        return java_double(value)
    if isinstance(value, Undefined):
        undefined_check(value)
    if isinstance(value, Mapping | list | tuple | Set):
        return to_json(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return _iso_duration(value)
    if isinstance(value, Enum):
        return kestra_str(value.value)
    return str(value)
