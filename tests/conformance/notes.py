"""The manifest's notes as checks: each note is split in segments (on ``; `` and `` and ``), each
segment parsed by the first form that matches it (a state, a count, outputs, logs, labels, the
tries of a retried execution, child executions...). A check returns None when it holds, else a
message. A segment no form matches is informational: counted, never failed; ``INFORMATIONAL``
says, by form, why such segments cannot be checked by a machine.

Nothing here knows about a particular flow: every check comes from the note's text.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import yaml

STATES = (
    "CREATED|QUEUED|RUNNING|PAUSED|RESTARTED|KILLING|RETRYING"
    "|SUCCESS|WARNING|FAILED|KILLED|CANCELLED|SKIPPED|RETRIED"
)


# ---------------------------------------------------------------------------------------------
# notes: a small, conservative parser. A check returns None when it holds, else a message.


@dataclass
class Observed:
    """What a check may look at: the execution (engine.execution.Execution) and its logs; every try
    of it (``chain``: a retry by new executions, the first try first), the executions its
    Subflow and ForEachItem tasks started (``children``, with their own children), the flow, and
    the execution the case started (``root``: a case run as a child has its parent there), and the
    executions of other flows whose end started it (``upstream``, by flow id: a Flow trigger case)."""

    execution: Any
    logs: list[Any]
    chain: list[Any] = field(default_factory=list)
    children: list[Any] = field(default_factory=list)
    flow: Any = None
    root: Any = None
    upstream: dict[str, str] = field(default_factory=dict)  # flow id -> execution that triggered it
    executions: dict[str, Any] = field(default_factory=dict)  # "1", "2": a concurrency case's two

    @property
    def taskruns(self) -> list[Any]:
        return list(self.execution.taskruns.values())


Check = Callable[[Observed], "str | None"]


@dataclass
class ParsedNote:
    checks: list[tuple[str, Check]]
    informational: list[str]
    run: int = 1  # "run 2 (same input): ...": about the second execution of the flow with the same inputs


_LIT = r"(?P<lit>'[^']*'|[^\s',;]+)"
_REMARK = r"(?:\s+\([^()]*(?:\([^()]*\)[^()]*)*\))?"  # a trailing "(explanation)"
_OP = r"(?P<op>==|!=|>=|<=|contains|starts with|ends with|matches)"
_PATH = r"(?P<path>[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*|\['[^']*'\])*)"
_SUBJECT = (
    r"(?:(?P<first>first|last|the single) taskrun"
    r"|taskrun (?:index )?(?P<index>\d+)"
    r"|(?:(?:[A-Z]\w* )?taskrun |task )?'(?P<task>[^']+)'"
    r"(?: for value (?P<value>'[^']*'|[^\s':]+)| with value path \[(?P<vpath>[^\]]*)\])?)"
)


def _literal(text: str) -> Any:
    if text.startswith("'") and text.endswith("'") and len(text) >= 2:
        return text[1:-1]
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _path_keys(path: str) -> list[str]:
    """``a.b['c.d'].e`` -> ['a', 'b', 'c.d', 'e']."""
    return [q if q else p for q, p in re.findall(r"\['([^']*)'\]|([^.\[\]]+)", path)]


def _get_path(data: Any, path: str) -> tuple[bool, Any]:
    for part in _path_keys(path):
        if isinstance(data, dict) and part in data:
            data = data[part]
        else:
            return False, None
    return True, data


def _compare(actual: Any, op: str, expected: Any) -> bool:
    if op == "==":
        if isinstance(expected, str) and not isinstance(actual, str):
            return False
        return bool(actual == expected)
    if op == "!=":
        return bool(actual != expected)
    if op in (">=", "<="):
        if not isinstance(actual, int | float) or isinstance(actual, bool):
            return False
        return actual >= expected if op == ">=" else actual <= expected
    text = actual if isinstance(actual, str) else "" if actual is None else str(actual)
    if op == "contains":
        return str(expected) in text
    if op == "starts with":
        return text.startswith(str(expected))
    if op == "ends with":
        return text.endswith(str(expected))
    if op == "matches":
        pattern = str(expected)
        if re.search(r"<[^<>]+>", pattern):
            # kestra:///a/<id>/b/<x>.txt: a placeholder is any text, as the `.*` of Kestra's own tests
            pattern = "^" + ".+".join(re.escape(p) for p in re.split(r"<[^<>]+>", pattern)) + "$"
        return re.search(pattern, text) is not None
    raise AssertionError(op)


def _taskrun_label(tr: Any) -> str:
    return f"'{tr.task_id}'" + (f"[{tr.value}]" if tr.value is not None else "")


class _Subject:
    """Which taskruns a note is about: by position, or by task id."""

    def __init__(self, m: re.Match[str]) -> None:
        g = m.groupdict()
        self.first = g.get("first")
        self.index = int(g["index"]) if g.get("index") else None
        self.task = g.get("task")
        # a taskrun in loops: its value, or the values of it and its parents (outermost first)
        self.values: list[str] | None = None
        if g.get("value") is not None:
            self.values = [str(_literal(g["value"]))]
        elif g.get("vpath") is not None:
            self.values = [str(_literal(v.strip())) for v in g["vpath"].split(",")]
        if self.first == "last":
            self.index = -1
        elif self.first in ("first", "the single"):
            self.index = 0
        self.text = m.group(0)

    def select(self, obs: Observed) -> tuple[list[Any], str | None]:
        trs = obs.taskruns
        if self.task is not None:
            found = [tr for tr in trs if tr.task_id == self.task]
            if self.values is not None:
                seen = [_value_path(tr, obs) for tr in found]
                found = [tr for tr in found if _value_path(tr, obs) == self.values]
                if not found:
                    return (
                        [],
                        f"no taskrun for task '{self.task}' with value path {self.values} (seen {seen})",
                    )
            return found, None if found else f"no taskrun for task '{self.task}'"
        assert self.index is not None
        if -len(trs) <= self.index < len(trs):
            return [trs[self.index]], None
        return [], f"no taskrun at index {self.index} (only {len(trs)})"


def _value_path(tr: Any, obs: Observed) -> list[str]:
    """The values of a taskrun and of its parents, outermost first (Kestra's ``findParentsValues``)."""
    path: list[str] = []
    node = tr
    while node is not None:
        if node.value is not None:
            path.insert(0, str(node.value))
        node = obs.execution.taskruns.get(node.parent_id) if node.parent_id else None
    return path


def _state_check(subject: _Subject, state: str) -> Check:
    def check(obs: Observed) -> str | None:
        trs, err = subject.select(obs)
        if err:
            return err
        bad = [f"{_taskrun_label(tr)} is {tr.state}" for tr in trs if tr.state != state]
        return f"{subject.text}: expected {state}, " + ", ".join(bad) if bad else None

    return check


def _all_state_check(state: str) -> Check:
    def check(obs: Observed) -> str | None:
        bad = [f"{_taskrun_label(tr)} is {tr.state}" for tr in obs.taskruns if tr.state != state]
        return f"expected all taskruns {state}: " + ", ".join(bad) if bad else None

    return check


def _count_check(task: str, n: int) -> Check:
    def check(obs: Observed) -> str | None:
        got = sum(1 for tr in obs.taskruns if tr.task_id == task)
        return None if got == n else f"expected {n} taskrun(s) for '{task}', found {got}"

    return check


def _absent_check(task: str) -> Check:
    def check(obs: Observed) -> str | None:
        n = sum(1 for tr in obs.taskruns if tr.task_id == task)
        return f"expected no taskrun for '{task}', found {n}" if n else None

    return check


def _index_is_check(index: int, task: str) -> Check:
    def check(obs: Observed) -> str | None:
        trs = obs.taskruns
        if index >= len(trs):
            return f"no taskrun at index {index} (only {len(trs)})"
        got = trs[index].task_id
        return None if got == task else f"taskrun index {index} is '{got}', expected '{task}'"

    return check


def _attempts_check(subject: _Subject, op: str, n: int) -> Check:
    def check(obs: Observed) -> str | None:
        trs, err = subject.select(obs)
        if err:
            return err
        tr = trs[0]
        got = len(tr.attempts)
        ok = got == n if op == "==" else got >= n
        return None if ok else f"{subject.text}: expected {op} {n} attempts, got {got}"

    return check


def _output_check(subject: _Subject, path: str, op: str, lit: str) -> Check:
    expected = _literal(lit)

    def check(obs: Observed) -> str | None:
        trs, err = subject.select(obs)
        if err:
            return err
        tr = trs[0]
        found, actual = _get_path(tr.outputs or {}, path)
        if not found:
            return f"{subject.text}: no output {path!r} (outputs: {_short(tr.outputs)})"
        want = _resolve(expected, obs)
        if _compare(actual, op, want):
            return None
        return f"{subject.text}: outputs.{path} {op} {want!r} is false (got {_short(actual)})"

    return check


def _execution_output_check(path: str, op: str, lit: str) -> Check:
    expected = _literal(lit)

    def check(obs: Observed) -> str | None:
        found, actual = _get_path(obs.execution.outputs or {}, path)
        if not found:
            return f"execution has no output {path!r} (outputs: {_short(obs.execution.outputs)})"
        if _compare(actual, op, expected):
            return None
        return f"execution outputs.{path} {op} {expected!r} is false (got {_short(actual)})"

    return check


def _placeholder(value: str, obs: Observed) -> tuple[str | None, str | None]:
    """Resolve ``<execution id>`` / ``<taskrun id of 'x'>``; (None, reason) if unknown."""
    if value == "<execution id>":
        return obs.execution.id, None
    m = re.fullmatch(r"<taskrun id of '([^']+)'>", value)
    if m:
        trs = [tr for tr in obs.taskruns if tr.task_id == m.group(1)]
        return (trs[0].id, None) if trs else (None, f"no taskrun for task '{m.group(1)}'")
    return value, None


_PLACEHOLDER_OK = re.compile(r"<execution id>|<taskrun id of '[^']+'>")


def _labels_check(pairs: list[tuple[str, str]], exact: bool) -> Check:
    def check(obs: Observed) -> str | None:
        want: dict[str, str] = {}
        for key, raw in pairs:
            value, err = _placeholder(raw, obs)
            if err:
                return err
            assert value is not None
            want[key] = value
        got = dict(obs.execution.labels)
        if exact and got != want:
            return f"labels: expected exactly {want}, got {got}"
        missing = {k: v for k, v in want.items() if got.get(k) != v}
        if missing:
            return f"labels: expected {missing}, got {got}"
        return None

    return check


def _log_check(subject: _Subject | None, op: str, text: str, last: bool = False) -> Check:
    def check(obs: Observed) -> str | None:
        lines = obs.logs
        if subject is not None:
            trs, err = subject.select(obs)
            if err:
                return err
            ids = {tr.id for tr in trs}
            lines = [line for line in lines if line.taskrun_id in ids]
        if last:
            lines = lines[-1:]
        messages = [line.message for line in lines]
        if any((text in m) if op == "contains" else (m == text) for m in messages):
            return None
        where = f"{subject.text} " if subject else ""
        return f"{where}{'last ' if last else ''}log {op} {text!r}: not found in {_short(messages)}"

    return check


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_UPSTREAM = re.compile(r"<([\w.-]+) execution id>")


def _usable(op: str, lit: str) -> bool:
    """A literal with a ``<placeholder>`` is only understood in ``matches`` (as a wildcard), or when
    it names an upstream execution (``<trigger-flow execution id>``, resolved when checked)."""
    return op == "matches" or not re.search(r"<[^<>]+>", _UPSTREAM.sub("", lit))


def _upstream_id(flow: str, obs: Observed) -> str | None:
    """The execution of the upstream flow ``flow`` (or whose id ends with ``-flow``) the case ran."""
    if flow in obs.upstream:
        return obs.upstream[flow]
    found = [eid for fid, eid in obs.upstream.items() if fid.endswith("-" + flow)]
    return found[0] if len(found) == 1 else None


def _resolve(expected: Any, obs: Observed) -> Any:
    if not isinstance(expected, str) or not _UPSTREAM.search(expected):
        return expected
    return _UPSTREAM.sub(lambda m: _upstream_id(m[1], obs) or m[0], expected)


def _parse_assignments(text: str) -> list[tuple[str, str, str]] | None:
    """``a == 'x', b.c == false`` -> [(path, op, lit)], or None if not of that form."""
    out = []
    pattern = re.compile(rf"\s*{_PATH} {_OP} {_LIT}{_REMARK}\s*(?:,|$)")
    pos = 0
    while pos < len(text):
        m = pattern.match(text, pos)
        if not m:
            return None
        if not _usable(m["op"], m["lit"]):
            return None
        out.append((m["path"], m["op"], m["lit"]))
        pos = m.end()
    return out or None


def _parse_segment(seg: str, prev: _Subject | None) -> tuple[list[Check], _Subject | None] | None:
    """The checks of one note segment, or None when it is not in a form we understand."""
    seg = seg.strip().rstrip(".")
    # 'ab' repeated 3 times -> 'ababab'
    seg = re.sub(r"'([^']*)' repeated (\d+) times", lambda m: "'" + m[1] * int(m[2]) + "'", seg)
    # '<task>' (remark) STATE (remark)   |   taskrun index 2 (remark) FAILED [because ...]
    m = re.fullmatch(rf"{_SUBJECT}{_REMARK} (?P<state>{STATES})(?P<rest>\b.*)", seg)
    if m:
        subject = _Subject(m)
        checks = [_state_check(subject, m["state"])]
        rest = m["rest"].strip()
        if rest.startswith("with "):
            assigns = _parse_assignments(re.sub(r"^outputs\.", "", rest[5:]))
            if assigns is None:
                return None
            checks += [_output_check(subject, re.sub(r"^outputs\.", "", p), o, v) for p, o, v in assigns]
        elif rest and not re.fullmatch(r"\(.*\)|because .*", rest):
            return None
        return checks, subject
    m = re.fullmatch(rf"no taskrun (?:for )?'(?P<task>[^']+)'{_REMARK}", seg)
    if m:
        return [_absent_check(m["task"])], None
    m = re.fullmatch(rf"one taskrun '(?P<task>[^']+)'{_REMARK}", seg)
    if m:
        return [_count_check(m["task"], 1)], None
    m = re.fullmatch(rf"all taskruns (?P<state>{STATES}){_REMARK}", seg)
    if m:
        return [_all_state_check(m["state"])], None
    is_ = r"(?:is )?(?:task )?"
    if re.fullmatch(rf"taskrun index \d+ {is_}'[^']+'(?:, index \d+ {is_}'[^']+')*{_REMARK}", seg):
        pairs = re.findall(rf"index (\d+) {is_}'([^']+)'", seg)
        return [_index_is_check(int(i), t) for i, t in pairs], None
    m = re.fullmatch(rf"{_SUBJECT} has (?:exactly )?(?P<n>\d+) attempts?{_REMARK}", seg)
    if m:
        return [_attempts_check(_Subject(m), "==", int(m["n"]))], None
    m = re.fullmatch(rf"{_SUBJECT} attemptNumber (?P<op>==|>=) (?P<n>\d+){_REMARK}", seg)
    if m:
        return [_attempts_check(_Subject(m), m["op"], int(m["n"]))], None
    # outputs of 'task' value == 'x'   |   outputs of first 'task': a == 'x', b == false
    m = re.fullmatch(
        r"outputs of (?P<first>first )?'(?P<task>[^']+)'(?P<sel> for value (?:'[^']*'|[^\s':]+))?(?P<sep>:)? "
        r"(?P<rest>.+)",
        seg,
    )
    if m:
        subject = _Subject(re.fullmatch(_SUBJECT, f"'{m['task']}'{m['sel'] or ''}"))  # type: ignore[arg-type]
        whole = re.fullmatch(rf"contains '(?P<q>[^']*)'{_REMARK}", m["rest"])
        if whole:
            return [_outputs_contain_check(subject, whole["q"])], subject
        equal = re.fullmatch(r"== (?P<map>\{.*\})", m["rest"])
        if equal:
            return [_outputs_equal_check(subject, yaml.safe_load(equal["map"]))], subject
        assigns = _parse_assignments(m["rest"])
        if assigns is None:
            return None
        return [_output_check(subject, p, o, v) for p, o, v in assigns], subject
    # taskrun 0 outputs.value == 'x'   |   first taskrun outputs.values.count == '4'
    m = re.fullmatch(rf"{_SUBJECT} outputs\.(?P<rest>.+)", seg)
    if m:
        subject = _Subject(m)
        assigns = _parse_assignments(m["rest"])
        if assigns is None:
            return None
        return [_output_check(subject, p, o, v) for p, o, v in assigns], subject
    # its log contains 'x'   |   its log contains: x
    m = re.fullmatch(rf"its log contains(?:: (?P<raw>.+)| '(?P<q>[^']*)'{_REMARK})", seg)
    if m and prev is not None:
        return [_log_check(prev, "contains", m["raw"] if m["raw"] is not None else m["q"])], prev
    m = re.fullmatch(r"log message contains: (?P<raw>.+)", seg)
    if m:
        return [_log_check(None, "contains", m["raw"])], None
    m = re.fullmatch(rf"(?P<which>a|last) log message == '(?P<q>[^']*)'{_REMARK}", seg)
    if m:
        return [_log_check(None, "==", m["q"], last=m["which"] == "last")], None
    # (final|execution) labels (exactly|contain): k=v, k2=<execution id>
    m = re.fullmatch(r"(?:(?P<final>final )|execution )?labels (?P<how>exactly|contain):? (?P<rest>.+)", seg)
    if m:
        pairs = []
        for item in m["rest"].split(", "):
            kv = re.fullmatch(r"([\w.-]+)=('[^']*'|[^\s'<>]+|<[^>]+>)", item.strip())
            if not kv:
                return None
            value = kv.group(2)
            if value.startswith("<") and not _PLACEHOLDER_OK.fullmatch(value):
                return None
            pairs.append((kv.group(1), value[1:-1] if value.startswith("'") else value))
        return [_labels_check(pairs, exact=m["how"] == "exactly")], None
    if re.fullmatch(rf"execution outputs are null{_REMARK}", seg):
        return [
            lambda obs: None if not obs.execution.outputs else f"outputs {_short(obs.execution.outputs)}"
        ], None
    m = re.fullmatch(rf"execution outputs\.{_PATH}{_REMARK} {_OP} {_LIT}{_REMARK}", seg)
    if m and _usable(m["op"], m["lit"]):
        return [_execution_output_check(m["path"], m["op"], m["lit"])], None
    m = re.fullmatch(r"execution outputs has exactly (?P<n>\d+) entr(?:y|ies): (?P<rest>.+)", seg)
    if m:
        assigns = _parse_assignments(m["rest"])
        if assigns is None:
            return None
        n = int(m["n"])

        def count(obs: Observed) -> str | None:
            got = len(obs.execution.outputs or {})
            return None if got == n else f"execution outputs: expected {n} entries, got {got}"

        return [count] + [_execution_output_check(p, o, v) for p, o, v in assigns], None
    return _parse_more(seg, prev)


# -- more forms: logs by level, histories, tries, children, labels, triggers, inputs ----------------


def _outputs_equal_check(subject: _Subject, expected: Any) -> Check:
    def check(obs: Observed) -> str | None:
        trs, err = subject.select(obs)
        if err:
            return err
        got = trs[0].outputs or {}
        return None if got == expected else f"{subject.text}: outputs {_short(got)}, expected {expected!r}"

    return check


def _outputs_contain_check(subject: _Subject, text: str) -> Check:
    """Some text value among the taskrun's outputs (at any depth) contains ``text``."""

    def strings(value: Any) -> list[str]:
        if isinstance(value, dict):
            return [x for v in value.values() for x in strings(v)]
        if isinstance(value, list):
            return [x for v in value for x in strings(v)]
        return [value] if isinstance(value, str) else [str(value)]

    def check(obs: Observed) -> str | None:
        trs, err = subject.select(obs)
        if err:
            return err
        if any(text in x for tr in trs for x in strings(tr.outputs or {})):
            return None
        return f"{subject.text}: no output contains {text!r} (outputs: {_short([tr.outputs for tr in trs])})"

    return check


def _level(name: str) -> str:
    return {"WARNING": "WARN"}.get(name.upper(), name.upper())


def _taskrun_logs(subject: _Subject, obs: Observed) -> tuple[list[Any], str | None]:
    trs, err = subject.select(obs)
    if err:
        return [], err
    ids = {tr.id for tr in trs}
    return [line for line in obs.logs if line.taskrun_id in ids], None


def _log_level_check(subject: _Subject, text: str, level: str) -> Check:
    def check(obs: Observed) -> str | None:
        lines, err = _taskrun_logs(subject, obs)
        if err:
            return err
        if any(text in line.message and _level(line.level) == _level(level) for line in lines):
            return None
        seen = _short([(x.level, x.message) for x in lines])
        return f"{subject.text}: no {level} log containing {text!r} in {seen}"

    return check


def _no_log_check(subject: _Subject) -> Check:
    def check(obs: Observed) -> str | None:
        lines, err = _taskrun_logs(subject, obs)
        if err:
            return err
        return (
            f"{subject.text}: {len(lines)} log lines {_short([x.message for x in lines])}" if lines else None
        )

    return check


_WORDS = {"one": 1, "two": 2, "three": 3}


def _history_check(subject: _Subject, counts: dict[str, int]) -> Check:
    def check(obs: Observed) -> str | None:
        trs, err = subject.select(obs)
        if err:
            return err
        got: dict[str, int] = {}
        for h in trs[0].histories:
            got[h.state] = got.get(h.state, 0) + 1
        # "exactly 1 PAUSED" counts the named states only (every taskrun starts CREATED)
        bad = {k: got.get(k, 0) for k in counts if got.get(k, 0) != counts[k]}
        return f"{subject.text}: history counts {got}, expected {counts}" if bad else None

    return check


def _chain_check(n: int, states: list[str]) -> Check:
    def check(obs: Observed) -> str | None:
        got = sorted(ex.state for ex in obs.chain)
        if len(obs.chain) == n and got == sorted(states):
            return None
        want = sorted(states)
        return f"{len(obs.chain)} executions observed for this flow, states {got}; expected {n}, {want}"

    return check


def _children_check(
    flow_id: str | None, state: str, n_taskruns: int | None, count: int | None = None
) -> Check:
    """The executions the case's execution started (``flow_id``: only those of that flow)."""

    def check(obs: Observed) -> str | None:
        kids = [c for c in obs.children if flow_id is None or c.flow_id == flow_id]
        if not kids:
            return f"no child execution{f' of {flow_id}' if flow_id else ''} found"
        if count is not None and len(kids) != count:
            return f"{len(kids)} child executions, expected {count}"
        bad = [
            f"{c.id} {c.state} with {len(c.taskruns)} taskruns"
            for c in kids
            if c.state != state or (n_taskruns is not None and len(c.taskruns) != n_taskruns)
        ]
        return (
            f"expected {state}"
            + (f" with {n_taskruns} taskrun(s)" if n_taskruns is not None else "")
            + (f": {_short(bad)}" if bad else "")
            if bad
            else None
        )

    return check


def _children_input_check(path: str, op: str, lit: str) -> Check:
    expected = _literal(lit)

    def check(obs: Observed) -> str | None:
        bad = []
        for c in obs.children:
            found, actual = _get_path(c.inputs, path)
            if not found or not _compare(actual, op, expected):
                bad.append(f"{c.id}: {_short(actual)}")
        return f"child inputs.{path} {op} {expected!r} is false: {_short(bad)}" if bad else None

    return check


def _label_check(key: str, whose: str, of: str) -> Check:
    """``whose``: 'self' (the execution), 'children', 'descendants'; ``of``: 'root' or 'self'."""

    def check(obs: Observed) -> str | None:
        want = (obs.root or obs.execution).id if of == "root" else obs.execution.id
        targets = [obs.execution] if whose == "self" else obs.children
        if not targets:
            return "no child execution found"
        bad = [f"{ex.id}: {ex.labels.get(key)!r}" for ex in targets if ex.labels.get(key) != want]
        return f"label {key} expected {want!r}: {_short(bad)}" if bad else None

    return check


def _attempt_numbers_check(indexes: list[int], op: str, n: int) -> Check:
    def check(obs: Observed) -> str | None:
        trs = obs.taskruns
        bad = []
        for i in indexes:
            if i >= len(trs):
                return f"no taskrun at index {i} (only {len(trs)})"
            got = len(trs[i].attempts)
            if not (got == n if op == "==" else got >= n):
                bad.append(f"index {i} {_taskrun_label(trs[i])}: {got} attempts")
        return f"expected attemptNumber {op} {n}: {', '.join(bad)}" if bad else None

    return check


def _at_least_check(n: int, state: str) -> Check:
    def check(obs: Observed) -> str | None:
        got = sum(1 for tr in obs.taskruns if tr.state == state)
        return None if got >= n else f"{got} taskruns {state}, expected at least {n}"

    return check


def _disabled_tasks(flow: Any) -> set[str]:
    out: set[str] = set()

    def walk(tasks: Any) -> None:
        for task in tasks or ():
            if task.disabled:
                out.add(task.id)
            for branch in (task.branches or {}).values():
                walk(branch)

    for section in (flow.tasks, flow.errors, flow.finally_, flow.after_execution):
        walk(section)
    return out


def _disabled_check(obs: Observed) -> str | None:
    if obs.flow is None:
        return "the flow of the execution cannot be read"
    disabled = _disabled_tasks(obs.flow)
    if not disabled:
        return "the flow has no disabled task"
    ran = sorted({tr.task_id for tr in obs.taskruns if tr.task_id in disabled})
    return f"disabled tasks have taskruns: {ran}" if ran else None


def _no_attempts_check(subject: _Subject) -> Check:
    def check(obs: Observed) -> str | None:
        trs, err = subject.select(obs)
        if err:
            return err
        n = len(trs[0].attempts)
        return f"{subject.text}: {n} attempts, expected none" if n else None

    return check


def _attempts_state_check(subject: _Subject, n: int, state: str) -> Check:
    def check(obs: Observed) -> str | None:
        trs, err = subject.select(obs)
        if err:
            return err
        attempts = trs[0].attempts
        got = [a.state for a in attempts]
        if len(attempts) == n and attempts and attempts[-1].state == state:
            return None
        return f"{subject.text}: attempts {got}, expected {n} ending {state}"

    return check


def _path_of(where: str) -> Callable[[Observed], Any]:
    return {
        "inputs": lambda obs: obs.execution.inputs,
        "trigger": lambda obs: obs.execution.trigger or {},
        "outputs": lambda obs: obs.execution.outputs or {},
        "taskrun outputs": _outputs_map,
    }[where]


def _outputs_map(obs: Observed) -> dict[str, Any]:
    """Kestra's ``Execution.outputs()``: every taskrun's outputs by task id, then by loop value
    (outermost first), as ``execution outputs['task'][v1][v2]`` reads them."""
    out: dict[str, Any] = {}
    for tr in obs.taskruns:
        if not tr.outputs:
            continue
        keys = [tr.task_id, *_value_path(tr, obs)]
        node = out
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = tr.outputs
    return out


def _execution_value_check(where: str, path: str, op: str, lit: str | None, expected: Any = None) -> Check:
    """``execution inputs.a == x`` (``trigger.``, ``outputs['k'].v``): ``lit`` None compares ``expected``."""
    want = _literal(lit) if lit is not None else expected
    read = _path_of(where)

    def check(obs: Observed) -> str | None:
        found, actual = _get_path(read(obs), path)
        if not found:
            return f"execution has no {where}.{path} ({where}: {_short(read(obs))})"
        if _compare(actual, op, want):
            return None
        return f"execution {where}.{path} {op} {want!r} is false (got {_short(actual)})"

    return check


def _any_output_check(path: str, op: str, lit: str) -> Check:
    """A note about ``outputs.x`` that names no taskrun: some taskrun's outputs hold it."""
    expected = _literal(lit)

    def check(obs: Observed) -> str | None:
        seen = []
        for tr in obs.taskruns:
            found, actual = _get_path(tr.outputs or {}, path)
            if found:
                seen.append(actual)
                if _compare(actual, op, expected):
                    return None
        return f"no taskrun has outputs.{path} {op} {expected!r} (seen: {_short(seen)})"

    return check


def _mapping_check(subject: _Subject, path: str, items: dict[str, str]) -> Check:
    """``iterations {CREATED: 0, SUCCESS: 26}``: each named key (``absent``: not there)."""

    def check(obs: Observed) -> str | None:
        trs, err = subject.select(obs)
        if err:
            return err
        found, actual = _get_path(trs[0].outputs or {}, path)
        if not found or not isinstance(actual, dict):
            return f"{subject.text}: no mapping outputs.{path} (outputs: {_short(trs[0].outputs)})"
        bad = []
        for key, raw in items.items():
            if raw == "absent":
                if key in actual:
                    bad.append(f"{key} present")
            elif actual.get(key) != _literal(raw):
                bad.append(f"{key}={actual.get(key)!r}")
        return f"{subject.text}: outputs.{path} {_short(actual)}: {', '.join(bad)}" if bad else None

    return check


def _relative_outputs(subject: _Subject, rest: str) -> list[Check] | None:
    """``numberOfBatches == 26, iterations {CREATED: 0, SUCCESS: 26}, iterations SUCCESS == 26``."""
    checks: list[Check] = []
    for item in _split(rest, ", "):
        item = item.strip()
        m = re.fullmatch(rf"{_PATH} \{{(?P<body>[^{{}}]*)\}}{_REMARK}", item)
        if m:
            pairs = [p.split(":", 1) for p in m["body"].split(",")]
            if not all(len(p) == 2 for p in pairs):
                return None
            checks.append(_mapping_check(subject, m["path"], {k.strip(): v.strip() for k, v in pairs}))
            continue
        m = re.fullmatch(rf"{_PATH}(?: (?P<key>[A-Z]+))? {_OP} {_LIT}{_REMARK}", item)
        if m and _usable(m["op"], m["lit"]):
            path = m["path"] + (f".{m['key']}" if m["key"] else "")
            checks.append(_output_check(subject, path, m["op"], m["lit"]))
            continue
        return None
    return checks


def _bracket_path(text: str) -> str | None:
    """``['2-1_return'].v41.value`` -> ``2-1_return.v41.value`` (None when not of that form)."""
    m = re.fullmatch(r"\['(?P<key>[^'.]+)'\](?P<rest>(?:\.[\w-]+)*)", text)
    return m["key"] + m["rest"] if m else None


def _parse_more(seg: str, prev: _Subject | None) -> tuple[list[Check], _Subject | None] | None:
    states = f"(?P<state>{STATES})"
    m = re.fullmatch(
        r"(?P<n>\d+) terminal executions observed for this flow, states \{(?P<s>[A-Z, ]+)\} in any order",
        seg,
    )
    if m:
        return [_chain_check(int(m["n"]), [x.strip() for x in m["s"].split(",")])], None
    if re.fullmatch(rf"errors branch runs{_REMARK}", seg):
        return [
            lambda obs: (
                None
                if any(tr.branch == "errors" for tr in obs.taskruns)
                else "no taskrun of an errors branch"
            )
        ], None
    m = re.fullmatch(
        rf"{_SUBJECT}{_REMARK} logs '(?P<q>[^']*)' at (?P<level>TRACE|DEBUG|INFO|WARN|WARNING|ERROR)", seg
    )
    if m:
        return [_log_level_check(_Subject(m), m["q"], m["level"])], None
    m = re.fullmatch(rf"{_SUBJECT}{_REMARK} emits no log entry", seg)
    if m:
        return [_no_log_check(_Subject(m))], None
    m = re.fullmatch(rf"log of {_SUBJECT} is masked \(contains '(?P<q>[^']*)'\)", seg)
    if m:
        return [_log_check(_Subject(m), "contains", m["q"])], None
    m = re.fullmatch(
        r"(?:(?P<bare>[\w-]+) taskrun) history has (?P<exact>exactly )?"
        r"(?P<counts>\d+ [A-Z]+(?:(?:, | and )\d+ [A-Z]+)*) entries",
        seg,
    )
    if m:
        counts = {st: int(n) for n, st in re.findall(r"(\d+) ([A-Z]+)", m["counts"])}
        subject = _Subject(re.fullmatch(_SUBJECT, f"'{m['bare']}'"))  # type: ignore[arg-type]
        return [_history_check(subject, counts)], subject
    m = re.fullmatch(rf"exactly (?P<n>one|two|three|\d+) {states} in its history", seg)
    if m and prev is not None:
        n = _WORDS.get(m["n"]) or int(m["n"])
        return [_history_check(prev, {m["state"]: n})], prev
    m = re.fullmatch(rf"{_SUBJECT}{_REMARK} has no attempts", seg)
    if m:
        return [_no_attempts_check(_Subject(m))], _Subject(m)
    m = re.fullmatch(rf"{_SUBJECT}{_REMARK} has (?P<n>\d+) attempts? {states}", seg)
    if m:
        return [_attempts_state_check(_Subject(m), int(m["n"]), m["state"])], _Subject(m)
    m = re.fullmatch(rf"{_SUBJECT}{_REMARK} has non-null outputs", seg)
    if m:
        subject = _Subject(m)
        return [_outputs_presence_check(subject, present=True)], subject
    m = re.fullmatch(rf"{_SUBJECT}{_REMARK} outputs are null{_REMARK}", seg)
    if m:
        subject = _Subject(m)
        return [_outputs_presence_check(subject, present=False)], subject
    m = re.fullmatch(r"outputs (?P<rest>.+)", seg)
    if m and prev is not None:
        checks = _relative_outputs(prev, m["rest"])
        return (checks, prev) if checks else None
    m = re.fullmatch(rf"{_SUBJECT} outputs\.{_PATH} == '(?P<q>[^']*)' repeated (?P<n>\d+) times", seg)
    if m:
        subject = _Subject(m)
        return [_output_check(subject, m["path"], "==", repr(m["q"] * int(m["n"])))], subject
    m = re.fullmatch(r"outputs\.(?P<rest>.+)", seg)
    assigns = _parse_assignments(m["rest"]) if m else None
    if assigns is not None:
        return [_any_output_check(p, o, v) for p, o, v in assigns], None
    m = re.fullmatch(rf"execution inputs\.{_PATH} is an empty map", seg)
    if m:
        return [_execution_value_check("inputs", m["path"], "==", None, {})], None
    m = re.fullmatch(rf"(?P<where>execution inputs|trigger)\.{_PATH} {_OP} {_LIT}{_REMARK}", seg)
    if m and _usable(m["op"], m["lit"]):
        where = "trigger" if m["where"] == "trigger" else "inputs"
        return [_execution_value_check(where, m["path"], m["op"], m["lit"])], None
    m = re.fullmatch(
        rf"execution outputs(?P<first>\['[^']+'\](?:\.[\w-]+)*) {_OP} {_LIT}"
        r"(?P<more>(?:, \.[\w.-]+ == '[^']*')*)",
        seg,
    )
    if m and _usable(m["op"], m["lit"]):
        path = _bracket_path(m["first"])
        if path is None:
            return None
        root = path.split(".", 1)[0]
        checks = [_execution_value_check("taskrun outputs", path, m["op"], m["lit"])]
        for rel, lit in re.findall(r", \.([\w.-]+) == ('[^']*')", m["more"] or ""):
            base = path.rsplit(".", len(rel.split(".")))[0] if "." in path else root
            checks.append(_execution_value_check("taskrun outputs", f"{base}.{rel}", "==", lit))
        return checks, None
    m = re.fullmatch(
        r"execution outputs\['(?P<key>[^']+)'\](?P<groups>(?:\[[\w|-]+\])+)\.(?P<leaf>[\w-]+) =="
        r" '(?P<lit>[^']*)' \((?P<n>\d+) combinations\)",
        seg,
    )
    if m:
        # each [a|b] ranges over its alternatives; the literal's <placeholders> take them in order
        groups = [g.split("|") for g in re.findall(r"\[([\w|-]+)\]", m["groups"])]
        combos = list(itertools.product(*groups))
        holes = re.findall(r"<[^<>]+>", m["lit"])
        if len(combos) != int(m["n"]) or len(holes) != len(groups):
            return None
        checks = []
        for combo in combos:
            want = m["lit"]
            for hole, value in zip(holes, combo, strict=True):
                want = want.replace(hole, value, 1)
            path = ".".join([m["key"], *combo, m["leaf"]])
            checks.append(_execution_value_check("taskrun outputs", path, "==", repr(want)))
        return checks, None
    m = re.fullmatch(
        r"taskruns index (?P<idx>\d+(?:(?:, | and )\d+)*) each have attemptNumber "
        rf"(?P<op>==|>=) (?P<n>\d+){_REMARK}",
        seg,
    )
    if m:
        indexes = [int(i) for i in re.findall(r"\d+", m["idx"])]
        return [_attempt_numbers_check(indexes, m["op"], int(m["n"]))], None
    m = re.fullmatch(rf"at least (?P<n>\d+) taskruns {states}{_REMARK}", seg)
    if m:
        return [_at_least_check(int(m["n"]), m["state"])], None
    if re.fullmatch(rf"disabled tasks produce no taskrun{_REMARK}", seg):
        return [_disabled_check], None
    m = re.fullmatch(rf"all {states}{_REMARK}", seg)
    if m:
        return [_all_state_check(m["state"])], None
    m = re.fullmatch(
        rf"child '(?P<flow>[^']+)'(?: execution)? {states} with (?P<n>\d+) taskruns?{_REMARK}", seg
    )
    if m:
        return [_children_check(m["flow"], m["state"], int(m["n"]))], None
    m = re.fullmatch(rf"child \((?P<a>[\w.-]+)\) and grand-child \((?P<b>[\w.-]+)\) executions {states}", seg)
    if m:
        return [_children_check(m["a"], m["state"], None), _children_check(m["b"], m["state"], None)], None
    m = re.fullmatch(
        rf"each subflow execution(?: \((?P<flow>[\w.-]+)\))? {states}(?:,| with) (?P<n>\d+) taskruns?"
        rf"(?:, input (?P<input>\w+) {_OP} (?P<lit>\S+))?",
        seg,
    )
    if m:
        checks = [_children_check(m["flow"], m["state"], int(m["n"]))]
        if m["input"]:
            checks.append(_children_input_check(m["input"], m["op"], m["lit"]))
        return checks, None
    m = re.fullmatch(
        rf"all (?P<c>\d+) subflow executions(?: eventually)? {states} with (?P<n>\d+) taskruns?", seg
    )
    if m:
        return [_children_check(None, m["state"], int(m["n"]), count=int(m["c"]))], None
    m = re.fullmatch(
        rf"(?:start execution 1 \(RUNNING\), then execution 2: )?execution (?P<n>[12]) "
        rf"(?P<verb>is|ends) {states}(?P<now> immediately)?",
        seg,
    )
    if m:
        return [_numbered_check(m["n"], m["state"], None, bool(m["now"]), False)], None
    m = re.fullmatch(
        rf"execution (?P<n>[12])(?: started while 1 is RUNNING)? (?P<verb>goes|history is) "
        rf"(?P<hist>(?:{STATES})(?: -> (?:{STATES}))+)",
        seg,
    )
    if m:
        exact = m["verb"] == "history is"
        return [_numbered_check(m["n"], None, m["hist"].split(" -> "), False, exact)], None
    m = re.fullmatch(r"trigger\.(?P<base>[\w.]+): (?P<rest>.+)", seg)
    if m:
        items = []
        for item in m["rest"].split(", "):
            kv = re.fullmatch(r"(\w+) == ('[^']*'|upstream id|([\w.-]+) execution id)", item.strip())
            if not kv:
                return None
            items.append((kv[1], kv[2], kv[3]))
        return [_trigger_check(m["base"], key, raw, flow) for key, raw, flow in items], None
    m = re.fullmatch(rf"{states}, (?P<n>\d+) taskruns?, (?P<rest>.+)", seg)
    if m:
        rest = _parse_segment(m["rest"], prev)
        if rest is None:
            return None
        state, n = m["state"], int(m["n"])
        return [
            lambda obs: (
                None if obs.execution.state == state else f"state {obs.execution.state}, expected {state}"
            ),
            lambda obs: None if len(obs.taskruns) == n else f"{len(obs.taskruns)} taskruns, expected {n}",
            *rest[0],
        ], rest[1]
    m = re.fullmatch(rf"{_SUBJECT}{_REMARK} outputs (?P<rest>[A-Za-z_].+)", seg)
    if m:
        subject = _Subject(m)
        checks = _relative_outputs(subject, m["rest"])
        return (checks, subject) if checks else None
    if prev is not None:
        checks = _relative_outputs(prev, seg)
        if checks:
            return checks, prev
    m = re.fullmatch(rf"{_SUBJECT}{_REMARK} has outputs\.{_PATH}", seg)
    if m:
        subject = _Subject(m)
        return [_output_check(subject, m["path"], "!=", "null")], subject
    m = re.fullmatch(r"(?:flow )?errors branch(?: \((?P<task>[\w-]+)\))? (?:ran|runs)", seg)
    if m:
        task = m["task"]
        return [
            lambda obs: (
                None
                if any(tr.branch == "errors" and (task is None or tr.task_id == task) for tr in obs.taskruns)
                else f"no taskrun of an errors branch{f' for {task!r}' if task else ''}"
            )
        ], None
    m = re.fullmatch(r"outputs\.(?P<path>\w+) == child (?P<what>id|state)", seg)
    if m:
        return [_child_ref_check(m["path"], m["what"])], None
    m = re.fullmatch(
        r"child labels (?:exactly (?P<n>\d+)|\((?P<n2>\d+)\)): (?P<rest>.+?)(?: \([^()]*\))?", seg
    )
    if m:
        pairs = []
        for item in m["rest"].split(", "):
            kv = re.fullmatch(r"([\w.-]+)=([^\s<>]+|<parent id>)", item.strip())
            if not kv:
                return None
            pairs.append((kv[1], kv[2]))
        if len(pairs) != int(m["n"] or m["n2"]):
            return None
        return [_child_labels_check(dict(pairs))], None
    m = re.fullmatch(r"typed input values: (?P<rest>.+)", seg)
    if m:
        checks = []
        for item in _split(m["rest"], ", "):
            kv = re.fullmatch(r"([\w.]+) (.+)", item.strip())
            if not kv:
                return None
            checks.append(_input_value_check(kv[1], kv[2]))
        return checks, None
    m = re.fullmatch(r"(?P<whose>subflow |both carry )?label (?P<key>[\w.]+) == (?P<who>.+)", seg)
    if m:
        whose = {"subflow ": "children", "both carry ": "children"}.get(m["whose"] or "", "self")
        who = m["who"]
        if who == "root execution id" and whose == "self":
            return [_label_check(m["key"], "self", "root")], None
        if who in ("parent execution id", "id of the parent (root) execution") and whose == "children":
            return [_label_check(m["key"], "children", "self")], None
    return None


def _numbered_check(
    n: str, state: str | None, history: list[str] | None, at_once: bool, exact: bool
) -> Check:
    """``execution 2 is CANCELLED immediately`` (never RUNNING); ``execution 2 history is CREATED ->
    CANCELLED`` (exactly); ``execution 2 goes CREATED -> QUEUED -> RUNNING -> SUCCESS`` (its history
    starts so and it ends so, as Kestra's test reads it: a Pause in between is allowed)."""

    def check(obs: Observed) -> str | None:
        ex = obs.executions.get(n)
        if ex is None:
            return f"execution {n} was not run (the case did not start two executions)"
        states = [h.state for h in ex.histories]
        if state is not None and ex.state != state:
            return f"execution {n} is {ex.state}, expected {state}"
        if at_once and "RUNNING" in states:
            return f"execution {n} ran before it ended: {' -> '.join(states)}"
        if history is not None:
            ok = states == history if exact else states[: len(history) - 1] == history[:-1]
            if not ok or states[-1] != history[-1]:
                return f"execution {n} went {' -> '.join(states)}, expected {' -> '.join(history)}"
        return None

    return check


def _trigger_check(base: str, key: str, raw: str, flow: str | None) -> Check:
    """``trigger.variables: executionId == upstream id``: a literal, the upstream execution (the one
    of the flow it names, else any the case ran)."""

    def check(obs: Observed) -> str | None:
        found, actual = _get_path(obs.execution.trigger or {}, f"{base}.{key}")
        if not found:
            return f"trigger has no {base}.{key} (trigger: {_short(obs.execution.trigger)})"
        if raw.startswith("'"):
            ok, want = actual == raw[1:-1], raw[1:-1]
        elif flow is not None:
            want = _upstream_id(flow, obs) or f"<{flow} execution id>"
            ok = actual == want
        else:
            want = f"one of {sorted(obs.upstream.values())}"
            ok = actual in obs.upstream.values()
        return None if ok else f"trigger.{base}.{key} is {actual!r}, expected {want}"

    return check


def _child_ref_check(path: str, what: str) -> Check:
    """``outputs.executionId == child id``: a taskrun's output names a child execution (its id, its state)."""

    def check(obs: Observed) -> str | None:
        by_id = {c.id: c for c in obs.children}
        seen = []
        for tr in obs.taskruns:
            found, actual = _get_path(tr.outputs or {}, path)
            if not found:
                continue
            seen.append(actual)
            child = by_id.get((tr.outputs or {}).get("executionId"))
            if child is not None and actual == (child.id if what == "id" else child.state):
                return None
        return f"no taskrun has outputs.{path} == its child's {what} (seen {_short(seen)})"

    return check


def _child_labels_check(want: dict[str, str]) -> Check:
    def check(obs: Observed) -> str | None:
        kids = [c for c in obs.children if c.parent and c.parent.get("execution_id") == obs.execution.id]
        if not kids:
            return "no child execution found"
        expected = {k: obs.execution.id if v == "<parent id>" else v for k, v in want.items()}
        bad = [f"{c.id}: {c.labels}" for c in kids if dict(c.labels) != expected]
        return f"child labels expected exactly {expected}: {_short(bad)}" if bad else None

    return check


def _input_value_check(path: str, text: str) -> Check:
    expected = yaml.safe_load(text)

    def check(obs: Observed) -> str | None:
        found, actual = _get_path(obs.execution.inputs, path)
        if not found:
            return f"no input {path!r} (inputs: {_short(obs.execution.inputs)})"
        if isinstance(expected, datetime) and isinstance(actual, str):
            with suppress(ValueError):
                actual = datetime.fromisoformat(actual.replace("Z", "+00:00"))
        if isinstance(expected, datetime) and expected.tzinfo is None:
            expected_cmp: Any = expected.replace(tzinfo=UTC)
        else:
            expected_cmp = expected
        return None if actual == expected_cmp else f"input {path} is {_short(actual)}, expected {expected!r}"

    return check


def _outputs_presence_check(subject: _Subject, present: bool) -> Check:
    def check(obs: Observed) -> str | None:
        trs, err = subject.select(obs)
        if err:
            return err
        has = bool(trs[0].outputs)
        if has == present:
            return None
        return f"{subject.text}: outputs {_short(trs[0].outputs)}, expected {'some' if present else 'none'}"

    return check


def _strip_prefix(note: str) -> str | None:
    """Drop a descriptive ``prefix: `` (keep the note); None when the prefix names another run/test."""
    m = re.match(r"([^:']+): (.+)$", note)
    if not m:
        return note
    prefix = m.group(1)
    if ";" in prefix or "{" in prefix:
        return note  # not a prefix: a colon inside the note's own text
    if prefix == "final":
        return m.group(2)  # the state the case ends in: what the runner checks
    if " " not in prefix.strip() or re.match(r"run \d", prefix) or "#" in prefix:
        return None
    return m.group(2)


def _split(body: str, sep: str) -> list[str]:
    """Split on ``sep`` outside parentheses, brackets, braces and quotes."""
    parts, depth, quoted, start, i = [], 0, False, 0, 0
    while i < len(body):
        ch = body[i]
        if ch == "'" and (i == 0 or not body[i - 1].isalnum() or quoted):
            quoted = not quoted
        elif not quoted and ch in "([{":
            depth += 1
        elif not quoted and ch in ")]}":
            depth = max(0, depth - 1)
        elif not quoted and depth == 0 and body.startswith(sep, i):
            parts.append(body[start:i])
            i += len(sep)
            start = i
            continue
        i += 1
    parts.append(body[start:])
    return parts


def _parse_body(body: str) -> ParsedNote:
    out = ParsedNote([], [])
    prev: _Subject | None = None
    for seg in _split(body, "; "):
        parsed = _parse_segment(seg, prev)
        if parsed is None and " and " in seg:
            # each part on its own: what parses is checked, the rest stays informational
            parsed_parts = []
            parts = _split(seg, " and ")
            for i in range(1, len(parts)):
                # "x contains 'a' and 'b'": the second literal is contained too
                lead = re.fullmatch(r"(.* contains )'[^']*'", parts[i - 1].strip())
                if lead and re.fullmatch(r"\s*'[^']*'\s*", parts[i]):
                    parts[i] = lead[1] + parts[i].strip()
            for part in parts:
                one = _parse_segment(part, prev)
                if one is not None:
                    prev = one[1]
                parsed_parts.append((part, one))
            if any(one is not None for _, one in parsed_parts):
                for part, one in parsed_parts:
                    if one is None:
                        out.informational.append(part)
                    else:
                        out.checks += [(part, c) for c in one[0]]
                continue
        if parsed is None:
            out.informational.append(seg)
            prev = None
            continue
        checks, prev = parsed
        out.checks += [(seg, c) for c in checks]
    return out


def parse_note(note: str) -> ParsedNote:
    """Checks for the segments of ``note`` (split on ``; ``) written in a form we recognise."""
    if note.startswith(("same ", "also asserted", "test asserts only")):
        return ParsedNote([], [note])
    m = re.fullmatch(r"run (?P<n>\d+)(?: \(same inputs?\))?: (?P<body>.+)", note)
    if m:
        out = _parse_body(m["body"])
        out.run = int(m["n"])
        return out
    out = _parse_body(note)
    if out.informational:
        body = _strip_prefix(note)
        if body is not None and body != note:
            stripped = _parse_body(body)
            if len(stripped.informational) < len(out.informational):
                return stripped
    return out


# -- why a segment stays informational ---------------------------------------------------------
# Every note segment no form parses must fall under one of these reasons
# (tests/conformance/test_notes.py holds the manifest to it): a new form of note is then either
# parsed or given its reason here, never silently left out.

INFORMATIONAL: tuple[tuple[str, str], ...] = (
    (
        r"^(same |also asserted|test asserts only)|asserted via |^run as (a )?(sub|child|grand)",
        "points to another case or run: checked there",
    ),
    (
        r"^run [0-9]|RestartCaseTest|MultipleConditionTriggerCaseTest|SkipExecutionCaseTest|"
        r"shouldPause|JdbcRunnerTest|^transmitFailed:",
        "about another run of the flow or another Java test than the one this case runs",
    ),
    (
        r"execution [12]\b|holds the slot",
        "how execution 1 holds the concurrency slot: the states of execution 2 check it",
    ),
    (
        r"within \d+ (s|minute)|1 ms apart|becomes terminated|\(1 s wait\)|scheduleDate",
        "a timing assertion: a duration on a shared machine is not a conformance check",
    ),
    (
        r"\b(GET|POST|PUT)\b|webhook|flow labels copied",
        "needs an HTTP request to the webhook route (the runner creates executions directly)",
    ),
    (
        r"RESTARTED|restarted|replayed execution|created replay|before re-run|new execution id|"
        r"finished replay",
        "an intermediate state between a restart or replay and its end (the runner sees the end)",
    ),
    (
        r"internal storage|internal-storage|stored file|cache archive|logFile|file content|first file",
        "needs the content of a file in internal storage",
    ),
    (
        r"->|rejected|refused|Invalid input|must be|must match|validation bounds",
        "the message of a separate call that is refused",
    ),
    (
        r"only used by|no Java test|no execution|graph tests|API-only|keyed by|never fire|"
        r"Schedule triggers|does not declare",
        "no execution of its own to check (parser, graph or API tests)",
    ),
    (
        r"contains outputs of|value contains '|\]\[|value path \[",
        "compares two taskruns' outputs in a notation of its own",
    ),
    (
        r"resume by themselves|turns the WARNING|SLA breached|zoned date-time|Kestra-specific|"
        r"expected$|of parent|with 2 taskruns$|starts with 'kestra://'|cannot be rendered",
        "prose restating what the state, the counts and the other notes check, or Kestra internals",
    ),
    (
        r"trigger|fire[sd]?\b|listener|flowId is one of",
        "about executions that Flow triggers start for other flows",
    ),
)


def informational_reason(segment: str) -> str | None:
    """Why ``segment`` (a note segment no form parses) cannot be checked by a machine."""
    for pattern, reason in INFORMATIONAL:
        if re.search(pattern, segment):
            return reason
    return None
