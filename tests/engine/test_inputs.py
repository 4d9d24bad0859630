"""engine.inputs: typed execution inputs, Kestra style."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from engine.core.errors import InputError
from engine.core.inputs import parse_cli_inputs, secret_input_ids
from engine.core.model import Flow, Input, Task
from engine.inputs import coerce_input, resolve_inputs


def flow_with(*inputs: Input) -> Flow:
    return Flow(id="f", namespace="n", tasks=(Task(id="t", type="x"),), inputs=inputs)


def one(type_: str, value: Any, **extra: Any) -> Any:
    return coerce_input(Input(id="i", type=type_, extra=extra), value)


def bad(type_: str, value: Any, fragment: str, **extra: Any) -> None:
    with pytest.raises(InputError, match=fragment):
        one(type_, value, **extra)


def test_string_and_validator() -> None:
    assert one("STRING", "abc") == "abc"
    assert one("STRING", 12) == "12"
    assert one("STRING", "A123", validator=r"A\d+") == "A123"
    bad("STRING", "B1", "must match the pattern", validator=r"A\d+")
    bad("STRING", "A1x", "must match the pattern", validator=r"A\d+")  # full match, like Java


def test_int_float_bool() -> None:
    assert one("INT", "42") == 42 and one("INT", 7) == 7
    bad("INT", "4.2", "expected an integer")
    bad("INT", True, "expected an integer")
    bad("INT", "9", "must be more than `10`", min=10, max=20)
    bad("INT", 21, "must be less than `20`", min=10, max=20)
    assert one("FLOAT", "42.42") == 42.42 and one("FLOAT", 1) == 1.0
    bad("FLOAT", "0.6", "must be less than `0.5`", min=0.1, max=0.5)
    bad("FLOAT", "x", "expected a number")
    assert (
        one("BOOLEAN", "false") is False and one("BOOLEAN", "TRUE") is True and one("BOOLEAN", True) is True
    )
    bad("BOOLEAN", "maybe", "give true or false")


def test_dates_times_durations() -> None:
    assert one("DATETIME", "2019-10-06T18:27:49Z") == "2019-10-06T18:27:49Z"
    assert one("DATETIME", "2019-10-06T20:27:49+02:00") == "2019-10-06T18:27:49Z"
    assert one("DATETIME", "2019-10-06T18:27:49.5Z") == "2019-10-06T18:27:49.500Z"
    bad("DATETIME", "2019-10-06T18:27:49", "no time zone")
    bad("DATETIME", "yesterday", "expected a date-time")
    bad(
        "DATETIME",
        "2024-01-01T00:00:00Z",
        "must be before",
        after="2023-01-01T00:00:00Z",
        before="2023-12-31T23:59:59Z",
    )
    assert one("DATE", "2019-10-06") == "2019-10-06"
    bad("DATE", "2024-01-01", "must be before `2023-12-31`", after="2023-01-01", before="2023-12-31")
    bad("DATE", "06/10/2019", "expected a date")
    assert one("TIME", "18:27:49") == "18:27:49"
    assert one("TIME", "18:27:00") == "18:27"  # Java LocalTime.toString
    bad("TIME", "12:00:00", "must be before `11:59:59`", after="01:00:00", before="11:59:59")
    bad("TIME", "25:00", "expected a time")
    assert one("DURATION", "PT5M6S") == "PT5M6S"
    assert one("DURATION", "P1D") == "PT24H"
    bad("DURATION", "PT30S", "must be less than `PT20S`", min="PT10S", max="PT20S")
    bad("DURATION", "5 minutes", "expected a duration")


def test_json_yaml_array_multiselect() -> None:
    assert one("JSON", '{"a": "b"}') == {"a": "b"}
    assert one("JSON", "{}") == {}
    assert one("JSON", {"x": 1}) == {"x": 1}
    bad("JSON", "{a", "expected JSON")
    assert one("YAML", "some: property\nalist:\n- of\n- values") == {
        "some": "property",
        "alist": ["of", "values"],
    }
    bad("YAML", "a: [", "expected YAML")
    assert one("ARRAY", "[1, 2, 3]", itemType="INT") == [1, 2, 3]
    assert one("ARRAY", ["1", "2"], itemType="INT") == [1, 2]
    assert one("ARRAY", '["a"]') == ["a"]
    bad("ARRAY", '["a"]', "unable to parse array element", itemType="INT")
    bad("ARRAY", "1,2", "expected a list")
    assert one("MULTISELECT", '["a", "b"]', values=["a", "b", "c"]) == ["a", "b"]
    assert one("MULTISELECT", ["z"], values=["a"], allowCustomValue=True) == ["z"]
    bad("MULTISELECT", ["z"], "must match the values", values=["a"])


def test_select_enum_uri_email_secret_file() -> None:
    assert one("ENUM", "ENUM_VALUE", values=["ENUM_VALUE", "OTHER_ONE"]) == "ENUM_VALUE"
    bad(
        "ENUM",
        "INVALID",
        r"it must match the values `\[ENUM_VALUE, OTHER_ONE\]`",
        values=["ENUM_VALUE", "OTHER_ONE"],
    )
    assert one("SELECT", "PASS", values=["PASS", "CANCEL"]) == "PASS"
    assert one("SELECT", "other", values=["PASS"], allowCustomValue=True) == "other"
    bad("SELECT", "other", "must match the values", values=["PASS"])
    assert one("URI", "https://www.google.com") == "https://www.google.com"
    bad("URI", "http:/bla", "expected a URI")
    assert one("EMAIL", "me@example.com") == "me@example.com"
    bad("EMAIL", "not-an-email", "valid email")
    assert one("SECRET", "s3cr3t") == "s3cr3t"
    assert one("FILE", "/tmp/data.csv") == "/tmp/data.csv"


def test_resolve_defaults_required_nesting_and_extras() -> None:
    flow = flow_with(
        Input(id="name", type="STRING"),
        Input(id="count", type="INT", defaults=3),
        Input(id="opt", type="STRING", required=False),
        Input(id="nested.more.int", type="INT", required=False),
        Input(id="nested.flag", type="BOOLEAN", required=False),
        Input(id="when", type="DATETIME", defaults="{{ now() }}"),
        Input(id="empty", type="STRING", defaults=""),
        Input(id="pw", type="SECRET", required=False),
    )
    result = resolve_inputs(
        flow, {"name": "x", "nested.more.int": "123", "nested.flag": "true", "extra": "ignored"}
    )
    assert result == {
        "name": "x",
        "count": 3,
        "opt": None,
        "nested": {"more": {"int": 123}, "flag": True},
        "when": "{{ now() }}",
        "empty": "",
        "pw": None,
    }
    assert secret_input_ids(flow) == {"pw"}


def test_resolve_reports_every_problem() -> None:
    flow = flow_with(
        Input(id="string", type="STRING"),
        Input(id="int", type="INT", extra={"min": 10}),
        Input(id="enum", type="ENUM", extra={"values": ["A", "B"]}),
        Input(id="d", type="DATE", defaults="nope"),
    )
    with pytest.raises(InputError) as info:
        resolve_inputs(flow, {"int": "9", "enum": "C"})
    text = str(info.value)
    assert "string: missing required input — pass it with --input string=<value>" in text
    assert "int: 9: it must be more than `10`" in text
    assert 'enum: "C": it must match the values `[A, B]`' in text
    assert "(from its default)" in text
    problems = info.value.problems  # type: ignore[attr-defined]
    assert [p[0] for p in problems] == ["string", "int", "enum", "d"]


def test_resolve_corpus_style_flow() -> None:
    import msgspec

    from engine.loader.loader import load_flow
    from plugins.api import PluginSpec
    from plugins.core.flow import SPECS
    from plugins.registry import Registry

    class Return(msgspec.Struct):
        format: str | None = None

    reg = Registry()
    for spec in SPECS:
        reg.add(spec)
    reg.add(PluginSpec("io.kestra.plugin.core.debug.Return", "runnable", Return))
    flow = load_flow(
        textwrap.dedent(
            """
            id: inputs
            namespace: n
            inputs:
              - id: validatedDate
                type: DATE
                after: 2023-01-01
                before: 2023-12-31
                required: false
              - name: yaml
                type: YAML
                defaults:
                  property: something
              - id: instantDefaults
                type: DATETIME
                defaults: "2013-08-09T14:19:00Z"
            tasks:
              - id: r
                type: io.kestra.plugin.core.debug.Return
                format: "{{ inputs.yaml }}"
            """
        ),
        registry=reg,
    )
    assert resolve_inputs(flow, {"validatedDate": "2023-01-02"}) == {
        "validatedDate": "2023-01-02",
        "yaml": {"property": "something"},
        "instantDefaults": "2013-08-09T14:19:00Z",
    }
    with pytest.raises(InputError, match="must be after `2023-01-01`"):
        resolve_inputs(flow, {"validatedDate": "2022-12-31"})


def test_parse_cli_inputs() -> None:
    assert parse_cli_inputs(["a=1", "b=x=y", "c="]) == {"a": "1", "b": "x=y", "c": ""}
    with pytest.raises(InputError) as info:
        parse_cli_inputs(["ok=1", "novalue", "=3"])
    assert "'novalue'" in str(info.value) and "'=3'" in str(info.value) and "name=value" in str(info.value)


def test_expression_defaults_are_rendered_then_typed() -> None:
    from engine.expressions import Expressions
    from engine.loader.loader import load_flow

    flow = load_flow(
        "id: f\nnamespace: io.t\ninputs:\n"
        "  - {id: n, type: INT, defaults: 2}\n"
        "  - {id: double, type: INT, defaults: '{{ inputs.n * 2 }}'}\n"
        "  - {id: who, type: STRING, defaults: '{{ flow.namespace }}'}\n"
        "tasks:\n  - {id: a, type: io.kestra.plugin.core.log.Log, message: x}\n"
    )
    assert resolve_inputs(flow, {}, Expressions().render) == {"n": 2, "double": 4, "who": "io.t"}
    assert resolve_inputs(flow, {"n": "5"}, Expressions().render)["double"] == 10


@pytest.mark.parametrize(
    ("type_", "value", "message"),
    [
        ("INT", "99999999999999999999999", "out of range"),
        ("INT", 2**63, "out of range"),
        ("INT", "1" * 5000, "expected an integer"),
        ("FLOAT", "1e400", "not a finite number"),
        ("FLOAT", "nan", "not a finite number"),
        ("FLOAT", 10**400, "not a finite number"),
    ],
    ids=["int-text", "int-2^63", "int-5000-digits", "float-1e400", "float-nan", "float-10^400"],
)
def test_numbers_that_do_not_fit_are_refused_with_a_message(type_: str, value: object, message: str) -> None:
    bad(type_, value, message)
