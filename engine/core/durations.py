"""ISO-8601 durations (Java ``Duration`` style) to and from seconds.

``parse_duration`` accepts what Kestra accepts for a ``Duration`` property: ``PnDTnHnMn.nS``
(case-insensitive, ``,`` or ``.`` as decimal mark, each component optional but at least one),
plus weeks (``P2W``) and plain numbers of seconds (``30``, ``0.5``, ``"30"``). Negative
durations are refused. ``format_duration`` writes Java's ``Duration.toString()`` form
(``PT1H30M``, ``PT0.5S``, ``PT48H``).
"""

from __future__ import annotations

import math
import re

__all__ = ["format_duration", "is_duration", "parse_duration"]

_NUM = r"(\d+(?:[.,]\d+)?)"
_ISO = re.compile(
    rf"^P(?:{_NUM}W)?(?:{_NUM}D)?(?:T(?:{_NUM}H)?(?:{_NUM}M)?(?:{_NUM}S)?)?$",
    re.IGNORECASE,
)
_PLAIN = re.compile(r"^\d+(?:\.\d+)?$")
_HINT = "write an ISO-8601 duration like PT30S, PT5M, PT1H30M or P1D (or a number of seconds)"


def parse_duration(value: object) -> float:
    """Seconds in ``value`` (ISO-8601 duration string or number of seconds); ValueError if invalid."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, got {value!r}; {_HINT}")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"a duration can't be negative or infinite, got {value!r}; {_HINT}")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a duration, got {type(value).__name__}; {_HINT}")
    text = value.strip()
    if _PLAIN.match(text):
        return float(text)
    if text.startswith("-") or "-" in text:
        raise ValueError(f"a duration can't be negative: {value!r}; {_HINT}")
    m = _ISO.match(text)
    if m is None or text.upper() in ("P", "PT") or text.upper().endswith("T"):
        raise ValueError(f"invalid duration {value!r}; {_HINT}")
    weeks, days, hours, minutes, seconds = (float(g.replace(",", ".")) if g else 0.0 for g in m.groups())
    return weeks * 604800 + days * 86400 + hours * 3600 + minutes * 60 + seconds


def is_duration(value: object) -> bool:
    try:
        parse_duration(value)
    except ValueError:
        return False
    return True


def format_duration(seconds: float) -> str:
    """Java ``Duration.toString()`` style: ``PT0S``, ``PT0.5S``, ``PT1H30M``, ``PT48H``."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(seconds):
        raise ValueError(f"expected a number of seconds, got {seconds!r}")
    if seconds < 0:
        raise ValueError(f"a duration can't be negative, got {seconds!r}")
    # work in whole nanoseconds to avoid float noise
    nanos = round(seconds * 1_000_000_000)
    if nanos == 0:
        return "PT0S"
    total_s, frac = divmod(nanos, 1_000_000_000)
    hours, rest = divmod(total_s, 3600)
    minutes, secs = divmod(rest, 60)
    out = "PT"
    if hours:
        out += f"{hours}H"
    if minutes:
        out += f"{minutes}M"
    if secs or frac:
        out += str(secs)
        if frac:
            out += "." + f"{frac:09d}".rstrip("0")
        out += "S"
    return out
