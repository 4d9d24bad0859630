"""Kestra's ION files: one Amazon Ion text value per line (``FileSerde``), written and read as streams.

Writing is done here, value by value, with field names and strings in their JSON spelling (both are
valid Ion text): a file of plain values (strings, numbers, booleans, nulls, lists, structs) is then
also a JSON-lines file that DuckDB's ``read_json`` reads. Values JSON has no word for are written in
Ion's own syntax: timestamps (``2024-01-31T10:00:00Z``), decimals (``1.50``, ``10d0``), blobs
(``{{...}}``), ``nan`` and the infinities.

Reading takes each line as JSON first (msgspec, fast), and gives the lines JSON cannot read to
``amazon.ion`` (Amazon's reference implementation for Python), so a file Kestra wrote
(``{id:1,date:2024-01-31T10:00:00Z}``) reads too. A line is bounded (``MAX_LINE``).
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import math
import uuid
from collections.abc import Iterator, Mapping
from typing import IO, Any

import msgspec

from engine.core.errors import TaskFailed

MAX_LINE = 16 * 1024 * 1024  # bytes of one value: a larger line is refused, never read whole
BUFFER = 1 << 20

_json_string = msgspec.json.Encoder().encode


def _timestamp(value: dt.datetime) -> str:
    text = value.isoformat()
    if text.endswith("+00:00"):
        text = text[:-6] + "Z"
    return text


def _decimal(value: decimal.Decimal) -> str:
    if not value.is_finite():
        return "nan" if value.is_nan() else ("+inf" if value > 0 else "-inf")
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits)) or "0"
    minus = "-" if sign else ""
    if exponent < 0:
        text = text.rjust(1 - exponent, "0")  # 0.05 keeps its scale: digits "005", exponent -2
        return f"{minus}{text[:exponent]}.{text[exponent:]}"
    return f"{minus}{text}d{exponent}"


def _float(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "+inf" if value > 0 else "-inf"
    text = repr(value)
    return text if "e" in text else text + "e0"


def dumps(value: Any) -> str:
    """One value as Ion text (no newline)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _json_string(value).decode()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, decimal.Decimal):
        return _decimal(value)
    if isinstance(value, dt.datetime):
        # A time without a zone is Kestra's LocalDateTime: written as text, as Kestra's serializer does.
        return _timestamp(value) if value.tzinfo is not None else _json_string(value.isoformat()).decode()
    if isinstance(value, dt.date):
        return value.isoformat() + "T"  # an Ion timestamp of day precision
    if isinstance(value, bytes | bytearray | memoryview):
        return "{{" + base64.b64encode(bytes(value)).decode() + "}}"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{_json_string(str(k)).decode()}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple | set | frozenset):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    if isinstance(value, dt.time | uuid.UUID):
        return _json_string(str(value)).decode()
    if isinstance(value, dt.timedelta):
        return _json_string(iso_duration(value)).decode()
    return _json_string(str(value)).decode()


def iso_duration(value: dt.timedelta) -> str:
    """A duration as Java's ``Duration.toString()`` (``PT1H30M``), which Kestra writes for intervals."""
    total = value.total_seconds()
    sign = "-" if total < 0 else ""
    total = abs(total)
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    text = "PT"
    if hours:
        text += f"{int(hours)}H"
    if minutes:
        text += f"{int(minutes)}M"
    if seconds or text == "PT":
        text += f"{seconds:g}S"
    return sign + text


class IonWriter:
    """Writes values to a text file, one a line; ``count`` says how many."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.count = 0

    def write(self, value: Any) -> None:
        self.out.write(dumps(value))
        self.out.write("\n")
        self.count += 1


def _number(text: str) -> float | decimal.Decimal:
    """Ion's rule for a number with a fraction: with an exponent a float, without one an exact decimal."""
    return float(text) if "e" in text or "E" in text else decimal.Decimal(text)


_json_decode = msgspec.json.Decoder(float_hook=_number).decode


def _plain(value: Any) -> Any:
    """An ``amazon.ion`` value as plain Python (dict, list, str, int, float, Decimal, datetime...)."""
    from amazon.ion.core import IonType
    from amazon.ion.simple_types import IonPyNull

    if isinstance(value, IonPyNull) or value is None:
        return None
    try:
        ion_type = value.ion_type
    except AttributeError:
        return value
    if ion_type is IonType.STRUCT:
        return {str(k): _plain(v) for k, v in value.items()}
    if ion_type in (IonType.LIST, IonType.SEXP):
        return [_plain(v) for v in value]
    if ion_type is IonType.BOOL:
        return bool(value)
    if ion_type is IonType.INT:
        return int(value)
    if ion_type is IonType.FLOAT:
        return float(value)
    if ion_type is IonType.DECIMAL:
        return decimal.Decimal(value)
    if ion_type is IonType.TIMESTAMP:
        if value.precision is not None and not value.precision.includes_minute:
            return dt.date(value.year, value.month, value.day)  # a date (Kestra's LocalDate)
        stamp = dt.datetime(
            value.year, value.month, value.day, value.hour, value.minute, value.second,
            value.microsecond, value.tzinfo,
        )  # fmt: skip
        return stamp
    if ion_type is IonType.SYMBOL:
        return str(value.text)
    if ion_type in (IonType.BLOB, IonType.CLOB):
        return bytes(value)
    if ion_type is IonType.STRING:
        return str(value)
    return value


def loads(line: str, where: str = "") -> Any:
    """One Ion text value (a line of a Kestra ION file)."""
    try:
        return _json_decode(line)
    except msgspec.DecodeError:
        pass
    from amazon.ion import simpleion

    try:
        return _plain(simpleion.loads(line))
    except Exception as exc:
        raise TaskFailed(f"{where}not an Ion value: {exc} in {line[:80]!r}", retryable=False) from None


def read_values(src: IO[str], what: str = "from") -> Iterator[Any]:
    """The values of an ION file, one a line (blank lines skipped), one line in memory at a time."""
    number = 0
    while True:
        line = src.readline(MAX_LINE + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE and not line.endswith("\n"):
            raise TaskFailed(f"{what}: line {number} is over {MAX_LINE} bytes", retryable=False)
        text = line.strip()
        if text:
            yield loads(text, f"{what}: line {number}: ")
