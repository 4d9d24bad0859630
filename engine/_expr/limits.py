"""Bounds on what one expression may build: an expression is untrusted input.

``{{ ('x' * 100000) * 100000 }}`` or ``range(0, 10**8)`` must be refused with a message, not
allowed to take the memory of the role that renders it, and ``{% for %}`` over a huge sequence
must stop after a bounded number of steps instead of holding the event loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import Any

from .errors import FilterError

MAX_CHARS = 10 * 1024 * 1024
"""Longest text an operator may build."""

MAX_ITEMS = 1_000_000
"""Longest list an operator or ``range`` may build."""

MAX_STEPS = 1_000_000
"""Loop iterations one rendering may run, nested loops and nested ``render()`` counted together."""


class LimitExceeded(FilterError):
    """An expression asked for more than the bounds above."""


def _too_big(what: str, size: int, limit: int) -> LimitExceeded:
    return LimitExceeded(f"{what} would be {size:,} long; an expression may build at most {limit:,}")


def _limit(value: Any) -> int | None:
    if isinstance(value, str):
        return MAX_CHARS
    if isinstance(value, list | tuple):
        return MAX_ITEMS
    return None


def times(left: Any, right: Any) -> Any:
    for seq, n in ((left, right), (right, left)):
        limit = _limit(seq)
        counts = isinstance(n, int) and not isinstance(n, bool) and n > 0
        if limit is not None and counts and len(seq) * n > limit:
            raise _too_big("the repeated value", len(seq) * n, limit)
    return left * right


def plus(left: Any, right: Any) -> Any:
    limit = _limit(left)
    if limit is not None and _limit(right) == limit and len(left) + len(right) > limit:
        raise _too_big("the joined value", len(left) + len(right), limit)
    return left + right


def check_count(count: int) -> None:
    if count > MAX_ITEMS:
        raise _too_big("the range", count, MAX_ITEMS)


_steps: ContextVar[list[int] | None] = ContextVar("expression_steps", default=None)


class Budget:
    """The loop budget of one rendering; nested renderings share the outermost one."""

    def __enter__(self) -> None:
        self._token = _steps.set([MAX_STEPS]) if _steps.get() is None else None

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _steps.reset(self._token)


def counted(iterable: Iterable[Any]) -> Iterator[Any]:
    """``iterable``, charged to the current rendering's loop budget."""
    left = _steps.get()
    for item in iterable:
        if left is not None:
            left[0] -= 1
            if left[0] < 0:
                raise LimitExceeded(f"the loops of this expression ran more than {MAX_STEPS:,} steps")
        yield item
