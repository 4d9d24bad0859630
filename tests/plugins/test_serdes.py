"""The format conversions (CSV, JSON lines, ION) on in-memory internal storage, and the Ion text rules."""

from __future__ import annotations

import datetime as dt
import decimal
import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sql_harness import RenderingContext, run_task

from engine.core.errors import TaskFailed
from plugins.serdes.ion import dumps, loads, read_values

pytestmark = pytest.mark.anyio
S = "io.kestra.plugin.serdes."


@pytest.fixture
def rctx(tmp_path: Path) -> RenderingContext:
    work = tmp_path / "work"
    work.mkdir()
    return RenderingContext(work)


async def put(ctx: RenderingContext, name: str, data: bytes) -> str:
    return await ctx.files.put(f"kestra:///company/team/flow1/executions/e0/{name}", data)


async def text(ctx: RenderingContext, uri: str, encoding: str = "utf-8") -> str:
    return (await ctx.files.get(uri)).decode(encoding)


async def test_csv_to_ion_and_back(rctx: RenderingContext) -> None:
    src = await put(rctx, "in.csv", b'\xef\xbb\xbfid,name,note\n1,"Ada, L.",\\N\n2,"say ""hi""",x\n')
    ion = await run_task(S + "csv.CsvToIon", {"from": src}, rctx)
    assert ion.outputs["size"] == 2
    assert (await text(rctx, ion.outputs["uri"])).splitlines() == [
        '{"id":"1","name":"Ada, L.","note":null}',
        '{"id":"2","name":"say \\"hi\\"","note":"x"}',
    ]
    back = await run_task(S + "csv.IonToCsv", {"from": ion.outputs["uri"]}, rctx)
    assert await text(rctx, back.outputs["uri"]) == 'id,name,note\n1,"Ada, L.",\n2,"say ""hi""",x\n'
    assert back.outputs["size"] == 2


async def test_csv_options(rctx: RenderingContext) -> None:
    src = await put(rctx, "in.csv", "a;;b\n\n1;2;3\n4;5;6\n7;8\n".encode("latin-1"))
    props = {"from": src, "fieldSeparator": ";", "skipEmptyRows": True, "onBadLines": "SKIP", "skipRows": 1}
    out = await run_task(S + "csv.CsvToIon", props, rctx)
    assert (await text(rctx, out.outputs["uri"])).splitlines() == ['{"a":"4","b":"6"}']
    renamed = await run_task(S + "csv.CsvToIon", {**props, "onEmptyHeader": "RENAME", "skipRows": 0}, rctx)
    assert (await text(rctx, renamed.outputs["uri"])).splitlines()[0] == '{"a":"1","col_1":"2","b":"3"}'
    with pytest.raises(TaskFailed, match="Expected 3, got 2"):
        await run_task(S + "csv.CsvToIon", {**props, "onBadLines": "ERROR"}, rctx)
    lists = await run_task(S + "csv.CsvToIon", {"from": src, "fieldSeparator": ";", "header": False}, rctx)
    assert (await text(rctx, lists.outputs["uri"])).splitlines()[:2] == ['["a","","b"]', "[]"]
    latin = await put(rctx, "l.csv", "n\ncafé\n".encode("latin-1"))
    out = await run_task(S + "csv.CsvToIon", {"from": latin, "charset": "ISO-8859-1"}, rctx)
    assert await text(rctx, out.outputs["uri"]) == '{"n":"café"}\n'
    with pytest.raises(TaskFailed, match="unknown charset"):
        await run_task(S + "csv.CsvToIon", {"from": latin, "charset": "nope"}, rctx)


async def test_ion_to_csv_reads_kestra_ion_and_quotes_as_asked(rctx: RenderingContext) -> None:
    kestra = b'{id:1,at:2024-01-31T10:00:00Z,amount:1.50,tag:gold,tags:["a","b"],ok:true}\n'
    src = await put(rctx, "k.ion", kestra)
    csv = await run_task(S + "csv.IonToCsv", {"from": src, "timeZoneId": "Europe/Paris"}, rctx)
    assert await text(rctx, csv.outputs["uri"]) == (
        'id,at,amount,tag,tags,ok\n1,2024-01-31T11:00:00.000+01:00,1.50,gold,"[""a"", ""b""]",true\n'
    )
    quoted = await run_task(
        S + "csv.IonToCsv",
        {"from": src, "quoteMode": "NON_NUMERIC", "fieldSeparator": ";", "lineDelimiter": "\r\n"},
        rctx,
    )
    assert (await text(rctx, quoted.outputs["uri"])).splitlines()[1].split(";")[:4] == [
        "1",
        '"2024-01-31T10:00:00.000Z"',
        "1.50",
        '"gold"',
    ]
    always = await run_task(
        S + "csv.IonToCsv", {"from": src, "alwaysDelimitText": True, "header": False}, rctx
    )
    assert (await text(rctx, always.outputs["uri"])).startswith('"1","2024')


async def test_json_lines_to_ion_and_back(rctx: RenderingContext) -> None:
    src = await put(rctx, "in.jsonl", b'{"a": 1, "b": 2.5, "c": [true, null], "d": {"e": "f"}}\n\n{"a": 2}\n')
    ion = await run_task(S + "json.JsonToIon", {"from": src}, rctx)
    assert ion.outputs["size"] == 2
    assert (await text(rctx, ion.outputs["uri"])).splitlines()[
        0
    ] == '{"a":1,"b":2.5,"c":[true,null],"d":{"e":"f"}}'
    back = await run_task(S + "json.IonToJson", {"from": ion.outputs["uri"]}, rctx)
    assert (await text(rctx, back.outputs["uri"])).splitlines() == [
        '{"a":1,"b":2.5,"c":[true,null],"d":{"e":"f"}}',
        '{"a":2}',
    ]
    array = await run_task(S + "json.IonToJson", {"from": ion.outputs["uri"], "newLine": False}, rctx)
    assert await text(rctx, array.outputs["uri"]) == '[{"a":1,"b":2.5,"c":[true,null],"d":{"e":"f"}},{"a":2}]'
    doc = await put(rctx, "doc.json", b'[{"x": 1}, {"x": 2}, {"x": 3}]')
    whole = await run_task(S + "json.JsonToIon", {"from": doc, "newLine": False}, rctx)
    assert whole.outputs["size"] == 3
    bad = await put(rctx, "bad.jsonl", b'{"a": 1}\n{oops\n')
    with pytest.raises(TaskFailed, match="line 2: invalid JSON"):
        await run_task(S + "json.JsonToIon", {"from": bad}, rctx)


async def test_ion_to_json_writes_timestamps_in_the_zone(rctx: RenderingContext) -> None:
    src = await put(rctx, "t.ion", b"{at:2024-01-31T10:00:00Z,day:2024-02-01T,n:10d0}\n")
    out = await run_task(S + "json.IonToJson", {"from": src, "timeZoneId": "Asia/Tokyo"}, rctx)
    assert (
        await text(rctx, out.outputs["uri"])
        == '{"at":"2024-01-31T19:00:00+09:00","day":"2024-02-01","n":10}\n'
    )


async def test_not_an_ion_value_names_the_line(rctx: RenderingContext) -> None:
    src = await put(rctx, "x.ion", b'{"a":1}\n{a: [1,\n')
    with pytest.raises(TaskFailed, match="line 2: not an Ion value"):
        await run_task(S + "json.IonToJson", {"from": src}, rctx)


values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text()
    | st.decimals(allow_nan=False, allow_infinity=False, places=3)
    | st.datetimes(timezones=st.just(dt.UTC))
    | st.binary(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


def same(a: object, b: object) -> bool:
    if isinstance(a, decimal.Decimal):
        return decimal.Decimal(str(b)) == a
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


@settings(max_examples=150, deadline=None)
@given(values)
def test_every_value_written_reads_back(value: object) -> None:
    line = dumps(value)
    assert "\n" not in line
    assert same(value, loads(line))
    assert same(value, next(iter(read_values(io.StringIO(line + "\n")))))


async def test_a_line_the_parser_refuses_is_skipped_or_fails(rctx: RenderingContext) -> None:
    src = await put(rctx, "q.csv", b'a,b\n1,2\n"3"x,4\n5,6\n')
    kept = await run_task(S + "csv.CsvToIon", {"from": src, "onBadLines": "WARN"}, rctx)
    assert (await text(rctx, kept.outputs["uri"])).splitlines() == ['{"a":"1","b":"2"}', '{"a":"5","b":"6"}']
    assert any("Bad line encountered at line 3" in m for m in rctx.messages("WARN"))
    with pytest.raises(TaskFailed, match="Bad line encountered at line 3"):
        await run_task(S + "csv.CsvToIon", {"from": src}, rctx)
    loose = await run_task(S + "csv.CsvToIon", {"from": src, "allowExtraCharsAfterClosingQuote": True}, rctx)
    assert loose.outputs["size"] == 3
