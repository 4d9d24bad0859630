"""The event clock: the same ISO text ``datetime`` gives, across a second's boundary too."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from engine import clock


def test_utcnow_is_the_iso_text_of_now() -> None:
    before = datetime.now(UTC)
    text = clock.utcnow()
    after = datetime.now(UTC)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert before <= parsed <= after
    assert len(text) == len("2026-12-04T02:21:06.123456Z") and text.endswith("Z")


def test_utcnow_formats_a_new_second_and_pads_microseconds(monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = iter([1_700_000_000_000_042_000, 1_700_000_001_999_999_000])
    monkeypatch.setattr(time, "time_ns", lambda: next(ticks))
    assert clock.utcnow() == "2023-11-14T22:13:20.000042Z"
    assert clock.utcnow() == "2023-11-14T22:13:21.999999Z"
