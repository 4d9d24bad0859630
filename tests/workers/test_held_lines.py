"""A short attempt's lines wait for its end report; a long or chatty one's are published."""

from __future__ import annotations

import asyncio

import pytest

from engine.core.events import LogLine
from workers import lines as held_lines
from workers.lines import HeldLines

pytestmark = pytest.mark.anyio


def line(n: int, message: str = "") -> LogLine:
    return LogLine(f"2026-12-04T00:00:00.{n:06d}Z", "INFO", message or f"line {n}", "tr", "t", 1)


async def test_a_short_attempts_lines_are_held_for_its_end_and_later_ones_published() -> None:
    posted: list[LogLine] = []
    lines = HeldLines(posted.append)
    lines.emit(line(0))  # before any attempt: published
    lines.hold()
    lines.emit(line(1))
    lines.emit(line(2))
    assert posted == [line(0)]
    assert lines.take() == (line(1), line(2))
    lines.emit(line(3))  # between attempts ("retrying in ..."): published
    assert posted == [line(0), line(3)]
    await asyncio.sleep(held_lines.HOLD_S + 0.1)  # nothing left to release
    assert posted == [line(0), line(3)]


async def test_an_attempt_running_past_the_hold_publishes_its_lines_then_and_each_later_one() -> None:
    posted: list[LogLine] = []
    lines = HeldLines(posted.append)
    lines.hold()
    lines.emit(line(1))
    await asyncio.sleep(held_lines.HOLD_S / 2)
    assert posted == []
    await asyncio.sleep(held_lines.HOLD_S / 2 + 0.1)
    assert posted == [line(1)]
    lines.emit(line(2))
    assert posted == [line(1), line(2)]
    assert lines.take() == ()


async def test_too_many_or_too_large_lines_are_published_at_once() -> None:
    posted: list[LogLine] = []
    lines = HeldLines(posted.append)
    lines.hold()
    for n in range(held_lines.HOLD_LINES + 1):
        lines.emit(line(n))
    assert len(posted) == held_lines.HOLD_LINES + 1
    assert lines.take() == ()

    posted.clear()
    lines.hold()
    lines.emit(line(0, "x" * held_lines.HOLD_BYTES))
    assert [p.message for p in posted] == ["x" * held_lines.HOLD_BYTES]


async def test_a_new_attempt_publishes_what_the_last_one_left_held() -> None:
    posted: list[LogLine] = []
    lines = HeldLines(posted.append)
    lines.hold()
    lines.emit(line(1))
    lines.release()  # cancelled: no end report carries them
    assert posted == [line(1)]
    lines.hold()
    lines.emit(line(2))
    lines.hold()
    assert posted == [line(1), line(2)]
