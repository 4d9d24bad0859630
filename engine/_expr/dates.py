"""Java ``DateTimeFormatter`` patterns and Kestra's date conversions, in Python.

Kestra's date filters (``AbstractDate``) accept dates as ISO-8601 strings, epoch seconds or date
objects, convert them to a zoned date-time in the requested zone (the JVM default zone when none is
given; here: UTC) and format them with a Java pattern or one of a few named formatters.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from email.utils import parsedate_to_datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["add", "convert", "format_date", "zone"]

_DAY_NAMES = list(calendar.day_name)  # Monday first
_DAY_ABBR = list(calendar.day_abbr)
_MONTH_NAMES = [
    "",
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_MONTH_ABBR = [m[:3] for m in _MONTH_NAMES]


class DateError(ValueError):
    pass


# ------------------------------------------------------------------------------------------- zones


@lru_cache(maxsize=256)
def zone(name: str | None) -> tzinfo:
    if name is None or name in ("UTC", "Z", "GMT", "UT"):
        return UTC
    m = re.fullmatch(r"(?:UTC|GMT|UT)?([+-])(\d{1,2})(?::?(\d{2}))?", name)
    if m:
        from datetime import timezone

        sign = -1 if m.group(1) == "-" else 1
        return timezone(sign * timedelta(hours=int(m.group(2)), minutes=int(m.group(3) or 0)))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise DateError(f"unknown time zone {name!r}") from e


def _zone_id(tz: tzinfo | None, dt: datetime) -> str:
    if isinstance(tz, ZoneInfo):
        return tz.key
    off = dt.utcoffset()
    if not off:
        return "Z"
    return _offset(off, colon=True, zulu=False)


# ---------------------------------------------------------------------------------------- formatting


def _offset(off: timedelta | None, *, colon: bool, zulu: bool, minutes: str = "always") -> str:
    if off is None:
        raise DateError("the date has no time zone offset")
    total = int(off.total_seconds())
    if total == 0 and zulu:
        return "Z"
    sign = "-" if total < 0 else "+"
    total = abs(total)
    h, rem = divmod(total, 3600)
    m, s = divmod(rem, 60)
    if minutes == "optional" and m == 0 and s == 0:
        return f"{sign}{h:02d}"
    sep = ":" if colon else ""
    out = f"{sign}{h:02d}{sep}{m:02d}"
    if s:
        out += f"{sep}{s:02d}"
    return out


def _tokenize(pattern: str) -> list[tuple[str, int] | str]:
    """Split a Java pattern into (letter, count) runs and literal strings."""
    out: list[tuple[str, int] | str] = []
    i = 0
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if c == "'":
            if pattern.startswith("''", i):
                out.append("'")
                i += 2
                continue
            j = i + 1
            buf: list[str] = []
            while j < n:
                if pattern[j] == "'":
                    if pattern.startswith("''", j):
                        buf.append("'")
                        j += 2
                        continue
                    break
                buf.append(pattern[j])
                j += 1
            if j >= n:
                raise DateError(f"unterminated quote in date pattern {pattern!r}")
            out.append("".join(buf))
            i = j + 1
            continue
        if c in "[]":
            i += 1
            continue
        if c.isalpha():
            j = i
            while j < n and pattern[j] == c:
                j += 1
            out.append((c, j - i))
            i = j
            continue
        if c in "{}#":
            raise DateError(f"reserved character {c!r} in date pattern {pattern!r}")
        out.append(c)
        i += 1
    return out


def _num(v: int, count: int) -> str:
    return str(v).zfill(count)


def _field(dt: datetime, letter: str, count: int) -> str:
    if letter in "yu":
        if count == 2:
            return _num(dt.year % 100, 2)
        return _num(dt.year, count)
    if letter == "Y":
        iso_year = dt.isocalendar()[0]
        return _num(iso_year % 100, 2) if count == 2 else _num(iso_year, count)
    if letter in "ML":
        if count <= 2:
            return _num(dt.month, count)
        if count == 3:
            return _MONTH_ABBR[dt.month]
        if count == 4:
            return _MONTH_NAMES[dt.month]
        return _MONTH_NAMES[dt.month][0]
    if letter == "d":
        return _num(dt.day, count)
    if letter == "D":
        return _num(dt.timetuple().tm_yday, count)
    if letter == "H":
        return _num(dt.hour, count)
    if letter == "k":
        return _num(dt.hour or 24, count)
    if letter == "h":
        return _num((dt.hour % 12) or 12, count)
    if letter == "K":
        return _num(dt.hour % 12, count)
    if letter == "m":
        return _num(dt.minute, count)
    if letter == "s":
        return _num(dt.second, count)
    if letter == "S":
        return f"{dt.microsecond:06d}000"[:count] if count <= 9 else f"{dt.microsecond:06d}".ljust(count, "0")
    if letter == "n":
        return _num(dt.microsecond * 1000, count)
    if letter == "A":
        ms = ((dt.hour * 60 + dt.minute) * 60 + dt.second) * 1000 + dt.microsecond // 1000
        return _num(ms, count)
    if letter == "a":
        return "AM" if dt.hour < 12 else "PM"
    if letter in "Eec":
        if letter in "ec" and count <= 2:
            return _num(dt.isoweekday() % 7 + 1, count)
        if count <= 3:
            return _DAY_ABBR[dt.weekday()]
        if count == 4:
            return _DAY_NAMES[dt.weekday()]
        return _DAY_NAMES[dt.weekday()][0]
    if letter in "Qq":
        q = (dt.month - 1) // 3 + 1
        if count <= 2:
            return _num(q, count)
        if count == 3:
            return f"Q{q}"
        return ["1st", "2nd", "3rd", "4th"][q - 1] + " quarter"
    if letter == "w":
        return _num(dt.isocalendar()[1], count)
    if letter == "W":
        return str((dt.day - 1 + date(dt.year, dt.month, 1).weekday()) // 7 + 1)
    if letter == "G":
        return "AD" if count <= 3 else "Anno Domini"
    off = dt.utcoffset()
    if letter == "X":
        if count == 1:
            return _offset(off, colon=False, zulu=True, minutes="optional")
        return _offset(off, colon=count in (3, 5), zulu=True)
    if letter == "x":
        if count == 1:
            return _offset(off, colon=False, zulu=False, minutes="optional")
        return _offset(off, colon=count in (3, 5), zulu=False)
    if letter == "Z":
        if count <= 3:
            return _offset(off, colon=False, zulu=False)
        if count == 4:
            return "GMT" if not off else "GMT" + _offset(off, colon=True, zulu=False)
        return _offset(off, colon=True, zulu=True)
    if letter == "O":
        if not off:
            return "GMT"
        s = _offset(off, colon=True, zulu=False)
        if count == 1:
            h = int(s[1:3])
            rest = s[3:]
            return f"GMT{s[0]}{h}" + ("" if rest == ":00" else rest)
        return "GMT" + s
    if letter == "z":
        if isinstance(dt.tzinfo, ZoneInfo) or off is not None:
            name = dt.tzname() or "UTC"
            if count == 4 and name == "UTC":
                return "Coordinated Universal Time"
            return name
        raise DateError("the date has no time zone")
    if letter == "V":
        return _zone_id(dt.tzinfo, dt)
    raise DateError(f"unknown date pattern letter {letter!r}")


def _fraction(dt: datetime) -> str:
    if not dt.microsecond:
        return ""
    return "." + f"{dt.microsecond:06d}".rstrip("0")


def _iso_time(dt: datetime) -> str:
    return f"{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}{_fraction(dt)}"


def _iso_local_dt(dt: datetime) -> str:
    return f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{_iso_time(dt)}"


def _iso_offset(dt: datetime) -> str:
    return _offset(dt.utcoffset(), colon=True, zulu=True)


def _iso_zoned(dt: datetime) -> str:
    s = _iso_local_dt(dt) + _iso_offset(dt)
    if isinstance(dt.tzinfo, ZoneInfo):
        s += f"[{dt.tzinfo.key}]"
    return s


def _rfc1123(dt: datetime) -> str:
    off = dt.utcoffset()
    z = "GMT" if not off else _offset(off, colon=False, zulu=False)
    return (
        f"{_DAY_ABBR[dt.weekday()]}, {dt.day} {_MONTH_ABBR[dt.month]} {dt.year} "
        f"{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d} {z}"
    )


def _iso_instant(dt: datetime) -> str:
    u = dt.astimezone(UTC)
    return _iso_local_dt(u) + "Z"


def _style(kind: str) -> Callable[[datetime], str]:
    def fmt(dt: datetime) -> str:
        h12 = (dt.hour % 12) or 12
        ampm = "AM" if dt.hour < 12 else "PM"
        if kind == "short":
            return f"{dt.month}/{dt.day}/{dt.year % 100:02d}, {h12}:{dt.minute:02d}\u202f{ampm}"
        t = f"{h12}:{dt.minute:02d}:{dt.second:02d}\u202f{ampm}"
        if kind == "medium":
            return f"{_MONTH_ABBR[dt.month]} {dt.day}, {dt.year}, {t}"
        if kind == "long":
            return f"{_MONTH_NAMES[dt.month]} {dt.day}, {dt.year} at {t} {dt.tzname() or ''}".rstrip()
        return (
            f"{_DAY_NAMES[dt.weekday()]}, {_MONTH_NAMES[dt.month]} {dt.day}, {dt.year} at {t} "
            f"{_field(dt, 'z', 4)}"
        )

    return fmt


_NAMED: dict[str, Callable[[datetime], str]] = {
    "iso_date_time": _iso_zoned,
    "iso_zoned_date_time": _iso_zoned,
    "iso_offset_date_time": lambda dt: _iso_local_dt(dt) + _iso_offset(dt),
    "iso_date": lambda dt: f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}" + _iso_offset(dt),
    "iso_time": lambda dt: _iso_time(dt) + _iso_offset(dt),
    "iso_local_date": lambda dt: f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}",
    "iso_instant": _iso_instant,
    "iso_local_date_time": _iso_local_dt,
    "iso_local_time": _iso_time,
    "iso_offset_time": lambda dt: _iso_time(dt) + _iso_offset(dt),
    "iso_offset_date": lambda dt: f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}" + _iso_offset(dt),
    "iso_ordinal_date": lambda dt: f"{dt.year:04d}-{dt.timetuple().tm_yday:03d}" + _iso_offset(dt),
    "iso_week_date": lambda dt: "{:04d}-W{:02d}-{}".format(*dt.isocalendar()) + _iso_offset(dt),
    "rfc_1123_date_time": _rfc1123,
    "full": _style("full"),
    "long": _style("long"),
    "medium": _style("medium"),
    "short": _style("short"),
}
_ALIASES = {
    "iso": "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX",
    "iso_sec": "yyyy-MM-dd'T'HH:mm:ssXXX",
    "sql": "yyyy-MM-dd HH:mm:ss.SSSSSS",
    "sql_seq": "yyyy-MM-dd HH:mm:ss",
}


@lru_cache(maxsize=512)
def _formatter(fmt: str) -> Callable[[datetime], str]:
    named = _NAMED.get(fmt.lower()) if fmt.lower() != fmt or fmt in _NAMED else None
    if named is not None:
        return named
    tokens = _tokenize(_ALIASES.get(fmt, fmt))

    def run(dt: datetime) -> str:
        return "".join(t if isinstance(t, str) else _field(dt, t[0], t[1]) for t in tokens)

    return run


def format_date(dt: datetime, fmt: str | None, tz: tzinfo) -> str:
    """Format ``dt`` (converted to ``tz``) with a Java pattern or a named formatter."""
    return _formatter(fmt or "iso")(dt.astimezone(tz))


# ------------------------------------------------------------------------------------------- parsing

_PARSE_FIELDS: dict[str, str] = {
    "y": r"(?P<y>[+-]?\d{1,9})",
    "u": r"(?P<y>[+-]?\d{1,9})",
    "M": r"(?P<M>\d{1,2})",
    "d": r"(?P<d>\d{1,2})",
    "D": r"(?P<D>\d{1,3})",
    "H": r"(?P<H>\d{1,2})",
    "k": r"(?P<H>\d{1,2})",
    "h": r"(?P<h>\d{1,2})",
    "K": r"(?P<h>\d{1,2})",
    "m": r"(?P<m>\d{1,2})",
    "s": r"(?P<s>\d{1,2})",
    "S": r"(?P<S>\d{1,9})",
    "n": r"(?P<n>\d{1,9})",
    "a": r"(?P<a>AM|PM|am|pm)",
    "E": r"(?P<E>[A-Za-z]+)",
    "X": r"(?P<X>Z|[+-]\d{2}(?::?\d{2})?(?::?\d{2})?)",
    "x": r"(?P<X>[+-]\d{2}(?::?\d{2})?(?::?\d{2})?)",
    "Z": r"(?P<X>Z|[+-]\d{2}:?\d{2}|GMT(?:[+-]\d{1,2}(?::\d{2})?)?)",
    "z": r"(?P<z>[A-Za-z_/+\-0-9]+)",
    "V": r"(?P<z>[A-Za-z_/+\-0-9]+)",
}


@lru_cache(maxsize=256)
def _parser(fmt: str) -> re.Pattern[str]:
    parts: list[str] = []
    seen: set[str] = set()
    for t in _tokenize(_ALIASES.get(fmt, fmt)):
        if isinstance(t, str):
            parts.append(re.escape(t))
            continue
        letter, count = t
        if letter in "ML" and count >= 3:
            names = _MONTH_ABBR[1:] if count == 3 else _MONTH_NAMES[1:]
            rx = "(?P<Mt>" + "|".join(names) + ")"
            key = "Mt"
        elif letter in _PARSE_FIELDS:
            rx = _PARSE_FIELDS[letter]
            if count >= 2 and letter in "MdHhkKmsD":
                rx = rx.replace(r"\d{1,2}", rf"\d{{{count}}}").replace(r"\d{1,3}", rf"\d{{{count}}}")
            if letter in "yu" and count == 2:
                rx = r"(?P<y2>\d{2})"
            if letter == "S":
                rx = rf"(?P<S>\d{{{count}}})"
            key = rx.split(">")[0][3:]
        else:
            raise DateError(f"unsupported letter {letter!r} in date pattern {fmt!r}")
        if key in seen:
            rx = re.sub(r"\(\?P<\w+>", "(?:", rx)
        seen.add(key)
        parts.append(rx)
    return re.compile("".join(parts), re.IGNORECASE)


def _parse_with(value: str, fmt: str, tz: tzinfo) -> datetime:
    if fmt.lower() == "rfc_1123_date_time":
        try:
            return parsedate_to_datetime(value)
        except (TypeError, ValueError) as e:
            raise DateError(f"cannot parse {value!r} as an RFC 1123 date") from e
    if fmt.lower() in _NAMED:
        return _parse_iso(value, tz)
    m = _parser(fmt).fullmatch(value.strip())
    if m is None:
        raise DateError(f"date {value!r} does not match the format {fmt!r}")
    g = {k: v for k, v in m.groupdict().items() if v is not None}
    year = 2000 + int(g["y2"]) if "y2" in g else int(g.get("y", 1970))
    if "Mt" in g:
        key = g["Mt"][:3].title()
        month = _MONTH_ABBR.index(key)
    else:
        month = int(g.get("M", 1))
    day = int(g.get("d", 1))
    if "D" in g:
        d0 = date(year, 1, 1) + timedelta(days=int(g["D"]) - 1)
        month, day = d0.month, d0.day
    hour = int(g.get("H", 0))
    if "h" in g:
        hour = int(g["h"]) % 12 + (12 if g.get("a", "AM").upper() == "PM" else 0)
    micro = 0
    if "S" in g:
        micro = int(g["S"].ljust(9, "0")[:6])
    elif "n" in g:
        micro = int(g["n"]) // 1000
    result_tz = tz
    if "X" in g:
        result_tz = zone(None if g["X"] in ("Z", "GMT") else g["X"].replace("GMT", ""))
    elif "z" in g:
        result_tz = zone(g["z"])
    return datetime(year, month, day, hour, int(g.get("m", 0)), int(g.get("s", 0)), micro, result_tz)


_ZONE_SUFFIX = re.compile(r"\[([^\]]+)\]$")


def _parse_iso(value: str, tz: tzinfo) -> datetime:
    s = value.strip()
    zone_name: str | None = None
    m = _ZONE_SUFFIX.search(s)
    if m:
        zone_name = m.group(1)
        s = s[: m.start()]
    # Python < 3.12 rejects more than 6 fractional digits: truncate nanoseconds
    s = re.sub(r"(\.\d{6})\d+", r"\1", s)
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        try:
            d = date.fromisoformat(s)
        except ValueError as e:
            raise DateError(f"cannot parse {value!r} as a date") from e
        return datetime.combine(d, time(0), tz)
    if "T" not in s.upper() and " " not in s and len(s) <= 10:
        return datetime.combine(dt.date(), time(0), tz)
    if dt.tzinfo is None:
        return dt.replace(tzinfo=zone(zone_name) if zone_name else tz)
    if zone_name:
        return dt.astimezone(zone(zone_name))
    return dt


def convert(value: object, tz: tzinfo, existing_format: str | None = None) -> datetime:
    """Kestra's ``AbstractDate.convert``: anything date-like to an aware datetime."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=tz)
    if isinstance(value, date):
        return datetime.combine(value, time(12), tz)
    if isinstance(value, bool):
        raise DateError(f"cannot convert {value!r} to a date")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, tz)
    if isinstance(value, str):
        if existing_format:
            return _parse_with(value, existing_format, tz)
        return _parse_iso(value, tz)
    raise DateError(f"cannot convert a value of type {type(value).__name__} to a date")


_TIME_UNITS = {
    "NANOS": timedelta(microseconds=0.001),
    "MICROS": timedelta(microseconds=1),
    "MILLIS": timedelta(milliseconds=1),
    "SECONDS": timedelta(seconds=1),
    "MINUTES": timedelta(minutes=1),
    "HOURS": timedelta(hours=1),
    "HALF_DAYS": timedelta(hours=12),
}
_MONTH_UNITS = {"MONTHS": 1, "YEARS": 12, "DECADES": 120, "CENTURIES": 1200, "MILLENNIA": 12000}


def add(dt: datetime, amount: int, unit: str) -> datetime:
    """``ZonedDateTime.plus(amount, ChronoUnit.valueOf(unit))``."""
    u = str(unit).upper()
    tz = dt.tzinfo
    if u in _TIME_UNITS:
        return (dt.astimezone(UTC) + _TIME_UNITS[u] * amount).astimezone(tz)
    naive = dt.replace(tzinfo=None)
    if u in ("DAYS", "WEEKS"):
        naive = naive + timedelta(days=amount * (7 if u == "WEEKS" else 1))
    elif u in _MONTH_UNITS:
        months = naive.year * 12 + (naive.month - 1) + amount * _MONTH_UNITS[u]
        y, mo = divmod(months, 12)
        last = calendar.monthrange(y, mo + 1)[1]
        naive = naive.replace(year=y, month=mo + 1, day=min(naive.day, last))
    else:
        raise DateError(
            f"unknown unit {unit!r}: use one of NANOS, MICROS, MILLIS, SECONDS, MINUTES, HOURS, "
            "HALF_DAYS, DAYS, WEEKS, MONTHS, YEARS, DECADES, CENTURIES, MILLENNIA"
        )
    return naive.replace(tzinfo=tz)
