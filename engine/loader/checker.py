"""What every section validator shares: the issue list and the checks of scalars, maps and lists.

Each check returns the value normalized (``"3"`` -> 3 for an integer) or None, after adding an
``Issue`` (path, line, column, the offending value and how to fix it): a section goes on after a bad
value so that one pass reports every problem of the flow.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeVar

from engine.core.durations import parse_duration
from engine.core.errors import Issue
from engine.core.model import PluginDefault
from engine.yamlpos import Positions, child_path, index_path
from plugins.registry import Registry

__all__ = ["Checker", "closest", "is_expression", "scalar_key", "show"]

_EXPR_MARKERS = ("{{", "{%")
_C = TypeVar("_C", dict[Any, Any], list[Any])


def is_expression(value: object) -> bool:
    """True if ``value`` is a string holding a template expression (rendered at run time)."""
    return isinstance(value, str) and any(m in value for m in _EXPR_MARKERS)


def show(value: object) -> str:
    """The offending value as the user wrote it, shortened."""
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif value is None:
        text = "null (nothing)"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, dict):
        text = (
            "a map {" + ", ".join(str(k) for k in list(value)[:4]) + (", ..." if len(value) > 4 else "") + "}"
        )
    elif isinstance(value, list):
        text = f"a list of {len(value)} item" + ("" if len(value) == 1 else "s")
    else:
        text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def closest(name: str, candidates: Iterable[str], noun: str = "properties") -> str:
    """The fix for a misspelt name: the closest candidate, else the list of them when it is short."""
    options = list(candidates)
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in options}
        if name.lower() in lowered:
            close = [lowered[name.lower()]]
    if close:
        return f"did you mean '{close[0]}'?"
    if options and len(options) <= 12:
        return f"known {noun}: " + ", ".join(sorted(options))
    return "remove it or check the spelling"


def scalar_key(value: object) -> str:
    """A scalar as Kestra (Jackson) turns it into text: ``true``, ``null``, ``3``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def _integral(value: object) -> bool:
    if isinstance(value, str):
        return re.fullmatch(r"\s*-?\d+\s*", value) is not None
    return isinstance(value, float) and value.is_integer()


class Checker:
    """One flow's validation: where things were written, the issues so far and what sections share.

    ``task_ids`` (every task id of the flow, for uniqueness), ``plugin_defaults`` (read before the
    tasks they apply to) and ``expressions`` (checked together at the end) cross sections.
    """

    def __init__(self, positions: Positions, file: str | None, registry: Registry) -> None:
        self.pos = positions
        self.file = file
        self.registry = registry
        self.issues: list[Issue] = []
        self.task_ids: dict[str, tuple[str, int | None]] = {}
        self.expressions: list[tuple[str, str]] = []
        self.plugin_defaults: tuple[PluginDefault, ...] = ()
        # None when the inputs section can't be read whole: no template is then judged on its inputs
        self.input_ids: frozenset[str] | None = frozenset()
        # paths whose templates another execution renders (not judged on this flow's inputs)
        self.elsewhere: list[str] = []

    # -- issues ---------------------------------------------------------------------------
    def add(self, path: str, message: str, *, key: bool = False) -> None:
        self.issue_to(self.issues, path, message, key=key)

    def issue_to(self, issues: list[Issue], path: str, message: str, *, key: bool = False) -> None:
        where = self.pos.key_or_at(path) if key else self.pos.at(path)
        line, column = where if where is not None else (None, None)
        issues.append(Issue(path or "(flow)", message, line, column, self.file))

    def wrong(self, path: str, expected: str, value: object, fix: str) -> None:
        self.add(path, f"expected {expected}, got {show(value)} — {fix}")

    def unknown_keys(self, data: Mapping[Any, Any], path: str, known: Iterable[str], what: str) -> None:
        known_list = list(known)
        for k in data:
            if k not in known_list:
                self.add(
                    child_path(path, k),
                    f"unknown {what} '{k}' — {closest(str(k), known_list)}",
                    key=True,
                )

    def unique(self, seen: set[str], item_id: str, path: str, what: str) -> bool:
        """False (and an issue at ``path``) when ``item_id`` is already in ``seen``; else adds it."""
        if item_id in seen:
            self.add(path, f"duplicate {what} id '{item_id}' — give each {what} a unique id")
            return False
        seen.add(item_id)
        return True

    # -- scalars --------------------------------------------------------------------------
    def string(self, value: Any, path: str) -> str | None:
        if value is None:
            return None
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        self.wrong(path, "a string", value, 'write text, like "my text"')
        return None

    def required_string(self, data: Mapping[str, Any], key: str, path: str, what: str) -> str | None:
        value = data.get(key)
        if value is None or value == "":
            self.add(
                path if key not in data else child_path(path, key),
                f"missing required {what} '{key}' — add '{key}: ...'",
            )
            return None
        return self.string(value, child_path(path, key))

    def boolean(self, value: Any, path: str, default: bool = False) -> bool:
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        self.wrong(path, "true or false", value, "write true or false")
        return default

    def integer(self, value: Any, path: str, *, minimum: int | None = None) -> int | None:
        if value is None:
            return None
        result: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            result = value
        elif _integral(value):
            result = int(value)
        if result is None:
            self.wrong(path, "an integer", value, "write a whole number like 3")
            return None
        if minimum is not None and result < minimum:
            self.add(path, f"must be at least {minimum}, got {result} — write a number >= {minimum}")
            return None
        return result

    def number(self, value: Any, path: str) -> float | None:
        if value is None:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        self.wrong(path, "a number", value, "write a number like 1.5")
        return None

    def duration(self, value: Any, path: str) -> float | None:
        if value is None:
            return None
        if is_expression(value):
            self.add(
                path,
                f"expected a fixed duration, got the expression {show(value)} — "
                "write an ISO-8601 duration like PT30S (expressions aren't supported here)",
            )
            return None
        try:
            return parse_duration(value)
        except ValueError:
            self.wrong(
                path, "an ISO-8601 duration", value, "write a duration like PT30S, PT5M, PT1H30M or P1D"
            )
            return None

    def choice(self, value: Any, path: str, choices: Iterable[str], what: str) -> str | None:
        if value is None:
            return None
        options = list(choices)
        text = self.string(value, path)
        if text is None:
            return None
        if text in options:
            return text
        upper = {o.upper(): o for o in options}
        hint = closest(text, options)
        if text.upper() in upper and upper[text.upper()] != text:
            hint = f"did you mean '{upper[text.upper()]}'?"
        self.add(path, f"invalid {what} {show(value)} — use one of {', '.join(options)} ({hint})")
        return None

    # -- collections ----------------------------------------------------------------------
    def mapping(self, value: Any, path: str, what: str = "a map") -> dict[Any, Any] | None:
        return self._collection(value, path, dict, what, "write 'key: value' pairs indented below it")

    def sequence(self, value: Any, path: str, what: str = "a list") -> list[Any] | None:
        return self._collection(value, path, list, what, "write a YAML list, one '- item' per line")

    def _collection(self, value: Any, path: str, kind: type[_C], what: str, fix: str) -> _C | None:
        if value is None:
            return None
        if isinstance(value, kind):
            return value
        self.wrong(path, what, value, fix)
        return None

    def maps(self, value: Any, path: str, what: str) -> Iterator[tuple[str, dict[Any, Any]]]:
        """(path, map) of each item of the list at ``path``; an item that isn't a map is an issue."""
        for i, item in enumerate(self.sequence(value, path) or []):
            sub = index_path(path, i)
            data = self.mapping(item, sub, what)
            if data is not None:
                yield sub, data

    # -- expressions ----------------------------------------------------------------------
    def collect_expressions(self, value: Any, path: str) -> None:
        """Remember every template in ``value``: their syntax is checked once the flow is read."""
        if isinstance(value, str):
            if is_expression(value):
                self.expressions.append((path, value))
        elif isinstance(value, dict):
            for k, v in value.items():
                self.collect_expressions(v, child_path(path, k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self.collect_expressions(v, index_path(path, i))
