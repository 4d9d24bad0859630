"""Tests for engine.expressions: Kestra's Pebble dialect on Jinja2."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, date, datetime
from typing import Any

import pytest

from engine.core.errors import ExpressionError
from engine.expressions import Expressions, check, has_expression

VARS: dict[str, Any] = {
    "flow": {"id": "hello", "namespace": "company.team", "revision": 3},
    "execution": {"id": "exec1", "startDate": "2024-01-01T10:00:00.123Z"},
    "inputs": {
        "name": "World",
        "x": 5,
        "f": 1.5,
        "whole": 2.0,
        "flag": True,
        "off": False,
        "nothing": None,
        "empty": "",
        "blank": "   ",
        "l": [3, 1, 2],
        "words": ["a", "b", "c"],
        "nested": [[1, 2], [3], 4],
        "m": {"a": 1, "b": "two"},
        "json": '{"a": [1, 2], "b": {"c": true}}',
        "text": "line1\nline2",
        "dotted": "a.b.c",
    },
    "outputs": {
        "t1": {"value": "v1", "values": [1, 2], "items": 7},
        "my-task": {"value": 42, "value-key": "dash"},
        "each": {"a": {"value": "A"}, "b": {"value": "B"}},
        "nested_each": {"x": {"1": {"value": "x1"}, "2": {"value": "x2"}}},
    },
    "vars": {"greeting": "hi {{ inputs.name }}", "chain": "{{ vars.greeting }}!"},
    "taskrun": {"id": "tr1", "value": "b"},
    "labels": {"team": "data"},
}

E = Expressions()


def r(template: str, variables: dict[str, Any] | None = None) -> str:
    return E.render(template, VARS if variables is None else variables)


# ------------------------------------------------------------------------------------ rendering


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("plain text", "plain text"),
        ("", ""),
        ("{ not an expression }", "{ not an expression }"),
        ("Hello {{ inputs.name }}!", "Hello World!"),
        ("{{inputs.name}}", "World"),
        ("{{ inputs.x }}", "5"),
        ("{{ inputs.f }}", "1.5"),
        ("{{ inputs.whole }}", "2.0"),
        ("{{ 1.0 }}", "1.0"),
        ("{{ 1e10 }}", "1.0E10"),
        ("{{ 0.0001 }}", "1.0E-4"),
        ("{{ inputs.flag }}", "true"),
        ("{{ inputs.off }}", "false"),
        ("{{ inputs.nothing }}", ""),
        ("{{ null }}", ""),
        ("{{ inputs.l }}", "[3,1,2]"),
        ("{{ inputs.m }}", '{"a":1,"b":"two"}'),
        ("{{ {'a': 1, 'b': [true, null]} }}", '{"a":1,"b":[true,null]}'),
        ("{{ [] }}", "[]"),
        ("{{ {} }}", "{}"),
        ("{{ {'k': {'n': 1}} }}", '{"k":{"n":1}}'),
        ("{{ ['é', \"ü\"] }}", '["é","ü"]'),
        ("{{ 'single' }} {{ \"double\" }}", "single double"),
        ("{{ 'it\\'s' }}", "it's"),
        ('{{ "a\\"b" }}', 'a"b'),
        ("{{ 'tab\\there' }}", "tab\there"),
        ("a {# comment #}b", "a b"),
        ("{% raw %}{{ not rendered }}{% endraw %}", "{{ not rendered }}"),
        ("{% verbatim %}{{ x }}{% endverbatim %}", "{{ x }}"),
        ("line\n", "line\n"),
        ("{{ inputs.name }}\n", "World\n"),
        ("  {{- inputs.name -}}  ", "World"),
        ("{{ outputs['my-task'].value }}", "42"),
        ('{{ outputs["my-task"]["value-key"] }}', "dash"),
        ("{{ outputs['t1'].value }}", "v1"),
        ("{{ outputs.t1['value'] }}", "v1"),
        ("{{ outputs.t1.values }}", "[1,2]"),
        ("{{ outputs.t1.items }}", "7"),
        ("{{ inputs.l[0] }}", "3"),
        ("{{ inputs.l.1 }}", "1"),
        ("{{ inputs.words[inputs.l[1]] }}", "b"),
        ('{{ inputs.m["a"] }}', "1"),
        ('{{ "Hello #{inputs.name}, x=#{inputs.x + 1}!" }}', "Hello World, x=6!"),
        ("{{ 'no #{interpolation} in single quotes' }}", "no #{interpolation} in single quotes"),
        ("{{ \"#{ {'a': 1}['a'] }\" }}", "1"),
        ("{{ (inputs.x) }}", "5"),
        ("{{ TRUE }} {{ FALSE }} {{ NULL }}", "true false "),
    ],
)
def test_render(template: str, expected: str) -> None:
    assert r(template) == expected


# ------------------------------------------------------------------------------------ operators


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        # arithmetic (integer division and remainder truncate like Java)
        ("{{ 1 + 2 }}", "3"),
        ("{{ 5 - 7 }}", "-2"),
        ("{{ 3 * 4 }}", "12"),
        ("{{ 5 / 2 }}", "2"),
        ("{{ -5 / 2 }}", "-2"),
        ("{{ 5.0 / 2 }}", "2.5"),
        ("{{ 7 % 3 }}", "1"),
        ("{{ -7 % 3 }}", "-1"),
        ("{{ 1 + 2 * 3 }}", "7"),
        ("{{ (1 + 2) * 3 }}", "9"),
        ("{{ -inputs.x }}", "-5"),
        ("{{ +inputs.x }}", "5"),
        ("{{ 10 - 2 - 3 }}", "5"),
        # comparisons
        ("{{ inputs.x > 3 }}", "true"),
        ("{{ inputs.x < 3 }}", "false"),
        ("{{ inputs.x >= 5 }}", "true"),
        ("{{ inputs.x <= 4 }}", "false"),
        ("{{ inputs.x == 5 }}", "true"),
        ("{{ inputs.x != 5 }}", "false"),
        ("{{ inputs.x equals 5 }}", "true"),
        ("{{ inputs.name == 'World' }}", "true"),
        ("{{ 1 == 1.0 }}", "true"),
        # logic
        ("{{ true and false }}", "false"),
        ("{{ true or false }}", "true"),
        ("{{ not true }}", "false"),
        ("{{ not inputs.flag }}", "false"),
        ("{{ inputs.x > 3 and inputs.x < 10 }}", "true"),
        ("{{ false or inputs.x == 5 }}", "true"),
        ("{{ not (inputs.x == 4) }}", "true"),
        ("{{ true or false and false }}", "true"),
        # ternary
        ("{{ inputs.x > 3 ? 'big' : 'small' }}", "big"),
        ("{{ inputs.x > 10 ? 'big' : 'small' }}", "small"),
        ("{{ inputs.flag ? inputs.off ? 'a' : 'b' : 'c' }}", "b"),
        ("{{ inputs.x > 3 ? inputs.x * 2 : 0 }}", "10"),
        # concatenation
        ("{{ 'a' ~ 'b' }}", "ab"),
        ("{{ 'n=' ~ inputs.x }}", "n=5"),
        ("{{ 'b=' ~ true }}", "b=true"),
        ("{{ 'x' ~ null ~ 'y' }}", "xy"),
        ("{{ 'l=' ~ inputs.l }}", "l=[3,1,2]"),
        ("{{ 'f=' ~ 2.0 }}", "f=2.0"),
        ("{{ 'a' ~ 'b' | upper }}", "AB"),  # Pebble: ~ binds tighter than |
        ("{{ (1 + 1) ~ 'x' }}", "2x"),
        # contains / in
        ("{{ [1, 2] contains 1 }}", "true"),
        ("{{ [1, 2] contains 3 }}", "false"),
        ("{{ [1, 2, 3] contains [1, 3] }}", "true"),
        ("{{ 'abc' contains 'b' }}", "true"),
        ("{{ 'abc' contains 'z' }}", "false"),
        ("{{ inputs.m contains 'a' }}", "true"),
        ("{{ inputs.m contains 'z' }}", "false"),
        ("{{ null contains 1 }}", "false"),
        ("{{ not (inputs.words contains 'z') }}", "true"),
        # ranges
        ("{{ 0..3 }}", "[0,1,2,3]"),
        ("{{ 1..inputs.x }}", "[1,2,3,4,5]"),
        ("{{ 'a'..'c' }}", '["a","b","c"]'),
        ("{{ (0..2) | length }}", "3"),
        # literals
        ("{{ [1, 'a', [2]] }}", '[1,"a",[2]]'),
        ("{{ {'a': inputs.x}['a'] }}", "5"),
        ('{{ {"k": 1 + 1} }}', '{"k":2}'),
        ("{{ 10L }}", "10"),
    ],
)
def test_operators(template: str, expected: str) -> None:
    assert r(template) == expected


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ inputs.missing ?? 'dflt' }}", "dflt"),
        ("{{ outputs.missing.value ?? 'dflt' }}", "dflt"),
        ("{{ outputs.t1.missing ?? 'dflt' }}", "dflt"),
        ("{{ inputs.nothing ?? 'dflt' }}", "dflt"),
        ("{{ inputs.x ?? 'dflt' }}", "5"),
        ("{{ inputs.empty ?? 'dflt' }}", ""),
        ("{{ inputs.off ?? 'dflt' }}", "false"),
        ("{{ a ?? b ?? 'third' }}", "third"),
        ("{{ a ?? inputs.name ?? 'third' }}", "World"),
        ("{{ outputs[inputs.missing].value ?? 'dflt' }}", "dflt"),
        ("{{ inputs.l[10] ?? 'out' }}", "out"),
        ("{{ missing ?? 'a' ~ 'b' }}", "ab"),
        ("{{ (missing ?? 'a') | upper }}", "A"),
        ("{{ missing ?? 'a' | upper }}", "A"),
        ("{{ inputs.m ?? 'x' }}", '{"a":1,"b":"two"}'),
        # ??? only replaces undefined, not null
        ("{{ inputs.nothing ??? 'dflt' }}", ""),
        ("{{ inputs.missing ??? 'dflt' }}", "dflt"),
        ("{{ inputs.x ??? 'dflt' }}", "5"),
        # tests
        ("{{ inputs.missing is defined }}", "false"),
        ("{{ outputs.missing.value is defined }}", "false"),
        ("{{ inputs.x is defined }}", "true"),
        ("{{ inputs.nothing is defined }}", "true"),
        ("{{ inputs.missing is not defined }}", "true"),
        ("{{ inputs.missing is null }}", "true"),
        ("{{ inputs.nothing is null }}", "true"),
        ("{{ inputs.x is null }}", "false"),
        ("{{ inputs.x is not null }}", "true"),
        ("{{ inputs.empty is empty }}", "true"),
        ("{{ inputs.blank is empty }}", "true"),
        ("{{ inputs.nothing is empty }}", "true"),
        ("{{ [] is empty }}", "true"),
        ("{{ {} is empty }}", "true"),
        ("{{ inputs.l is empty }}", "false"),
        ("{{ inputs.name is not empty }}", "true"),
        ("{{ 4 is even }}", "true"),
        ("{{ 3 is even }}", "false"),
        ("{{ 3 is odd }}", "true"),
        ("{{ inputs.l is iterable }}", "true"),
        ("{{ inputs.name is iterable }}", "false"),
        ("{{ inputs.m is map }}", "true"),
        ("{{ inputs.l is map }}", "false"),
        ("{{ inputs.json is json }}", "true"),
        ("{{ 'nope{' is json }}", "false"),
        ("{{ inputs.missing is defined ? inputs.missing : 'fallback' }}", "fallback"),
        ("{{ inputs.l[3] is defined ? bla : null }}", ""),
        ("{{ inputs.missing | default('d') }}", "d"),
        ("{{ outputs.missing.value | default('d') }}", "d"),
        ("{{ inputs.nothing | default('d') }}", "d"),
        ("{{ inputs.empty | default('d') }}", "d"),
        ("{{ inputs.name | default('d') }}", "World"),
        ("{{ inputs.x | default(0) }}", "5"),
    ],
)
def test_undefined_tolerant_forms(template: str, expected: str) -> None:
    assert r(template) == expected


def test_null_coalescing_right_side_is_lazy() -> None:
    calls: list[str] = []

    def boom(name: str) -> str:
        calls.append(name)
        raise RuntimeError("must not be called")

    e = Expressions({"secret": boom})
    assert e.render("{{ inputs.name ?? secret('X') }}", VARS) == "World"
    assert e.render("{{ inputs.name ??? secret('X') }}", VARS) == "World"
    assert calls == []


# ----------------------------------------------------------------------------------------- tags


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{% if inputs.x == 5 %}five{% endif %}", "five"),
        ("{% if inputs.x == 4 %}four{% else %}other{% endif %}", "other"),
        ("{% if inputs.x == 4 %}4{% elseif inputs.x == 5 %}5{% else %}?{% endif %}", "5"),
        ("{% if inputs.missing is defined %}yes{% else %}no{% endif %}", "no"),
        ("{% if inputs.words contains 'b' %}b{% endif %}", "b"),
        ("{% for i in inputs.l %}{{ i }},{% endfor %}", "3,1,2,"),
        ("{% for i in inputs.l %}{{ loop.index }}{% endfor %}", "012"),
        ("{% for i in inputs.l %}{{ loop.revindex }}{% endfor %}", "210"),
        ("{% for i in inputs.l %}{{ loop.length }}{% endfor %}", "333"),
        (
            "{% for i in inputs.l %}{{ loop.first }}/{{ loop.last }} {% endfor %}",
            "true/false false/false false/true ",
        ),
        ("{% for i in 0..2 %}{{ i }}{% endfor %}", "012"),
        ("{% for i in [] %}x{% else %}empty{% endfor %}", "empty"),
        ("{% for i in inputs.nothing %}x{% endfor %}", ""),
        ("{% for e in inputs.m %}{{ e.key }}={{ e.value }};{% endfor %}", "a=1;b=two;"),
        ("{% for k, v in inputs.m %}{{ k }}={{ v }};{% endfor %}", "a=1;b=two;"),
        ("{% for row in [[1, 2], [3]] %}[{% for c in row %}{{ c }}{% endfor %}]{% endfor %}", "[12][3]"),
        ("{% set y = inputs.x * 2 %}{{ y }}", "10"),
        ("{% set l = [1, 2] %}{{ l | length }}", "2"),
        ("{% set name = inputs.missing ?? 'anon' %}{{ name }}", "anon"),
        ("{% filter upper %}hello {{ inputs.name }}{% endfilter %}", "HELLO WORLD"),
        ("{% macro hi(who='you') %}hi {{ who }}{% endmacro %}{{ hi() }} {{ hi('me') }}", "hi you hi me"),
        ("{%- if true -%}  x  {%- endif -%}", "x"),
    ],
)
def test_tags(template: str, expected: str) -> None:
    assert r(template) == expected


# -------------------------------------------------------------------------------------- filters


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ -5 | abs }}", "5"),
        ("{{ 'hello world' | capitalize }}", "Hello world"),
        ("{{ 'hello wORLD' | title }}", "Hello World"),
        ("{{ 'Hello' | upper }}", "HELLO"),
        ("{{ 'Hello' | lower }}", "hello"),
        ("{{ '  x  ' | trim }}", "x"),
        ("{{ 'abc' | length }}", "3"),
        ("{{ inputs.l | length }}", "3"),
        ("{{ inputs.m | length }}", "2"),
        ("{{ null | length }}", "0"),
        ("{{ inputs.words | join(',') }}", "a,b,c"),
        ("{{ inputs.words | join }}", "abc"),
        ("{{ inputs.l | join('-') }}", "3-1-2"),
        ("{{ 'a,b,,c' | split(',') }}", '["a","b","","c"]'),
        ("{{ 'a,b,c,,' | split(',') }}", '["a","b","c"]'),
        ("{{ 'a,b,c' | split(',', 2) }}", '["a","b,c"]'),
        ("{{ inputs.dotted | split('\\\\.') }}", '["a","b","c"]'),
        ("{{ 'a1b22c' | split('\\\\d+') }}", '["a","b","c"]'),
        ("{{ inputs.l | first }}", "3"),
        ("{{ inputs.l | last }}", "2"),
        ("{{ 'abc' | first }}", "a"),
        ("{{ 'abc' | last }}", "c"),
        ("{{ [] | first }}", ""),
        ("{{ inputs.m | keys }}", '["a","b"]'),
        ("{{ inputs.words | keys }}", "[0,1,2]"),
        ("{{ inputs.m | values }}", '[1,"two"]'),
        ("{{ inputs.l | sort }}", "[1,2,3]"),
        ("{{ inputs.l | rsort }}", "[3,2,1]"),
        ("{{ inputs.l | reverse }}", "[2,1,3]"),
        ("{{ 'abc' | reverse }}", "cba"),
        ("{{ inputs.words | slice(1) }}", '["b","c"]'),
        ("{{ inputs.words | slice(0, 2) }}", '["a","b"]'),
        ("{{ 'hello' | slice(1, 3) }}", "el"),
        ("{{ 'john doe is john doe' | replace({'john': 'jane'}) }}", "jane doe is jane doe"),
        ("{{ 'aa1bb2' | replace({'(\\\\d)': '-$1-'}, regexp=true) }}", "aa-1-bb-2-"),
        ("{{ 'abc' | replace('b', 'X') }}", "aXc"),
        ("{{ ['ab', 'bb'] | replace({'b': 'c'}) }}", '["ac","cc"]'),
        ("{{ [1, 2] | merge([3]) }}", "[1,2,3]"),
        ("{{ {'a': 1} | merge({'b': 2}) }}", '{"a":1,"b":2}'),
        ("{{ {'a': 1} | merge({'a': 2}) }}", '{"a":2}'),
        ("{{ [1, 2, 3, 4, 5] | chunk(2) }}", "[[1,2],[3,4],[5]]"),
        ("{{ inputs.nested | flatten }}", "[1,2,3,4]"),
        ("{{ '12' | number + 1 }}", "13"),
        ("{{ '12.5' | number }}", "12.5"),
        ("{{ '0x1F' | number }}", "31"),
        ("{{ '12' | number('DOUBLE') }}", "12.0"),
        ("{{ '12' | number('INT') | className }}", "java.lang.Integer"),
        ("{{ '9223372036854775807' | number | className }}", "java.lang.Long"),
        ("{{ 1.232654 | numberFormat('#.##') }}", "1.23"),
        ("{{ 1234567.891 | numberformat('#,###.00') }}", "1,234,567.89"),
        ("{{ 5 | numberformat('000') }}", "005"),
        ("{{ inputs.m | json }}", '{"a":1,"b":"two"}'),
        ("{{ inputs.m | toJson }}", '{"a":1,"b":"two"}'),
        ("{{ 'str' | toJson }}", '"str"'),
        ("{{ null | toJson }}", "null"),
        ("{{ {'empty_object': {}} | toJson }}", '{"empty_object":{}}'),
        ("{{ 1.5 | toJson }}", "1.5"),
        ("{{ [1, 2, 3] | jq('.[0]') | first }}", "1"),
        ("{{ inputs.m | jq('.a') }}", "[1]"),
        ("{{ inputs.json | jq('.a[]') }}", "[1,2]"),
        ("{{ inputs.json | jq('.b.c') | first }}", "true"),
        ("{{ inputs.m | jq('.missing') | first }}", ""),
        ("{{ 'a' | yaml }}", "a\n"),
        ("{{ 1 | yaml }}", "1\n"),
        ("{{ inputs.m | yaml }}", "a: 1\nb: two\n"),
        ("{{ \"it's\" | escapeChar('single') }}", "it\\'s"),
        ("{{ 'say \"hi\"' | escapeChar('double') }}", 'say \\"hi\\"'),
        ("{{ \"it's\" | escapeChar('shell') }}", "it'\\''s"),
        ("{{ 'Hello World! Ça va?' | slugify }}", "hello-world-ca-va"),
        ("{{ 'Test\t\t\ntest*' | slugify }}", "test-test"),
        ("{{ 'a b&c=d/é' | urlencode }}", "a+b%26c%3Dd%2F%C3%A9"),
        ("{{ 'a+b%26c' | urldecode }}", "a b&c"),
        ("{{ 'a.b.c' | substringBefore('.') }}", "a"),
        ("{{ 'a.b.c' | substringBeforeLast('.') }}", "a.b"),
        ("{{ 'a.b.c' | substringAfter('.') }}", "b.c"),
        ("{{ 'a.b.c' | substringAfterLast('.') }}", "c"),
        ("{{ 'abc' | substringBefore('z') }}", "abc"),
        ("{{ 'abc' | substringAfter('z') }}", ""),
        ("{{ 'hello' | startsWith('he') }}", "true"),
        ("{{ 'hello' | startsWith(value='lo') }}", "false"),
        ("{{ 'hello' | endsWith('lo') }}", "true"),
        ("{{ inputs.text | indent(2) }}", "line1\n  line2"),
        ("{{ inputs.text | nindent(2) }}", "\n  line1\n  line2"),
        ("{{ inputs.text | indent(1, '\t') }}", "line1\n\tline2"),
        ("{{ 'abc' | sha1 }}", "a9993e364706816aba3e25717850c26c9cd0d89d"),
        ("{{ 'abc' | sha256 }}", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("{{ 'abc' | md5 }}", "900150983cd24fb0d6963f7d28e17f72"),
        ("{{ 'abc' | sha512 | length }}", "128"),
        ("{{ 'hello' | base64encode }}", "aGVsbG8="),
        ("{{ 'aGVsbG8=' | base64decode }}", "hello"),
        ("{{ 'x' | className }}", "java.lang.String"),
        ("{{ 1 | className }}", "java.lang.Integer"),
        ("{{ 1.5 | className }}", "java.lang.Double"),
        ("{{ true | className }}", "java.lang.Boolean"),
        ("{{ inputs.m | className }}", "java.util.LinkedHashMap"),
        ("{{ inputs.l | className }}", "java.util.ArrayList"),
        ("{{ 'abcdefghij' | abbreviate(6) }}", "abc..."),
        ("{{ 'abc' | abbreviate(6) }}", "abc"),
        ("{{ inputs.words | join(',') | upper | split(',') | last }}", "C"),
        ("{{ null | upper }}", ""),
    ],
)
def test_filters(template: str, expected: str) -> None:
    assert r(template) == expected


# ---------------------------------------------------------------------------------------- dates

DATES: dict[str, Any] = {
    "iso": "2013-09-08T16:19:12.123456+01:00",
    "zulu": "2024-01-01T10:00:00.123Z",
    "local": "2013-09-08T16:19:12",
    "day": "2013-09-08",
    "epoch": 1378653552,
    "dt": datetime(2024, 1, 1, 10, 0, 0, 123000, tzinfo=UTC),
    "naive": datetime(2013, 9, 8, 16, 19, 12, 123456),
    "d": date(2024, 3, 1),
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ zulu | date }}", "2024-01-01T10:00:00.123000Z"),
        ("{{ zulu | date('yyyy-MM-dd') }}", "2024-01-01"),
        ("{{ zulu | date('yyyy-MM-dd HH:mm:ss.SSS') }}", "2024-01-01 10:00:00.123"),
        ("{{ zulu | date('dd/MM/yy') }}", "01/01/24"),
        ("{{ zulu | date('EEEE d MMMM yyyy') }}", "Monday 1 January 2024"),
        ("{{ zulu | date('EEE, MMM d') }}", "Mon, Jan 1"),
        ("{{ zulu | date('h:mm a') }}", "10:00 AM"),
        ("{{ zulu | date(\"yyyy-MM-dd'T'HH:mm\") }}", "2024-01-01T10:00"),
        ("{{ zulu | date(\"'week' w, 'day' D\") }}", "week 1, day 1"),
        ("{{ zulu | date('HH:mm', timeZone='Europe/Paris') }}", "11:00"),
        ("{{ zulu | date('yyyy-MM-dd HH:mm XXX', timeZone='America/New_York') }}", "2024-01-01 05:00 -05:00"),
        ("{{ zulu | date('Z', timeZone='Asia/Kolkata') }}", "+0530"),
        ("{{ zulu | date('iso_sec') }}", "2024-01-01T10:00:00Z"),
        ("{{ zulu | date('sql') }}", "2024-01-01 10:00:00.123000"),
        ("{{ zulu | date('sql_seq') }}", "2024-01-01 10:00:00"),
        ("{{ zulu | date('iso_local_date') }}", "2024-01-01"),
        ("{{ zulu | date('iso_local_date_time') }}", "2024-01-01T10:00:00.123"),
        (
            "{{ zulu | date('iso_offset_date_time', timeZone='Europe/Paris') }}",
            "2024-01-01T11:00:00.123+01:00",
        ),
        (
            "{{ zulu | date('iso_date_time', timeZone='Europe/Paris') }}",
            "2024-01-01T11:00:00.123+01:00[Europe/Paris]",
        ),
        ("{{ zulu | date('iso_instant', timeZone='Europe/Paris') }}", "2024-01-01T10:00:00.123Z"),
        ("{{ zulu | date('rfc_1123_date_time') }}", "Mon, 1 Jan 2024 10:00:00 GMT"),
        ("{{ iso | date(timeZone='Europe/Paris') }}", "2013-09-08T17:19:12.123456+02:00"),
        ("{{ local | date(timeZone='Europe/Paris') }}", "2013-09-08T16:19:12.000000+02:00"),
        ("{{ day | date(timeZone='Europe/Paris') }}", "2013-09-08T00:00:00.000000+02:00"),
        ("{{ epoch | date('iso_sec') }}", "2013-09-08T15:19:12Z"),
        ("{{ dt | date('yyyy-MM-dd HH:mm') }}", "2024-01-01 10:00"),
        (
            "{{ naive | date('yyyy-MM-dd HH:mm:ss.SSSSSSXXX', timeZone='Europe/Paris') }}",
            "2013-09-08 16:19:12.123456+02:00",
        ),
        ("{{ d | date('yyyy-MM-dd HH:mm') }}", "2024-03-01 12:00"),
        ("{{ 'July 24, 2001' | date('yyyy-MM-dd', existingFormat='MMMM dd, yyyy') }}", "2001-07-24"),
        (
            "{{ '24/07/2001 13:45' | date('iso_sec', existingFormat='dd/MM/yyyy HH:mm') }}",
            "2001-07-24T13:45:00Z",
        ),
        (
            "{{ 'Tue, 08 Feb 2022 19:38:26 GMT' | date(existingFormat='rfc_1123_date_time', "
            "timeZone='Europe/Paris') }}",
            "2022-02-08T20:38:26.000000+01:00",
        ),
        ("{{ iso | dateAdd(-1, 'DAYS', timeZone='Europe/Paris') }}", "2013-09-07T17:19:12.123456+02:00"),
        ("{{ zulu | dateAdd(2, 'HOURS', format='HH:mm') }}", "12:00"),
        ("{{ '2024-01-31T00:00:00Z' | dateAdd(1, 'MONTHS', format='yyyy-MM-dd') }}", "2024-02-29"),
        ("{{ zulu | dateAdd(1, 'WEEKS', format='yyyy-MM-dd') }}", "2024-01-08"),
        ("{{ zulu | dateAdd(-1, 'YEARS', format='yyyy') }}", "2023"),
        ("{{ zulu | dateAdd(30, 'MINUTES', format='HH:mm') }}", "10:30"),
        ("{{ iso | timestamp }}", "1378653552"),
        ("{{ iso | timestampNano }}", "1378653552123456000"),
        ("{{ iso | timestampMicro }}", "1378653552000123456"),  # sic: Kestra's formula
        ("{{ (iso | timestamp) > (iso | dateAdd(-1, 'DAYS') | timestamp) }}", "true"),
        ("{{ epoch | timestamp }}", "1378653552"),
    ],
)
def test_dates(template: str, expected: str) -> None:
    assert E.render(template, DATES) == expected


def test_now() -> None:
    out = r("{{ now() }}")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", out)
    parsed = datetime.fromisoformat(out)
    assert abs((datetime.now(UTC) - parsed).total_seconds()) < 60
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", r("{{ now(format='iso_local_date') }}"))
    assert re.search(r"[+-]\d\d:\d\d$", r("{{ now(timeZone='Asia/Tokyo') }}"))
    assert r("{{ now() | date('yyyy') }}") == str(datetime.now(UTC).year)


# ------------------------------------------------------------------------------------ functions


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ fromJson(inputs.json).a }}", "[1,2]"),
        ("{{ fromJson(inputs.json).b.c }}", "true"),
        ("{{ fromJson('[1, 2]') | length }}", "2"),
        ("{{ json('{\"a\": 1}').a }}", "1"),
        ("{{ fromJson(null) }}", ""),
        ("{{ yaml('a: 1\nb: [x]').b }}", '["x"]'),
        ("{{ range(1, 3) }}", "[1,2,3]"),
        ("{{ range(0, 10, 5) }}", "[0,5,10]"),
        ("{{ max(1, 5, 3) }}", "5"),
        ("{{ min(4, 2, 8) }}", "2"),
        ("{{ max(inputs.l) }}", "3"),
        ("{{ isEmpty('') }}", "true"),
        ("{{ isEmpty(inputs.l) }}", "false"),
        ("{{ render(vars.greeting) }}", "hi World"),
        ("{{ render(vars.chain) }}", "hi World!"),
        ("{{ renderOnce(vars.chain) }}", "hi {{ inputs.name }}!"),
        ("{{ render('plain') }}", "plain"),
        ("{{ render({'k': '{{ inputs.x }}'}) }}", '{"k":"5"}'),
        ("{{ vars.greeting }}", "hi {{ inputs.name }}"),
        ("{{ currentEachOutput(outputs.each).value }}", "B"),
        ("{{ randomInt(3, 4) }}", "3"),
    ],
)
def test_functions(template: str, expected: str) -> None:
    assert r(template) == expected


def test_current_each_output_nested() -> None:
    v = dict(VARS, taskrun={"value": "2"}, parents=[{"taskrun": {"value": "x"}}])
    assert E.render("{{ currentEachOutput(outputs.nested_each).value }}", v) == "x2"


def test_random_ids() -> None:
    u = r("{{ uuid() }}")
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", u)
    assert r("{{ uuid() }}") != u
    i = r("{{ id() }}")
    assert re.fullmatch(r"[0-9A-Za-z]{22}", i)
    for _ in range(20):
        assert 0 <= int(r("{{ randomInt(0, 10) }}")) < 10


def test_print_context_hides_internals() -> None:
    ctx = E.evaluate("printContext()", {"a": 1})
    assert ctx == {"a": 1}


def test_injected_functions() -> None:
    store = {"k": "stored"}

    def kv(key: str, namespace: str | None = None, errorOnMissing: bool = True) -> Any:
        if key not in store and errorOnMissing:
            raise KeyError(f"no key {key}")
        return store.get(key)

    e = Expressions({"secret": lambda name: f"secret-{name}", "kv": kv})
    assert e.render("{{ secret('TOKEN') }}", VARS) == "secret-TOKEN"
    assert e.render("{{ kv('k') }}", VARS) == "stored"
    assert e.render("{{ kv('nope', errorOnMissing=false) ?? 'none' }}", VARS) == "none"
    with pytest.raises(ExpressionError, match="no key nope"):
        e.render("{{ kv('nope') }}", VARS)
    # a variable with the same name as a function does not shadow it
    assert e.render("{{ secret('A') }} {{ secret }}", dict(VARS, secret="var")) == "secret-A var"
    # injected functions are per instance
    with pytest.raises(ExpressionError, match="unknown function 'secret'"):
        E.render("{{ secret('TOKEN') }}", VARS)


def test_async_functions() -> None:
    async def secret(name: str) -> str:
        await asyncio.sleep(0)
        return f"s-{name}"

    async def kv(key: str, namespace: str | None = None) -> Any:
        return {"a": [1, 2]} if key == "obj" else None

    e = Expressions({"secret": secret, "kv": kv, "sync": lambda: "sync"})

    async def main() -> None:
        assert await e.render_async("{{ secret('A') }}-{{ sync() }}", VARS) == "s-A-sync"
        assert await e.render_async("{{ kv('obj').a | length }}", VARS) == "2"
        assert await e.render_async("{{ kv('none') ?? secret('B') }}", VARS) == "s-B"
        assert await e.render_async("{% for i in 0..1 %}{{ secret(i) }}{% endfor %}", VARS) == "s-0s-1"
        assert await e.render_async("{{ render('{{ secret(\"C\") }}') }}", VARS) == "s-C"
        assert await e.render_async("no expression", VARS) == "no expression"
        out = await e.render_value_async({"a": "{{ secret('x') }}", "b": ["{{ 1 + 1 }}", 3]}, VARS)
        assert out == {"a": "s-x", "b": ["2", 3]}
        assert await e.evaluate_async("kv('obj')", VARS) == {"a": [1, 2]}
        with pytest.raises(ExpressionError, match="missing"):
            await e.render_async("{{ inputs.missing }}", VARS)

    asyncio.run(main())
    with pytest.raises(ExpressionError, match="render_async"):
        e.render("{{ secret('A') }}", VARS)


# ---------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("template", "fragments"),
    [
        ("{{ outputs.missing.value }}", ["`outputs.missing` is undefined", '"{{ outputs.missing.value }}"']),
        ("{{ inputs.nope }}", ["`inputs.nope` is undefined", "available keys: name, x"]),
        ("{{ missing }}", ["`missing` is undefined"]),
        ("{{ outputs['my-task'].nope }}", ["nope", "is undefined", "available keys: value, value-key"]),
        ("Hi {{ inputs.name }} {{ inputs.nope | upper }}", ["`inputs.nope` is undefined"]),
        ("{{ missing ?? missing2 }}", ["`missing2` is undefined"]),
        ("{{ inputs.missing is defined ? inputs.missing : missing2 }}", ["`missing2` is undefined"]),
        ("{{ inputs.nothing.attr }}", ["`inputs.nothing.attr` is undefined", "null"]),
        ("{% for i in nope %}{% endfor %}", ["`nope` is undefined"]),
        ("{% if nope == 1 %}{% endif %}", ["`nope` is undefined"]),
        ("{{ inputs.missing + 1 }}", ["`inputs.missing` is undefined"]),
        ("{{ 'a' ~ inputs.missing }}", ["`inputs.missing` is undefined"]),
        ("{{ inputs.missing is empty }}", ["`inputs.missing` is undefined"]),
        ("{{ nofn() }}", ["unknown function 'nofn'"]),
        ("{{ 1 / 0 }}", ["division by zero"]),
        ("{{ 'abc' | number }}", ["not a valid number"]),
        ("{{ 'x' | date }}", ["cannot parse 'x' as a date"]),
        ("{{ 'x' | date(timeZone='Mars/Base') }}", ["unknown time zone"]),
        ("{{ fromJson('{bad') }}", ["Invalid json"]),
        ("{{ inputs.m | jq('.[') }}", ["jq"]),
        ("{{ inputs.name | chunk(2) }}", ["chunk"]),
        ("{{ inputs.x | escapeChar('weird') }}", ["escapeChar"]),
        ("{{ inputs.name.__class__ }}", ["is undefined"]),
    ],
)
def test_render_errors(template: str, fragments: list[str]) -> None:
    with pytest.raises(ExpressionError) as info:
        r(template)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_sandbox_blocks_python_internals() -> None:
    for template in (
        "{{ inputs.words.__class__.__mro__ }}",
        "{{ ''.__class__ }}",
        "{{ inputs.words.append(4) }}",
        "{{ cycler }}",
        "{{ range }}",
    ):
        with pytest.raises(ExpressionError):
            r(template)
    assert VARS["inputs"]["words"] == ["a", "b", "c"]


@pytest.mark.parametrize(
    "template",
    [
        "{{ foo( }}",
        "{{ a ?? }}",
        "{{ a ??? }}",
        "{{ }}",
        "{{ inputs.x",
        "{{ 'unterminated }}",
        "{{ (1 + 2 }}",
        "{{ [1, 2 }}",
        "{{ 1 + }}",
        "{{ a ? b }}",
        "{{ a | }}",
        "{{ | toJson }}",
        "{{ {not: json} | toJson }}",
        "{{ a is }}",
        "{{ a b }}",
        "{{ x | nosuchfilter }}",
        "{{ x is nosuchtest }}",
        "{% if x %}",
        "{% endif %}",
        "{% for x %}{% endfor %}",
        "{% set = 1 %}",
        "{% unknowntag %}",
        "{% include 'other' %}",
        "{% raw %}never closed",
        "{# never closed",
        "{{ a.$b }}",
    ],
)
def test_check_rejects(template: str) -> None:
    with pytest.raises(ExpressionError) as info:
        check(template)
    assert template in str(info.value)
    # rendering reports the same problem
    with pytest.raises(ExpressionError):
        r(template)


@pytest.mark.parametrize(
    "template",
    [
        "plain",
        "{{ outputs.missing.value }}",  # check never evaluates
        "{{ nofn() }}",  # functions may be injected at render time
        "{{ a ?? b ??? c }}",
        "{{ inputs.x > 3 ? 'a' : 'b' }}",
        "{% for i in 0..3 %}{{ loop.index }}{% endfor %}",
        "{{ x | date('yyyy', timeZone='UTC') | upper }}",
        '{{ "#{a} and #{b}" }}',
        "{{ {'a': {'b': [1, {'c': 2}]}} }}",
        "{% raw %}{{ {% %}{% endraw %}",
    ],
)
def test_check_accepts(template: str) -> None:
    check(template)


def test_check_error_has_position() -> None:
    with pytest.raises(ExpressionError, match=r"line 2, column \d+"):
        check("first line\n{{ foo( }}")


# ---------------------------------------------------------------------------------------- API


def test_has_expression() -> None:
    assert has_expression("{{ x }}")
    assert has_expression("a {% if x %}b{% endif %}")
    assert not has_expression("plain { text }")
    assert not has_expression("{# only a comment #}")


def test_render_value() -> None:
    value = {
        "a": "{{ inputs.x }}",
        "{{ inputs.name }}": ["{{ inputs.flag }}", 1, None, True, ("{{ 1 + 1 }}",)],
        "n": 3.5,
        "nested": {"deep": "x={{ inputs.l | length }}"},
    }
    assert E.render_value(value, VARS) == {
        "a": "5",
        "World": ["true", 1, None, True, ("2",)],
        "n": 3.5,
        "nested": {"deep": "x=3"},
    }
    assert E.render_value(7, VARS) == 7
    assert E.render_value("plain", VARS) == "plain"


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("inputs.x > 3", True),
        ("{{ inputs.x > 3 }}", True),
        ("inputs.x", 5),
        ("inputs.f * 2", 3.0),
        ("inputs.l", [3, 1, 2]),
        ("inputs.m", {"a": 1, "b": "two"}),
        ("inputs.nothing", None),
        ("inputs.missing ?? 'd'", "d"),
        ("inputs.name ~ '!'", "World!"),
        ("'a' contains 'a' and 1 == 1", True),
        ("inputs.x > 3 or missing", True),
        ("0..2", [0, 1, 2]),
        ("{'k': inputs.x}", {"k": 5}),
        ("outputs.t1.values | length", 2),
        ("inputs.words | join('') | upper", "ABC"),
        ("inputs.missing is defined", False),
        (" {{- inputs.x -}} ", 5),
    ],
)
def test_evaluate(expression: str, expected: Any) -> None:
    assert E.evaluate(expression, VARS) == expected


def test_evaluate_errors() -> None:
    with pytest.raises(ExpressionError, match=r"`inputs\.missing` is undefined"):
        E.evaluate("inputs.missing", VARS)
    with pytest.raises(ExpressionError, match="invalid expression"):
        E.evaluate("inputs.x >", VARS)
    with pytest.raises(ExpressionError):
        E.evaluate("", VARS)


def test_variables_are_not_mutated() -> None:
    v = {"inputs": {"l": [1]}}
    E.render("{% set x = 1 %}{{ x }}", v)
    assert v == {"inputs": {"l": [1]}}


def test_large_and_unicode_templates() -> None:
    template = " ".join(f"{{{{ inputs.words[{i % 3}] }}}}" for i in range(300))
    assert r(template) == " ".join(["a", "b", "c"][i % 3] for i in range(300))
    assert r("héllo {{ 'wörld' | upper }} ✓") == "héllo WÖRLD ✓"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{% for i in [1, 2] %}{% set y = missing ?? i %}{{ y }}{% endfor %}", "12"),
        ("{% macro m(a) %}{{ a ?? 'n' }}{% endmacro %}{{ m(null) }}{{ m(1) }}", "n1"),
        ("{% filter upper %}{{ missing ?? 'x' }}{% endfilter %}", "X"),
        ("{% for i in [1] %}{% for j in [2] %}{{ missing ??? i ~ j }}{% endfor %}{% endfor %}", "12"),
        ("{{ [missing ?? 1, {'k': missing ?? 2}] }}", '[1,{"k":2}]'),
        ("{{ (missing ?? [1, 2]) | length }}", "2"),
    ],
)
def test_coalescing_in_every_scope_sync_and_async(template: str, expected: str) -> None:
    assert E.render(template, {}) == expected
    assert asyncio.run(E.render_async(template, {})) == expected


def test_syntax_error_mentions_pebble_tag_names_and_lines() -> None:
    with pytest.raises(ExpressionError, match="'elseif'") as info:
        check("a\n{% if x %}\nb")
    assert "line 2" in str(info.value)
    with pytest.raises(ExpressionError, match="line 3"):
        check("{{ x\n + 1 }}\n{{ y | nofilter }}")
