"""Pebble's text filters (case, trimming, splitting, replacing, substrings, indentation, hashes...)."""

from __future__ import annotations

import base64
import hashlib
import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from .common import _defined, java_class
from .errors import FilterError
from .values import kestra_str


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


def f_upper(value: Any) -> Any:
    return None if value is None else _str_input("upper", value).upper()


def f_lower(value: Any) -> Any:
    return None if value is None else _str_input("lower", value).lower()


def f_trim(value: Any) -> Any:
    return None if value is None else _str_input("trim", value).strip()


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


def _substring(name: str, value: Any, separator: str | None, *, last: bool, after: bool) -> Any:
    """commons-lang's substringBefore/After[Last], which Pebble's filters follow."""
    if value is None:
        return None
    s = _str_input(name, value)
    # No separator: beforeLast keeps it all, the others give nothing; but "" is found at once by after.
    if separator is None or (separator == "" and (last or not after)):
        return s if (last and not after) else ""
    i = s.rfind(separator) if last else s.find(separator)
    if not after:
        return s if i < 0 else s[:i]
    if i < 0 or (last and i == len(s) - len(separator)):
        return ""
    return s[i + len(separator) :]


def f_substring_before(value: Any, separator: str) -> Any:
    return _substring("substringBefore", value, separator, last=False, after=False)


def f_substring_before_last(value: Any, separator: str) -> Any:
    return _substring("substringBeforeLast", value, separator, last=True, after=False)


def f_substring_after(value: Any, separator: str) -> Any:
    return _substring("substringAfter", value, separator, last=False, after=True)


def f_substring_after_last(value: Any, separator: str) -> Any:
    return _substring("substringAfterLast", value, separator, last=True, after=True)


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
