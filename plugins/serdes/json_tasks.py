"""``io.kestra.plugin.serdes.json.JsonToIon`` and ``IonToJson``, streaming.

JsonToIon reads JSON lines (``newLine: true``, the default: one value a line, one line in memory) or,
with ``newLine: false``, one JSON document whose top-level array becomes one record per item (that
document is parsed whole, so it is bounded: ``MAX_DOCUMENT``). IonToJson writes JSON lines, or one
JSON array with ``newLine: false``; timestamps as ISO 8601 text in ``timeZoneId``, decimals as numbers.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import zoneinfo
from pathlib import Path
from typing import Any

import msgspec

from engine.core.errors import TaskFailed
from plugins.api import RunContext, TaskResult, runnable
from plugins.serdes.common import Stop, check_charset, convert
from plugins.serdes.ion import BUFFER, MAX_LINE, IonWriter, read_values

P = "io.kestra.plugin.serdes.json."
MAX_DOCUMENT = 256 * 1024 * 1024  # bytes of a JSON document read whole (newLine: false)


class JsonToIon(msgspec.Struct, frozen=True, kw_only=True):
    from_: str = msgspec.field(name="from")
    charset: str = "UTF-8"
    newLine: bool = True


def json_to_ion(props: JsonToIon, src: Path, dst: Path, stop: Stop) -> int:
    encoding = check_charset(props.charset)
    with (
        src.open("r", encoding="utf-8-sig" if encoding == "utf-8" else encoding, buffering=BUFFER) as fh,
        dst.open("w", encoding="utf-8", buffering=BUFFER) as out,
    ):
        writer = IonWriter(out)
        if not props.newLine:
            if src.stat().st_size > MAX_DOCUMENT:
                raise TaskFailed(
                    f"from: a JSON document over {MAX_DOCUMENT} bytes is not read whole — "
                    "write it as JSON lines and use newLine: true",
                    retryable=False,
                )
            try:
                document = json.load(fh, parse_float=decimal.Decimal)
            except ValueError as exc:
                raise TaskFailed(f"from: invalid JSON: {exc}", retryable=False) from None
            for item in document if isinstance(document, list) else [document]:
                writer.write(item)
            return writer.count
        number = 0
        while True:
            line = fh.readline(MAX_LINE + 1)
            if not line:
                break
            number += 1
            if len(line) > MAX_LINE and not line.endswith("\n"):
                raise TaskFailed(f"from: line {number} is over {MAX_LINE} bytes", retryable=False)
            if not line.strip():
                continue
            try:
                writer.write(json.loads(line, parse_float=decimal.Decimal))
            except ValueError as exc:
                raise TaskFailed(f"from: line {number}: invalid JSON: {exc}", retryable=False) from None
            if writer.count % 4096 == 0:
                stop.check()
        return writer.count


async def run_json_to_ion(props: JsonToIon, ctx: RunContext) -> TaskResult:
    return await convert(
        ctx, props.from_, ".ion", lambda s, d, st: json_to_ion(props, s, d, st), "json-to-ion"
    )


class IonToJson(msgspec.Struct, frozen=True, kw_only=True):
    from_: str = msgspec.field(name="from")
    charset: str = "UTF-8"
    newLine: bool = True
    timeZoneId: str | None = None
    shouldKeepAnnotations: bool = False


def _in_zone(value: Any, zone: dt.tzinfo) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(zone)
    if isinstance(value, dict):
        return {k: _in_zone(v, zone) for k, v in value.items()}
    if isinstance(value, list):
        return [_in_zone(v, zone) for v in value]
    return value


def ion_to_json(props: IonToJson, src: Path, dst: Path, stop: Stop) -> int:
    encoding = check_charset(props.charset)
    zone = zoneinfo.ZoneInfo(props.timeZoneId) if props.timeZoneId else None
    encoder = msgspec.json.Encoder(decimal_format="number")  # dates, times and bytes natively (bytes: base64)
    count = 0
    with (
        src.open("r", encoding="utf-8", buffering=BUFFER) as fh,
        dst.open("w", encoding=encoding, buffering=BUFFER) as out,
    ):
        if not props.newLine:
            out.write("[")
        for value in read_values(fh):
            text = encoder.encode(_in_zone(value, zone) if zone is not None else value).decode()
            if props.newLine:
                out.write(text + "\n")
            else:
                out.write(("," if count else "") + text)
            count += 1
            if count % 4096 == 0:
                stop.check()
        if not props.newLine:
            out.write("]")
    return count


async def run_ion_to_json(props: IonToJson, ctx: RunContext) -> TaskResult:
    return await convert(ctx, props.from_, ".json" if not props.newLine else ".jsonl",
                         lambda s, d, st: ion_to_json(props, s, d, st), "ion-to-json")  # fmt: skip


SPECS = [
    runnable(
        P + "JsonToIon",
        JsonToIon,
        run_json_to_ion,
        "Convert a JSON lines file (`from`; one JSON document with `newLine: false`) to an ION file → "
        "outputs `uri`, `size`.",
    ),
    runnable(
        P + "IonToJson",
        IonToJson,
        run_ion_to_json,
        "Convert an ION file (`from`) to JSON lines (a JSON array with `newLine: false`) → outputs "
        "`uri`, `size`.",
        extra={
            "not_supported": {
                "shouldKeepAnnotations": "Ion annotations are not read: the values are written without them"
            }
        },
    ),
]
