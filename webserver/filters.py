"""Kestra's query filters, ``filters[field][OPERATION]=value``, turned into parameterised DuckDB SQL.

The fields and the operations each field takes are Kestra's (``io.kestra.core.models.QueryFilter``);
each resource (flows, executions, logs, triggers, KV) accepts its own fields. A list of filters is an
AND; ``filters[or][0][field][OP]`` (and ``filters[and][i]``, one level of nested group) is what
kestrapy sends for an OR. A field, an operation or a value this API does not know is a 400 naming
it, never ignored: a filter that matches nothing must return nothing. Values are bound as SQL
parameters, never pasted into the text; their number and size are bounded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.core.states import State
from eventstore.indexer import LABEL_SEP, LEVELS
from webserver.http import bad
from webserver.query import parse_date, parse_seconds

EQ, NE, GT, LT, GTE, LTE = (
    "EQUALS",
    "NOT_EQUALS",
    "GREATER_THAN",
    "LESS_THAN",
    "GREATER_THAN_OR_EQUAL_TO",
    "LESS_THAN_OR_EQUAL_TO",
)
IN, NOT_IN, STARTS, ENDS, CONTAINS, REGEX, PREFIX = (
    "IN",
    "NOT_IN",
    "STARTS_WITH",
    "ENDS_WITH",
    "CONTAINS",
    "REGEX",
    "PREFIX",
)
OPERATIONS = (EQ, NE, GT, LT, GTE, LTE, IN, NOT_IN, STARTS, ENDS, CONTAINS, REGEX, PREFIX)

# Kestra's operations per field.
TEXT_OPS = (EQ, NE, CONTAINS, STARTS, ENDS, REGEX, IN, NOT_IN, PREFIX)
ID_OPS = (EQ, NE, CONTAINS, STARTS, ENDS, IN, NOT_IN)
DATE_OPS = (GTE, GT, LTE, LT, EQ, NE)
FIELD_OPS: dict[str, tuple[str, ...]] = {
    "q": (EQ, NE),
    "scope": (EQ, NE),
    "namespace": TEXT_OPS,
    "kind": (EQ, NE, IN, NOT_IN),
    "labels": (EQ, NE, IN, NOT_IN, CONTAINS),
    "flowId": TEXT_OPS,
    "updated": DATE_OPS,
    "startDate": DATE_OPS,
    "endDate": DATE_OPS,
    "state": (EQ, NE, IN, NOT_IN),
    "timeRange": (EQ,),
    "triggerExecutionId": ID_OPS,
    "triggerId": ID_OPS,
    "triggerState": (EQ, NE),
    "executionId": ID_OPS,
    "childFilter": (EQ, NE),
    "workerId": ID_OPS,
    "existingOnly": (EQ, NE),
    "level": (EQ, NE),
    "path": (EQ, NE, IN),
    "parentPath": (EQ, NE, STARTS),
    "version": (EQ, NE),
}

MAX_LEAVES = 50
MAX_VALUE = 1000
MAX_LIST = 200
SYSTEM_NAMESPACE = "system"  # Kestra's default system flow namespace (scope SYSTEM)

Value = str | list[str] | dict[str, str]


@dataclass(frozen=True)
class Leaf:
    name: str  # the field, as sent
    op: str
    value: Value
    key: str  # the query parameter, for the messages


@dataclass(frozen=True)
class Group:
    logical: str  # "and" | "or"
    children: tuple[Leaf | Group, ...] = ()


SEGMENT = re.compile(r"\[([^\[\]]*)\]")


def _segments(key: str) -> list[str]:
    rest = key[len("filters") :]
    parts = SEGMENT.findall(rest)
    if "".join(f"[{p}]" for p in parts) != rest:
        raise bad(f"{key[:200]}: not a filter; write filters[field][OPERATION]=value")
    return parts


def parse(items: Iterable[tuple[str, str]]) -> Group | None:
    """The filters of a query string (its ``filters[...]`` parameters), or None when there are none."""
    # (groups path, field, op) -> values; the path is ((logical, index), ...) from the top
    found: dict[tuple[tuple[tuple[str, int], ...], str, str], list[tuple[str | None, str, str]]] = {}
    count = 0
    for key, value in items:
        if not key.startswith("filters["):
            continue
        count += 1
        if count > MAX_LEAVES:
            raise bad(f"filters: more than {MAX_LEAVES} filters in one query")
        if len(value) > MAX_VALUE:
            raise bad(f"{key[:200]}: the value is longer than {MAX_VALUE} characters")
        parts = _segments(key)
        path: list[tuple[str, int]] = []
        while parts and parts[0].lower() in ("and", "or"):
            if len(parts) < 2 or not parts[1].isdigit() or len(parts[1]) > 4:
                raise bad(f"{key[:200]}: write filters[{parts[0]}][INDEX][field][OPERATION]=value")
            path.append((parts[0].lower(), int(parts[1])))
            parts = parts[2:]
        if len(path) > 2:
            raise bad(f"{key[:200]}: filter groups nest one level at most")
        if len(parts) not in (2, 3):
            raise bad(f"{key[:200]}: write filters[field][OPERATION]=value (or [field][OPERATION][key])")
        name, op = parts[0], parts[1].upper()
        if name not in FIELD_OPS:
            raise bad(f"{key[:200]}: unknown filter field {name!r}; the fields are {', '.join(FIELD_OPS)}")
        if op not in OPERATIONS:
            raise bad(
                f"{key[:200]}: unknown filter operation {parts[1]!r}; use one of {', '.join(OPERATIONS)}"
            )
        map_key = parts[2] if len(parts) == 3 else None
        found.setdefault((tuple(path), name, op), []).append((map_key, value, key))
    if not found:
        return None
    entries: list[tuple[tuple[tuple[str, int], ...], Leaf]] = []
    for (path_, name, op), values in found.items():
        keyed = {k: v for k, v, _ in values if k is not None}
        plain = [v for k, v, _ in values if k is None]
        first = values[0][2]
        if keyed:
            entries.append((path_, Leaf(name, op, keyed, first)))
        for v in plain:
            entries.append((path_, Leaf(name, op, v, first)))
    return _build(entries, 0, "and")


def _build(entries: list[tuple[tuple[tuple[str, int], ...], Leaf]], depth: int, logical: str) -> Group:
    children: list[Leaf | Group] = [leaf for path, leaf in entries if len(path) == depth]
    groups: dict[str, dict[int, list[tuple[tuple[tuple[str, int], ...], Leaf]]]] = {}
    for path, leaf in entries:
        if len(path) > depth:
            sub, index = path[depth]
            groups.setdefault(sub, {}).setdefault(index, []).append((path, leaf))
    for sub, units in groups.items():
        parts = [_build(units[i], depth + 1, "and") for i in sorted(units)]
        children.append(Group(sub, tuple(parts)))
    return Group(logical, tuple(children))


# ---- SQL ----------------------------------------------------------------------------------------

Sql = tuple[str, list[Any]]
Compiler = Callable[[Leaf], Sql]


@dataclass(frozen=True)
class Resource:
    """The fields one search accepts, each with its SQL compiler; ``refused`` names the known fields
    this engine cannot honour, with the reason."""

    name: str
    fields: dict[str, Compiler]
    refused: dict[str, str] = field(default_factory=dict)

    def where(self, tree: Group | None) -> Sql:
        """``(condition, parameters)``: ``("true", [])`` without filters."""
        if tree is None:
            return "true", []
        return self._node(tree)

    def _node(self, node: Leaf | Group) -> Sql:
        if isinstance(node, Leaf):
            return self._leaf(node)
        parts = [self._node(c) for c in node.children]
        if not parts:
            return "true", []
        joiner = " AND " if node.logical == "and" else " OR "
        return "(" + joiner.join(p[0] for p in parts) + ")", [x for p in parts for x in p[1]]

    def _leaf(self, leaf: Leaf) -> Sql:
        if leaf.name in self.refused:
            raise bad(
                f"{leaf.key[:200]}: filter field {leaf.name!r} is not supported ({self.refused[leaf.name]})"
            )
        compiler = self.fields.get(leaf.name)
        if compiler is None:
            raise bad(
                f"{leaf.key[:200]}: the {self.name} search has no filter field {leaf.name!r}; "
                f"its fields are {', '.join(self.fields)}"
            )
        allowed = FIELD_OPS[leaf.name]
        if leaf.op not in allowed:
            raise bad(
                f"{leaf.key[:200]}: operation {leaf.op} is not supported for field {leaf.name!r}; "
                f"use one of {', '.join(allowed)}"
            )
        return compiler(leaf)


def _scalar(leaf: Leaf) -> str:
    if not isinstance(leaf.value, str):
        raise bad(f"{leaf.key[:200]}: give one value, e.g. {leaf.key[:200]}=value")
    return leaf.value


def _values(leaf: Leaf) -> list[str]:
    if isinstance(leaf.value, dict):
        raise bad(f"{leaf.key[:200]}: give a value, not keys")
    items = [v for v in (leaf.value if isinstance(leaf.value, list) else leaf.value.split(",")) if v != ""]
    if len(items) > MAX_LIST:
        raise bad(f"{leaf.key[:200]}: more than {MAX_LIST} values")
    return items


def text(column: str) -> Compiler:
    """A text column: Kestra's string operations."""

    def compile_(leaf: Leaf) -> Sql:
        op = leaf.op
        if op in (IN, NOT_IN):
            values = _values(leaf)
            cond = f"list_contains(?::VARCHAR[], {column})"
            return (cond if op == IN else f"NOT coalesce({cond}, false)"), [values]
        value = _scalar(leaf)
        if op == EQ:
            return f"{column} = ?", [value]
        if op == NE:
            return f"{column} IS DISTINCT FROM ?", [value]
        if op == STARTS:
            return f"starts_with({column}, ?)", [value]
        if op == ENDS:
            return f"ends_with({column}, ?)", [value]
        if op == CONTAINS:
            return f"contains({column}, ?)", [value]
        if op == PREFIX:  # the namespace and the ones below it
            return f"({column} = ? OR starts_with({column}, ?))", [value, value + "."]
        return f"regexp_matches({column}, ?)", [regex(leaf, value)]

    return compile_


# What Python's re accepts and RE2 (DuckDB's engine) refuses: lookarounds, back-references, atomic
# groups, possessive quantifiers, repeats over 1000.
RE2_REFUSES = re.compile(r"\(\?[=!<>]|\(\?P=|\\[1-9]|[*+?}]\+|\{\s*\d{4,}|,\s*\d{4,}\s*\}")


def regex(leaf: Leaf, pattern: str) -> str:
    """A pattern DuckDB's RE2 compiles (linear time: no backtracking on hostile input)."""
    if RE2_REFUSES.search(pattern):
        raise bad(
            f"{leaf.key[:200]}: {pattern[:100]!r}: lookarounds, back-references, atomic groups, "
            "possessive quantifiers and repeats over 1000 are not supported (RE2 syntax)"
        )
    try:
        re.compile(pattern)
    except re.error as exc:
        raise bad(f"{leaf.key[:200]}: {pattern[:100]!r} is not a regular expression ({exc})") from None
    return pattern


def date(column: str) -> Compiler:
    ops = {EQ: "=", NE: "IS DISTINCT FROM", GT: ">", LT: "<", GTE: ">=", LTE: "<="}

    def compile_(leaf: Leaf) -> Sql:
        moment = parse_date(_scalar(leaf), leaf.key[:200])
        if moment is None:
            raise bad(f"{leaf.key[:200]}: give an ISO-8601 date-time, e.g. 2026-01-31T12:00:00Z")
        return f"{column} {ops[leaf.op]} ?", [moment]

    return compile_


def time_range(column: str) -> Compiler:
    def compile_(leaf: Leaf) -> Sql:
        seconds = parse_seconds(_scalar(leaf), leaf.key[:200], "PT24H or P7D")
        return f"{column} >= ?", [datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=seconds)]

    return compile_


def state(column: str) -> Compiler:
    def compile_(leaf: Leaf) -> Sql:
        values = _values(leaf)
        names = {s.value for s in State}
        for v in values:
            if v.upper() not in names:
                raise bad(
                    f"{leaf.key[:200]}: {v[:50]!r} is not a state; use one of {', '.join(sorted(names))}"
                )
        upper = [v.upper() for v in values]
        if leaf.op in (EQ, IN):
            return f"list_contains(?::VARCHAR[], {column})", [upper]
        return f"NOT list_contains(?::VARCHAR[], {column})", [upper]

    return compile_


def labels(column: str) -> Compiler:
    """A ``key:value`` list; the value is a map (``filters[labels][EQUALS][team]=data``) or
    ``key:value`` text (a comma list for IN and NOT_IN)."""

    def pairs(leaf: Leaf) -> list[str]:
        if isinstance(leaf.value, dict):
            return [f"{k}{LABEL_SEP}{v}" for k, v in leaf.value.items()]
        out = _values(leaf) if leaf.op in (IN, NOT_IN) else [_scalar(leaf)]
        for p in out:
            if LABEL_SEP not in p and leaf.op != CONTAINS:
                raise bad(
                    f"{leaf.key[:200]}: {p[:100]!r} is not key:value (or use {leaf.key[:200]}[key]=value)"
                )
        return out

    def compile_(leaf: Leaf) -> Sql:
        given = pairs(leaf)
        if leaf.op == CONTAINS:
            conds = [f"len(list_filter({column}, lambda x: contains(x, ?))) > 0" for _ in given]
            return "(" + " AND ".join(conds) + ")", given
        if leaf.op == EQ:
            return "(" + " AND ".join(f"list_contains({column}, ?)" for _ in given) + ")", given
        if leaf.op == IN:
            return f"list_has_any({column}, ?::VARCHAR[])", [given]
        return f"NOT list_has_any({column}, ?::VARCHAR[])", [given]  # NOT_EQUALS, NOT_IN

    return compile_


def choice(values: dict[str, str]) -> Compiler:
    """A field whose values name SQL conditions (``scope``: USER or SYSTEM, ``childFilter``...)."""

    def compile_(leaf: Leaf) -> Sql:
        chosen = _values(leaf) if leaf.op in (IN, NOT_IN) else [_scalar(leaf)]
        conds = []
        for v in chosen:
            cond = values.get(v.upper())
            if cond is None:
                raise bad(f"{leaf.key[:200]}: {v[:50]!r}; use one of {', '.join(values)}")
            conds.append(cond)
        sql = "(" + " OR ".join(conds) + ")"
        return (sql if leaf.op in (EQ, IN) else f"NOT {sql}"), []

    return compile_


def scope(column: str) -> Compiler:
    system = f"({column} = '{SYSTEM_NAMESPACE}' OR starts_with({column}, '{SYSTEM_NAMESPACE}.'))"
    return choice({"USER": f"NOT {system}", "SYSTEM": system})


def query_text(*columns: str) -> Compiler:
    """``q``: text in any of the columns, case-insensitive."""

    def compile_(leaf: Leaf) -> Sql:
        value = _scalar(leaf).lower()
        cond = "(" + " OR ".join(f"contains(lower(coalesce({c}, '')), ?)" for c in columns) + ")"
        return (cond if leaf.op == EQ else f"NOT {cond}"), [value] * len(columns)

    return compile_


def min_level(column: str) -> Compiler:
    def compile_(leaf: Leaf) -> Sql:
        value = _scalar(leaf)
        level = LEVELS.get(value.upper())
        if level is None:
            raise bad(f"{leaf.key[:200]}: {value[:50]!r}; use one of TRACE, DEBUG, INFO, WARN, ERROR")
        return (f"{column} >= ?" if leaf.op == EQ else f"{column} < ?"), [level]

    return compile_


NOT_KEPT = "this engine keeps no such data"

FLOWS = Resource(
    "flows",
    {
        "namespace": text("namespace"),
        "flowId": text("flow_id"),
        "labels": labels("labels"),
        "q": query_text("flow_id", "namespace", "description"),
        "scope": scope("namespace"),
    },
)

EXECUTIONS = Resource(
    "executions",
    {
        "namespace": text("namespace"),
        "flowId": text("flow_id"),
        "state": state("state"),
        "labels": labels("labels"),
        "startDate": date("start_date"),
        "endDate": date("end_date"),
        "timeRange": time_range("start_date"),
        "q": query_text("search"),
        "scope": scope("namespace"),
        "childFilter": choice({"CHILD": "parent_id IS NOT NULL", "MAIN": "parent_id IS NULL"}),
        # Every execution this engine creates is a NORMAL one (no test or playground runs).
        "kind": choice({"NORMAL": "true", "TEST": "false", "PLAYGROUND": "false"}),
        "triggerExecutionId": text("json_extract_string(doc, '$.trigger.variables.executionId')"),
    },
)

LOGS = Resource(
    "logs",
    {
        "namespace": text("e.namespace"),
        "flowId": text("e.flow_id"),
        "executionId": text("l.execution_id"),
        "level": min_level("l.level_num"),
        "startDate": date("l.date"),
        "endDate": date("l.date"),
        "timeRange": time_range("l.date"),
        "q": query_text("l.message"),
        "scope": scope("e.namespace"),
    },
    {"triggerId": "triggers write no log lines of their own here: their executions' logs carry them"},
)

TRIGGERS = Resource(
    "triggers",
    {
        "namespace": text("namespace"),
        "flowId": text("flow_id"),
        "triggerId": text("trigger_id"),
        "q": query_text("trigger_id", "flow_id", "namespace"),
        "scope": scope("namespace"),
    },
    {
        "workerId": "triggers are evaluated by the scheduler role, not by a worker",
        "triggerState": "use the triggerContext.disabled of the results",
        "startDate": "trigger contexts have no start date",
        "endDate": "trigger contexts have no end date",
    },
)

KV = Resource(
    "kv",
    {
        "namespace": text("namespace"),
        "q": query_text("key"),
        "updated": date("updated"),
    },
)


def filter_sql(request: Any, resource: Resource) -> Sql:
    """The condition of the request's ``filters[...]`` parameters for ``resource`` (400 when wrong)."""
    return resource.where(parse(request.query_params.multi_items()))
