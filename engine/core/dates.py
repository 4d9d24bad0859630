"""ISO dates as events carry them (``...Z``): the core never reads a clock, it parses given times."""

from __future__ import annotations

from datetime import datetime


def parse(date: str) -> datetime:
    return datetime.fromisoformat(date.replace("Z", "+00:00"))
