"""Pebble's and Kestra's filters, tests and functions, and the helpers the translator emits."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache
from typing import Any
from urllib.parse import quote_plus, unquote_plus

import jq
import yaml
from jinja2 import Undefined, pass_context
from jinja2.runtime import Context

from . import dates
from .values import java_double, kestra_str, to_json, undefined_check

__all__ = ["FILTERS", "FUNCTIONS", "HELPERS", "TESTS", "FilterError"]


class FilterError(ValueError):
    """A filter or function was given something it cannot work with."""


def _defined(value: Any) -> Any:
    if isinstance(value, Undefined):
        undefined_check(value)
    return value


def _type(value: Any) -> str:
    return java_class(value)


def java_class(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "java.lang.Boolean"
    if isinstance(value, int):
        return "java.lang.Integer" if -(2**31) <= value < 2**31 else "java.lang.Long"
    if isinstance(value, float):
        return "java.lang.Double"
    if isinstance(value, Decimal):
        return "java.math.BigDecimal"
    if isinstance(value, str):
        return "java.lang.String"
    if isinstance(value, Mapping):
        return "java.util.LinkedHashMap"
    if isinstance(value, list | tuple):
        return "java.util.ArrayList"
    if isinstance(value, AbstractSet):
        return "java.util.HashSet"
    if isinstance(value, datetime):
        return "java.time.ZonedDateTime"
    return type(value).__name__


# --------------------------------------------------------------------------------------- helpers


def is_empty(value: Any) -> bool:
    """Pebble's ``EmptyTest``: null, blank string, empty collection or map."""
    if value is None:
        return True
    if isinstance(value, Undefined):
        undefined_check(value)
    if isinstance(value, str):
        return value.strip() == ""
    if isinstance(value, Mapping | Sequence | AbstractSet):
        return len(value) == 0
    return False


def _contains(container: Any, item: Any) -> bool:
    _defined(container)
    _defined(item)
    if container is None:
        return False
    if isinstance(container, str):
        if isinstance(item, list | tuple | AbstractSet):
            return all(str(i) in container for i in item)
        return kestra_str(item) in container
    if isinstance(container, Mapping):
        if isinstance(item, list | tuple | AbstractSet):
            return all(i in container for i in item)
        return item in container
    if isinstance(container, Iterable):
        items = list(container)
        if isinstance(item, list | tuple | AbstractSet):
            return all(i in items for i in item)
        return item in items
    raise FilterError(f"'contains' cannot be applied to a {java_class(container)}")


def _cat(*parts: Any) -> str:
    return "".join(kestra_str(_defined(p)) for p in parts)


def _range(start: Any, end: Any, step: Any = 1) -> list[Any]:
    _defined(start)
    _defined(end)
    if isinstance(start, str) and isinstance(end, str) and len(start) == 1 and len(end) == 1:
        return [chr(c) for c in range(ord(start), ord(end) + 1, int(step))]
    if isinstance(start, float) or isinstance(end, float) or isinstance(step, float):
        out: list[Any] = []
        cur = float(start)
        if step == 0:
            raise FilterError("range step cannot be 0")
        while (cur <= end) if step > 0 else (cur >= end):
            out.append(cur)
            cur += step
        return out
    if int(step) == 0:
        raise FilterError("range step cannot be 0")
    s = int(step)
    return list(range(int(start), int(end) + (1 if s > 0 else -1), s))


def _to_bool(value: Any) -> bool:
    return bool(_defined(value))


def is_nullish(value: Any) -> bool:
    return value is None or isinstance(value, Undefined)


def is_undefined(value: Any) -> bool:
    return isinstance(value, Undefined)


def _nc(left: Any, right: Any) -> Any:
    return right if is_nullish(left) else left


def _uc(left: Any, right: Any) -> Any:
    return right if isinstance(left, Undefined) else left


def _iter(value: Any) -> Any:
    _defined(value)
    if value is None:
        return ()
    if isinstance(value, Mapping):
        return [{"key": k, "value": v} for k, v in value.items()]
    return value


def _items(value: Any) -> Any:
    _defined(value)
    if value is None:
        return ()
    if isinstance(value, Mapping):
        return list(value.items())
    return value


HELPERS: dict[str, Any] = {
    "_pb_bool": _to_bool,
    "_pb_contains": _contains,
    "_pb_cat": _cat,
    "_pb_range": _range,
    "_pb_nc": _nc,
    "_pb_uc": _uc,
    "_pb_iter": _iter,
    "_pb_items": _items,
}


# ------------------------------------------------------------------------------------------ filters


def _str_input(name: str, value: Any) -> str:
    _defined(value)
    if isinstance(value, str):
        return value
    return kestra_str(value)


def f_abbreviate(value: Any, length: int) -> Any:
    if value is None:
        return None
    s = _str_input("abbreviate", value)
    if length < 0:
        raise FilterError("abbreviate: length must be >= 0")
    if len(s) <= length:
        return s
    if length <= 3:
        return s[:length]
    return s[: length - 3] + "..."


def f_abs(value: Any) -> Any:
    if value is None:
        return None
    return abs(_defined(value))


def f_capitalize(value: Any) -> Any:
    if value is None:
        return None
    s = _str_input("capitalize", value)
    return s[:1].upper() + s[1:]


def f_title(value: Any) -> Any:
    if value is None:
        return None
    s = _str_input("title", value)
    out: list[str] = []
    cap = True
    for c in s:
        if c.isspace():
            cap = True
            out.append(c)
        elif cap:
            out.append(c.upper())
            cap = False
        else:
            out.append(c.lower())
    return "".join(out)


def f_default(value: Any, default: Any = None) -> Any:
    if isinstance(value, Undefined) or is_empty(value):
        return default
    return value


def f_upper(value: Any) -> Any:
    return None if value is None else _str_input("upper", value).upper()


def f_lower(value: Any) -> Any:
    return None if value is None else _str_input("lower", value).lower()


def f_trim(value: Any) -> Any:
    return None if value is None else _str_input("trim", value).strip()


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


def _java_split(s: str, delimiter: str, limit: int | None) -> list[str]:
    if len(delimiter) == 1 and delimiter not in ".$|()[{^?*+\\":
        parts = s.split(delimiter) if not limit or limit <= 0 else s.split(delimiter, limit - 1)
    else:
        parts = re.split(delimiter, s, maxsplit=(limit - 1) if limit and limit > 0 else 0)
    if not limit:
        while parts and parts[-1] == "":
            parts.pop()
        if not parts:
            return [""] if s == "" else []
    return parts


def f_split(value: Any, delimiter: str, limit: int | None = None) -> Any:
    if value is None:
        return None
    s = _str_input("split", value)
    if delimiter is None:
        raise FilterError("split: missing delimiter")
    return _java_split(s, delimiter, limit)


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


def _replace_str(s: str, pairs: Mapping[Any, Any], regexp: bool) -> str:
    for k, v in pairs.items():
        if regexp:
            s = re.sub(str(k), re.sub(r"\$(\d)", r"\\\1", kestra_str(v)), s)
        else:
            s = s.replace(kestra_str(k), kestra_str(v))
    return s


def _replace_any(value: Any, pairs: Mapping[Any, Any], regexp: bool) -> Any:
    if isinstance(value, Mapping):
        return {k: _replace_any(v, pairs, regexp) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_replace_any(v, pairs, regexp) for v in value]
    return _replace_str(kestra_str(value), pairs, regexp)


def f_replace(value: Any, replace_pairs: Any = None, *args: Any, regexp: bool = False) -> Any:
    _defined(value)
    if value is None:
        return None
    if isinstance(replace_pairs, Mapping):
        if args:
            regexp = bool(args[0])
        pairs: Mapping[Any, Any] = replace_pairs
    elif isinstance(replace_pairs, str) and args:
        pairs = {replace_pairs: args[0]}
        if len(args) > 1:
            regexp = bool(args[1])
    else:
        raise FilterError("replace: expects a map of replacements, e.g. replace({'a': 'b'})")
    return _replace_any(value, pairs, regexp)


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


def f_escape_char(value: Any, type: str) -> Any:
    _defined(value)
    if value is None:
        return None
    kind = (type or "").lower()
    if kind == "shell":
        a, b = "'", "'\\''"
    elif kind == "single":
        a, b = "'", "\\'"
    elif kind == "double":
        a, b = '"', '\\"'
    else:
        raise FilterError(
            "The 'escapeChar' filter expects the value of 'type' to be either 'single', 'double', or 'shell'."
        )

    def esc(v: Any) -> Any:
        if isinstance(v, Mapping):
            return {k: esc(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [esc(x) for x in v]
        return kestra_str(v).replace(a, b)

    return esc(value)


def f_slugify(value: Any) -> Any:
    if value is None:
        return None
    s = re.sub(r"\s", "-", _str_input("slugify", value))
    s = unicodedata.normalize("NFD", s)
    s = re.sub(r"[^A-Za-z0-9_-]", "", s)
    s = s.replace("_", "-")
    s = re.sub(r"-{2,}", "-", s).strip("-")
    return s.lower()


def f_urlencode(value: Any) -> Any:
    if value is None:
        return None
    return quote_plus(_str_input("urlencode", value), safe="*").replace("~", "%7E")


def f_urldecode(value: Any) -> Any:
    if value is None:
        return None
    return unquote_plus(_str_input("urldecode", value))


def f_substring_before(value: Any, separator: str) -> Any:
    if value is None:
        return None
    s = _str_input("substringBefore", value)
    if not separator:
        return ""
    i = s.find(separator)
    return s if i < 0 else s[:i]


def f_substring_before_last(value: Any, separator: str) -> Any:
    if value is None:
        return None
    s = _str_input("substringBeforeLast", value)
    if not separator:
        return s
    i = s.rfind(separator)
    return s if i < 0 else s[:i]


def f_substring_after(value: Any, separator: str) -> Any:
    if value is None:
        return None
    s = _str_input("substringAfter", value)
    if separator is None:
        return ""
    i = s.find(separator)
    return "" if i < 0 else s[i + len(separator) :]


def f_substring_after_last(value: Any, separator: str) -> Any:
    if value is None:
        return None
    s = _str_input("substringAfterLast", value)
    if not separator:
        return ""
    i = s.rfind(separator)
    return "" if i < 0 or i == len(s) - len(separator) else s[i + len(separator) :]


def f_starts_with(input_: Any, value: Any) -> bool:
    return _str_input("startsWith", input_).startswith(kestra_str(value))


def f_ends_with(input_: Any, value: Any) -> bool:
    return _str_input("endsWith", input_).endswith(kestra_str(value))


def _line_sep(s: str) -> str:
    for sep in ("\r\n", "\n\r", "\n", "\r"):
        if sep in s:
            return sep
    return "\n"


def _indent(value: Any, amount: int, prefix: str, new_line_first: bool) -> Any:
    if value is None:
        return None
    s = _str_input("indent", value)
    if s == "":
        return s
    if amount is None or int(amount) < 0:
        raise FilterError("indent: expects a positive integer >=0 as argument 'amount'.")
    nl = _line_sep(s)
    pad = (prefix if prefix is not None else " ") * int(amount)
    if new_line_first:
        s = nl + s
    return s.replace(nl, nl + pad)


def f_indent(value: Any, amount: int, prefix: str = " ") -> Any:
    return _indent(value, amount, prefix, False)


def f_nindent(value: Any, amount: int, prefix: str = " ") -> Any:
    return _indent(value, amount, prefix, True)


def _hash(algo: str) -> Callable[[Any], Any]:
    def digest(value: Any) -> Any:
        _defined(value)
        if value is None:
            return None
        if not isinstance(value, str):
            raise FilterError("Need a string to hash")
        return hashlib.new(algo, value.encode("utf-8")).hexdigest()

    digest.__name__ = algo
    return digest


def f_base64encode(value: Any) -> Any:
    _defined(value)
    if value is None:
        return None
    data = value if isinstance(value, bytes) else kestra_str(value).encode("utf-8")
    return base64.b64encode(data).decode("ascii")


def f_base64decode(value: Any) -> Any:
    _defined(value)
    if value is None:
        return None
    try:
        return base64.b64decode(kestra_str(value), validate=False).decode("utf-8")
    except (ValueError, UnicodeDecodeError) as e:
        raise FilterError(f"base64decode: {e}") from e


def f_class_name(value: Any) -> Any:
    _defined(value)
    return None if value is None else java_class(value)


def f_string(value: Any) -> str:
    return kestra_str(_defined(value))


# dates

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def f_date(
    value: Any,
    format: str | None = None,
    timeZone: str | None = None,
    existingFormat: str | None = None,
    locale: str | None = None,
) -> Any:
    _defined(value)
    if value is None:
        return None
    tz = dates.zone(timeZone)
    return dates.format_date(dates.convert(value, tz, existingFormat), format, tz)


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
    dt = dates.add(dates.convert(value, tz, existingFormat), int(amount), unit)
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


FILTERS: dict[str, Callable[..., Any]] = {
    "abbreviate": f_abbreviate,
    "abs": f_abs,
    "capitalize": f_capitalize,
    "title": f_title,
    "default": f_default,
    "upper": f_upper,
    "lower": f_lower,
    "trim": f_trim,
    "length": f_length,
    "join": f_join,
    "split": f_split,
    "first": f_first,
    "last": f_last,
    "keys": f_keys,
    "values": f_values,
    "sort": f_sort,
    "rsort": f_rsort,
    "reverse": f_reverse,
    "slice": f_slice,
    "replace": f_replace,
    "merge": f_merge,
    "chunk": f_chunk,
    "flatten": f_flatten,
    "number": f_number,
    "numberformat": f_numberformat,
    "numberFormat": f_numberformat,
    "json": f_json,
    "toJson": f_json,
    "yaml": f_yaml,
    "jq": f_jq,
    "escapeChar": f_escape_char,
    "slugify": f_slugify,
    "urlencode": f_urlencode,
    "urldecode": f_urldecode,
    "substringBefore": f_substring_before,
    "substringBeforeLast": f_substring_before_last,
    "substringAfter": f_substring_after,
    "substringAfterLast": f_substring_after_last,
    "startsWith": f_starts_with,
    "endsWith": f_ends_with,
    "indent": f_indent,
    "nindent": f_nindent,
    "sha1": _hash("sha1"),
    "sha256": _hash("sha256"),
    "sha512": _hash("sha512"),
    "md5": _hash("md5"),
    "base64encode": f_base64encode,
    "base64decode": f_base64decode,
    "className": f_class_name,
    "string": f_string,
    "date": f_date,
    "dateAdd": f_date_add,
    "timestamp": f_timestamp,
    "timestampMicro": f_timestamp_micro,
    "timestampNano": f_timestamp_nano,
}


# -------------------------------------------------------------------------------------------- tests


def t_defined(value: Any) -> bool:
    return not isinstance(value, Undefined)


def t_null(value: Any) -> bool:
    return value is None or isinstance(value, Undefined)


def t_empty(value: Any) -> bool:
    return is_empty(value)


def t_even(value: Any) -> bool:
    return int(_defined(value)) % 2 == 0


def t_odd(value: Any) -> bool:
    return int(_defined(value)) % 2 == 1


def t_iterable(value: Any) -> bool:
    _defined(value)
    return isinstance(value, list | tuple | AbstractSet)


def t_map(value: Any) -> bool:
    _defined(value)
    return isinstance(value, Mapping)


def t_json(value: Any) -> bool:
    _defined(value)
    if not isinstance(value, str):
        return False
    try:
        json.loads(value)
    except ValueError:
        return False
    return True


def t_string(value: Any) -> bool:
    return isinstance(_defined(value), str)


def t_number(value: Any) -> bool:
    v = _defined(value)
    return isinstance(v, int | float | Decimal) and not isinstance(v, bool)


def t_boolean(value: Any) -> bool:
    return isinstance(_defined(value), bool)


TESTS: dict[str, Callable[..., bool]] = {
    "defined": t_defined,
    "null": t_null,
    "none": t_null,
    "empty": t_empty,
    "even": t_even,
    "odd": t_odd,
    "iterable": t_iterable,
    "map": t_map,
    "json": t_json,
    "string": t_string,
    "number": t_number,
    "boolean": t_boolean,
}


# ---------------------------------------------------------------------------------------- functions


def fn_now(format: str | None = None, timeZone: str | None = None, locale: str | None = None) -> str:
    tz = dates.zone(timeZone)
    return dates.format_date(datetime.now(tz), format, tz)


def fn_from_json(json_: Any = None, **kw: Any) -> Any:
    text = kw.get("json", json_)
    _defined(text)
    if text is None:
        return None
    if not isinstance(text, str):
        raise FilterError("The 'fromJson' function expects an argument 'json' with type string.")
    try:
        return json.loads(text)
    except ValueError as e:
        raise FilterError(f"Invalid json: {e}") from e


def fn_yaml(yaml_: Any = None, **kw: Any) -> Any:
    text = kw.get("yaml", yaml_)
    _defined(text)
    if not isinstance(text, str):
        raise FilterError("The 'yaml' function expects an argument 'yaml' with type string.")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise FilterError(f"Invalid yaml: {e}") from e


@pass_context
def fn_current_each_output(context: Context, outputs: Any) -> Any:
    _defined(outputs)
    if not isinstance(outputs, Mapping):
        raise FilterError("The 'currentEachOutput' function expects an argument 'outputs' with type map.")
    current: Any = outputs
    parents = context.get("parents")
    if isinstance(parents, list | tuple):
        for parent in reversed(parents):
            taskrun = parent.get("taskrun") if isinstance(parent, Mapping) else None
            if isinstance(taskrun, Mapping) and isinstance(current, Mapping):
                current = current.get(_key(taskrun.get("value")))
    taskrun = context.get("taskrun")
    if not isinstance(taskrun, Mapping) or not isinstance(current, Mapping):
        return None
    return current.get(_key(taskrun.get("value")))


def _key(v: Any) -> Any:
    return v if isinstance(v, str) else kestra_str(v)


def fn_uuid() -> str:
    return str(uuid.uuid4())


_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _base62(n: int) -> str:
    """Kestra's ``IdUtils.create()`` shape: a 128-bit number in base 62 (22 characters)."""
    out = []
    while n:
        n, r = divmod(n, 62)
        out.append(_B62[r])
    return "".join(reversed(out)).rjust(22, "0")


def fn_id() -> str:
    return _base62(uuid.uuid4().int)


def _random_int(lower: int, upper: int, randrange: Callable[[int, int], int]) -> int:
    if not isinstance(lower, int) or not isinstance(upper, int):
        raise FilterError("randomInt expects integer arguments 'lower' and 'upper'")
    if upper < lower:
        raise FilterError("In 'randomInt' upper is less than lower")
    if upper == lower:
        return lower
    return randrange(lower, upper)


def fn_random_int(lower: int, upper: int) -> int:
    return _random_int(lower, upper, random.randrange)


def step_functions(now: str, seed: str) -> dict[str, Callable[..., Any]]:
    """``now()``, ``uuid()``, ``id()`` and ``randomInt()`` for one decider step: the time is the
    step's and the numbers come from a generator seeded by ``seed``, so deciding the same step
    twice renders the same values (a decision must not depend on when or where it is made)."""
    at = datetime.fromisoformat(now.replace("Z", "+00:00"))
    rng = random.Random(seed)

    def step_now(format: str | None = None, timeZone: str | None = None, locale: str | None = None) -> str:
        tz = dates.zone(timeZone)
        return dates.format_date(at.astimezone(tz), format, tz)

    def step_uuid() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    def step_id() -> str:
        return _base62(rng.getrandbits(128))

    def step_random_int(lower: int, upper: int) -> int:
        return _random_int(lower, upper, rng.randrange)

    return {"now": step_now, "uuid": step_uuid, "id": step_id, "randomInt": step_random_int}


def fn_range(start: Any, end: Any, step: Any = 1) -> list[Any]:
    return _range(start, end, step)


def _flat_args(args: tuple[Any, ...]) -> list[Any]:
    if len(args) == 1 and isinstance(args[0], list | tuple | AbstractSet):
        return list(args[0])
    return list(args)


def fn_max(*args: Any) -> Any:
    return max(_defined(a) for a in _flat_args(args))


def fn_min(*args: Any) -> Any:
    return min(_defined(a) for a in _flat_args(args))


def fn_is_empty(value: Any) -> bool:
    return is_empty(value)


@pass_context
def fn_print_context(context: Context) -> Any:
    return {k: v for k, v in context.get_all().items() if not k.startswith("_pb")}


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "now": fn_now,
    "fromJson": fn_from_json,
    "json": fn_from_json,
    "yaml": fn_yaml,
    "currentEachOutput": fn_current_each_output,
    "uuid": fn_uuid,
    "id": fn_id,
    "randomInt": fn_random_int,
    "range": fn_range,
    "max": fn_max,
    "min": fn_min,
    "isEmpty": fn_is_empty,
    "printContext": fn_print_context,
    "fetchContext": fn_print_context,
}

__all__ += ["java_class", "java_double"]
