"""Pebble's tests (``is defined``, ``is empty``...) and functions (``now()``, ``uuid()``, ``range()``...)."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from datetime import datetime
from decimal import Decimal
from typing import Any

import yaml
from jinja2 import Undefined, pass_context
from jinja2.runtime import Context

from engine.core.errors import FlowValidationError
from engine.yamlpos import safe_load

from . import dates
from .common import _defined, _range, is_empty
from .errors import FilterError
from .values import kestra_str


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
        return safe_load(text)
    except (yaml.YAMLError, FlowValidationError) as e:
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
    # Made on first use: most steps render no template that asks for them.
    made: list[random.Random] = []

    def rng() -> random.Random:
        if not made:
            made.append(random.Random(seed))
        return made[0]

    def step_now(format: str | None = None, timeZone: str | None = None, locale: str | None = None) -> str:
        tz = dates.zone(timeZone)
        return dates.format_date(
            datetime.fromisoformat(now.replace("Z", "+00:00")).astimezone(tz), format, tz
        )

    def step_uuid() -> str:
        return str(uuid.UUID(int=rng().getrandbits(128), version=4))

    def step_id() -> str:
        return _base62(rng().getrandbits(128))

    def step_random_int(lower: int, upper: int) -> int:
        return _random_int(lower, upper, rng().randrange)

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
