"""Helpers the whole library shares: Kestra's errors, null and emptiness rules, Java class names."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime
from decimal import Decimal
from typing import Any

from jinja2 import Undefined

from .errors import FilterError
from .limits import check_count
from .values import kestra_str, undefined_check


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
        letters = range(ord(start), ord(end) + 1, int(step))
        check_count(len(letters))
        return [chr(c) for c in letters]
    if isinstance(start, float) or isinstance(end, float) or isinstance(step, float):
        if step == 0:
            raise FilterError("range step cannot be 0")
        check_count(int((float(end) - float(start)) / float(step)) + 1)
        out: list[Any] = []
        cur = float(start)
        while (cur <= end) if step > 0 else (cur >= end):
            out.append(cur)
            cur += step
        return out
    if int(step) == 0:
        raise FilterError("range step cannot be 0")
    s = int(step)
    span = range(int(start), int(end) + (1 if s > 0 else -1), s)
    check_count(len(span))
    return list(span)


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
