"""``io.kestra.plugin.serdes.csv.CsvToIon`` and ``IonToCsv``, streaming, with Kestra's main properties.

CsvToIon writes one struct per record (``{"id":"1","name":"Ada"}``; with ``header: false`` a list of
the fields); values stay text, ``\\N`` is null, as in Kestra. IonToCsv writes a struct's values (its keys
as the header line, from the first record) or a list's items; timestamps in Kestra's default
``yyyy-MM-dd'T'HH:mm:ss.SSS[XXX]`` in ``timeZoneId``, structs and lists as JSON. Java date patterns
(``dateFormat``, ``timeFormat``, ``dateTimeFormat``) are refused as not supported.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import json
import re
import sys
import zoneinfo
from pathlib import Path
from typing import IO, Any, Literal

import msgspec

from engine.core.errors import TaskFailed
from plugins.api import RunContext, TaskResult, runnable
from plugins.serdes.common import Stop, check_charset, convert, one_char
from plugins.serdes.ion import BUFFER, read_values

P = "io.kestra.plugin.serdes.csv."
DEFAULT_MAX_FIELD = 16 * 1024 * 1024


class CsvToIon(msgspec.Struct, frozen=True, kw_only=True):
    from_: str = msgspec.field(name="from")
    header: bool = True
    fieldSeparator: str = ","
    textDelimiter: str = '"'
    skipEmptyRows: bool = False
    errorOnDifferentFieldCount: bool | None = None  # deprecated in Kestra for onBadLines
    onBadLines: Literal["ERROR", "WARN", "SKIP"] = "ERROR"
    onEmptyHeader: Literal["DROP", "RENAME"] = "DROP"
    skipRows: int = 0
    charset: str = "UTF-8"
    maxBufferSize: int | None = None  # bounds one record, as the field size does
    allowExtraCharsAfterClosingQuote: bool = False
    maxFieldSize: int = DEFAULT_MAX_FIELD


def _headers(names: list[str], mode: str) -> list[str | None]:
    """Column names; None drops a column (an empty name with DROP), RENAME names it ``col_<index>``."""
    taken = set(names)
    out: list[str | None] = []
    for index, name in enumerate(names):
        if name:
            out.append(name)
        elif mode == "DROP":
            out.append(None)
        else:
            attempt, unique = 1, f"col_{index}"
            while unique in taken:
                attempt += 1
                unique = f"col_{index}_{attempt}"
            taken.add(unique)
            out.append(unique)
    return out


def _null(value: str) -> str | None:
    return None if value == "\\N" else value


def _row_type(names: list[str]) -> Any:
    """A msgspec Struct whose fields are the CSV's columns, in order: built from a record in one call and
    encoded twice as fast as a dict. None when the names repeat (a dict keeps the last value, as Kestra)."""
    if not names or len(set(names)) != len(names):
        return None
    fields = [f"f{i}" for i in range(len(names))]
    return msgspec.defstruct(
        "Record", [(f, str) for f in fields], rename=dict(zip(fields, names, strict=True))
    )


class TextRecords:
    """Records of text fields (and nulls) written in batches: their JSON lines are their Ion lines, and
    msgspec writes a batch of them in one call."""

    BATCH = 4096
    _encode = msgspec.json.Encoder().encode_lines

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.batch: list[Any] = []
        self.count = 0

    def add(self, record: Any) -> None:
        self.batch.append(record)

    def flush(self) -> None:
        if self.batch:
            self.out.write(TextRecords._encode(self.batch))
            self.count += len(self.batch)
            self.batch.clear()


def csv_to_ion(props: CsvToIon, ctx: RunContext, src: Path, dst: Path, stop: Stop) -> int:
    encoding = check_charset(props.charset)
    if encoding == "utf-8":
        encoding = "utf-8-sig"  # a BOM is not part of the first column's name
    csv.field_size_limit(min(props.maxFieldSize, props.maxBufferSize or sys.maxsize, sys.maxsize))
    on_bad = props.onBadLines
    if props.errorOnDifferentFieldCount is False:
        on_bad = "SKIP" if on_bad == "ERROR" else on_bad
    with (
        src.open("r", encoding=encoding, newline="", buffering=BUFFER) as fh,
        dst.open("wb", buffering=BUFFER) as out,
    ):
        reader = csv.reader(
            fh,
            delimiter=one_char(props.fieldSeparator, "fieldSeparator"),
            quotechar=one_char(props.textDelimiter, "textDelimiter"),
            strict=not props.allowExtraCharsAfterClosingQuote,
        )
        writer = TextRecords(out)
        headers: list[str | None] | None = None
        kept: list[str] = []  # the header names when no column is dropped: records zip onto them
        width = 0
        row: Any = None
        skipped = 0
        batch = writer.batch
        add = batch.append
        size = TextRecords.BATCH

        def bad(message: str) -> None:
            if on_bad == "ERROR":
                raise TaskFailed(message, retryable=False)
            if on_bad == "WARN":
                ctx.log("WARN", message)

        while True:
            # A for loop is the fast path; a parse error leaves it, is handled, and the reading goes on
            # from the next line.
            try:
                for record in reader:
                    if props.header and headers is None:
                        headers = _headers(record, props.onEmptyHeader)
                        kept = [h for h in headers if h is not None] if None not in headers else []
                        width = len(headers)
                        row = _row_type(kept)
                        continue
                    if props.skipEmptyRows and (not record or record == [""]):
                        continue
                    if skipped < props.skipRows:
                        skipped += 1
                        continue
                    if headers is None:
                        add([_null(v) for v in record])
                    elif len(record) != width:
                        bad(
                            f"Bad line encountered (field count mismatch) at line {reader.line_num}: "
                            f"Expected {width}, got {len(record)} fields."
                        )
                        continue
                    elif row is not None and "\\N" not in record:
                        add(row(*record))
                    else:
                        add({h: _null(v) for h, v in zip(headers, record, strict=True) if h is not None})
                    if len(batch) >= size:
                        writer.flush()
                        stop.check()
                break
            except csv.Error as exc:
                bad(f"Bad line encountered at line {reader.line_num}: {exc}")
        writer.flush()
        return writer.count


async def run_csv_to_ion(props: CsvToIon, ctx: RunContext) -> TaskResult:
    return await convert(
        ctx, props.from_, ".ion", lambda s, d, st: csv_to_ion(props, ctx, s, d, st), "csv-to-ion"
    )


QuoteMode = Literal["ALWAYS", "REQUIRED", "NON_NUMERIC"]


class IonToCsv(msgspec.Struct, frozen=True, kw_only=True):
    from_: str = msgspec.field(name="from")
    header: bool = True
    fieldSeparator: str = ","
    textDelimiter: str = '"'
    lineDelimiter: str = "\n"
    alwaysDelimitText: bool = False
    quoteMode: QuoteMode | None = None
    charset: str = "UTF-8"
    timeZoneId: str | None = None
    dateFormat: str | None = None
    timeFormat: str | None = None
    dateTimeFormat: str | None = None


_NUMERIC = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def text_of(value: Any, zone: dt.tzinfo | None) -> str:
    """A value as a CSV field (Kestra's IonToCsv ``convert``)."""
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None and zone is not None:
            value = value.astimezone(zone)
        stamp: str = value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}"
        if value.tzinfo is not None:
            offset = value.strftime("%z")
            stamp += "Z" if offset in ("+0000", "") else f"{offset[:3]}:{offset[3:]}"
        return stamp
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dict | list):
        text: str = json.dumps(value, default=str, ensure_ascii=False)
        return text
    return str(value)


def ion_to_csv(props: IonToCsv, src: Path, dst: Path, stop: Stop) -> int:
    encoding = check_charset(props.charset)
    zone = zoneinfo.ZoneInfo(props.timeZoneId) if props.timeZoneId else None
    mode = props.quoteMode or ("ALWAYS" if props.alwaysDelimitText else "REQUIRED")
    quoting: Literal[0, 1] = csv.QUOTE_MINIMAL if mode == "REQUIRED" else csv.QUOTE_ALL
    count = 0
    with (
        src.open("r", encoding="utf-8", buffering=BUFFER) as fh,
        dst.open("w", encoding=encoding, newline="", buffering=BUFFER) as out,
    ):
        writer = csv.writer(
            out,
            delimiter=one_char(props.fieldSeparator, "fieldSeparator"),
            quotechar=one_char(props.textDelimiter, "textDelimiter"),
            lineterminator=props.lineDelimiter,
            quoting=quoting,
        )
        numeric_writer = csv.writer(
            out,
            delimiter=props.fieldSeparator,
            quotechar=props.textDelimiter,
            lineterminator=props.lineDelimiter,
            quoting=csv.QUOTE_MINIMAL,
        )
        first = True
        for value in read_values(fh):
            if isinstance(value, list):
                if props.header:
                    raise TaskFailed("Invalid data of type List with header", retryable=False)
                fields = [text_of(v, zone) for v in value]
            elif isinstance(value, dict):
                if first and props.header:
                    writer.writerow([str(k) for k in value])
                fields = [text_of(v, zone) for v in value.values()]
            else:
                raise TaskFailed(
                    f"from: record {count + 1} is neither a struct nor a list: {str(value)[:80]!r}",
                    retryable=False,
                )
            first = False
            if mode == "NON_NUMERIC":
                _write_non_numeric(out, numeric_writer, fields, props)
            else:
                writer.writerow(fields)
            count += 1
            if count % 4096 == 0:
                stop.check()
    return count


def _write_non_numeric(out: Any, plain: Any, fields: list[str], props: IonToCsv) -> None:
    """Every field quoted except numbers (Kestra's NON_NUMERIC quote mode)."""
    q = props.textDelimiter
    parts = [f if _NUMERIC.fullmatch(f) else q + f.replace(q, q + q) + q for f in fields]
    out.write(props.fieldSeparator.join(parts) + props.lineDelimiter)


async def run_ion_to_csv(props: IonToCsv, ctx: RunContext) -> TaskResult:
    if props.timeZoneId:
        try:
            zoneinfo.ZoneInfo(props.timeZoneId)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise TaskFailed(f"timeZoneId: unknown time zone {props.timeZoneId!r}", retryable=False) from None
    return await convert(ctx, props.from_, ".csv", lambda s, d, st: ion_to_csv(props, s, d, st), "ion-to-csv")


_JAVA_PATTERNS = (
    "Java date patterns are not supported: timestamps are written as yyyy-MM-dd'T'HH:mm:ss.SSS[XXX] "
    "(Kestra's default) in timeZoneId — reformat them in SQL before the conversion"
)

SPECS = [
    runnable(
        P + "CsvToIon",
        CsvToIon,
        run_csv_to_ion,
        "Convert a CSV file (`from`) to an ION file, streaming → outputs `uri`, `size`.",
    ),
    runnable(
        P + "IonToCsv",
        IonToCsv,
        run_ion_to_csv,
        "Convert an ION file (`from`) to a CSV file, streaming → outputs `uri`, `size`.",
        extra={
            "not_supported": dict.fromkeys(("dateFormat", "timeFormat", "dateTimeFormat"), _JAVA_PATTERNS)
        },
    ),
]
