"""Wall-clock time as the ISO strings events carry (the decider itself never reads a clock)."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")[:-6] + "Z"
