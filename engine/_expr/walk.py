"""Walking a value to render the strings inside it, written once for sync and async rendering.

A walk is a generator: it yields each text to render and is sent back the rendering, then
returns the new value. ``run_sync`` and ``run_async`` drive it with a sync or an async renderer,
so the walk itself (what is rendered, how often, what a map or list becomes) has one definition.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Mapping
from typing import Any

Walk = Generator[str, str, Any]


def needs_render(text: str) -> bool:
    """Does the text hold ``{{``, ``{%`` or ``{#``?"""
    return "{" in text and ("{{" in text or "{%" in text or "{#" in text)


def strings(value: Any) -> Walk:
    """Every string inside ``value`` that holds an expression, dict keys included; tuples stay tuples."""
    if isinstance(value, str):
        return (yield value) if needs_render(value) else value
    if isinstance(value, dict | Mapping):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            new_key = yield from strings(key)
            out[new_key] = yield from strings(item)
        return out
    if isinstance(value, list | tuple):
        items = []
        for item in value:
            items.append((yield from strings(item)))
        return items if isinstance(value, list) else tuple(items)
    return value


def until_fixed(value: Any, recursive: bool, limit: int, fail: Callable[[str], Exception]) -> Walk:
    """Kestra's ``render()``: strings rendered again while they change (at most ``limit`` times, else
    ``fail``), or once when not ``recursive``; map values and list items too (map keys are kept)."""
    if isinstance(value, str):
        out = value
        for _ in range(limit):
            if "{" not in out:
                return out
            new = yield out
            if not recursive or new == out:
                return new
            out = new
        raise fail(value)
    if isinstance(value, Mapping):
        rendered: dict[Any, Any] = {}
        for key, item in value.items():
            rendered[key] = yield from until_fixed(item, recursive, limit, fail)
        return rendered
    if isinstance(value, list | tuple):
        items = []
        for item in value:
            items.append((yield from until_fixed(item, recursive, limit, fail)))
        return items
    return value


def run_sync(walk: Walk, render: Callable[[str], str]) -> Any:
    try:
        text = next(walk)
        while True:
            text = walk.send(render(text))
    except StopIteration as done:
        return done.value


async def run_async(walk: Walk, render: Callable[[str], Awaitable[str]]) -> Any:
    try:
        text = next(walk)
        while True:
            text = walk.send(await render(text))
    except StopIteration as done:
        return done.value
