"""engine.durations: ISO-8601 durations <-> seconds."""

from __future__ import annotations

import pytest

from engine.core.durations import format_duration, is_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("PT1S", 1.0),
        ("PT0.5S", 0.5),
        ("PT0.250S", 0.25),
        ("PT0.25s", 0.25),
        ("pt1m", 60.0),
        ("P1D", 86400.0),
        ("PT1H30M", 5400.0),
        ("P1DT2H", 93600.0),
        ("P2W", 1209600.0),
        ("PT5M6S", 306.0),
        ("PT0,5S", 0.5),
        ("30", 30.0),
        ("1.5", 1.5),
        (12, 12.0),
        (0.25, 0.25),
    ],
)
def test_parse(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert is_duration(text)


@pytest.mark.parametrize(
    "bad", ["", "P", "PT", "P1DT", "-PT1S", "PT-1S", "1 hour", "P1Y", "PT1H2", True, None, -3, [1]]
)
def test_parse_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)
    assert not is_duration(bad)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "PT0S"),
        (0.5, "PT0.5S"),
        (1, "PT1S"),
        (90, "PT1M30S"),
        (3600, "PT1H"),
        (5400, "PT1H30M"),
        (86400, "PT24H"),
        (306, "PT5M6S"),
        (0.001, "PT0.001S"),
    ],
)
def test_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), True, "PT1S"])
def test_format_rejects(bad: object) -> None:
    with pytest.raises(ValueError):
        format_duration(bad)  # type: ignore[arg-type]
