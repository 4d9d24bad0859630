"""The Kestra conformance corpus: manifest.yaml as typed cases, and ``run_case`` to run one.

One case per asserted outcome: the flow's default expectation (``allow-failure.yaml``) and each
variant (``allow-failure.yaml#variant1``, 1-based); the flow's ``then`` steps belong to its default
case. A case is asserted when its expected state is not ``unknown`` (or when one of its ``then``
steps asserts a state).

``run_case`` deploys the flow (and ``also_load``), applies the ``setup`` it understands, creates
the execution, waits for the expected first state with a bounded timeout and checks the state,
the taskrun count and the notes written in a regular form (see ``parse_note``). Notes the parser
does not understand are informational: counted, never failed. Nothing here knows about a
particular flow: every check comes from the manifest text.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import tempfile
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.core.errors import FlowNotFound

REPO_ROOT = Path(__file__).resolve().parents[2]
CASE_TIMEOUT = 20.0  # seconds to reach one expected state
CASE_BUDGET = 45.0  # seconds for a whole case (first run and its then steps)

TERMINAL_STATES = {"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "SKIPPED", "RETRIED"}
STATES = (
    "CREATED|QUEUED|RUNNING|PAUSED|RESTARTED|KILLING|RETRYING"
    "|SUCCESS|WARNING|FAILED|KILLED|CANCELLED|SKIPPED|RETRIED"
)


def corpus_root(repo_root: Path = REPO_ROOT) -> Path:
    """``<repo>/../shared/conformance/kestra`` (may not exist)."""
    return (repo_root / ".." / "shared" / "conformance" / "kestra").resolve()


# ---------------------------------------------------------------------------------------------
# the manifest as typed cases


@dataclass(frozen=True)
class Expected:
    state: str
    taskruns: int | None
    notes: tuple[str, ...]

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Expected:
        return cls(
            state=str(raw.get("state", "unknown")),
            taskruns=raw.get("taskruns"),
            notes=tuple(str(n) for n in raw.get("notes") or ()),
        )


@dataclass(frozen=True)
class ThenStep:
    action: str
    expected: Expected


@dataclass(frozen=True)
class Case:
    id: str
    file: str
    flow_id: str
    namespace: str
    needs: tuple[str, ...]
    types: tuple[str, ...]
    source_test: str | None
    expected: Expected
    inputs: dict[str, Any] = field(default_factory=dict)
    execution_labels: dict[str, str] = field(default_factory=dict)
    setup: str | None = None
    also_load: tuple[str, ...] = ()
    then: tuple[ThenStep, ...] = ()
    variant: int | None = None

    @property
    def asserted(self) -> bool:
        return self.expected.state != "unknown" or any(t.expected.state != "unknown" for t in self.then)


def load_cases(root: Path | None = None) -> list[Case]:
    """Every case of the manifest (asserted or not), in manifest order."""
    root = root or corpus_root()
    manifest = yaml.safe_load((root / "manifest.yaml").read_text())
    cases: list[Case] = []
    for entry in manifest["flows"]:
        base_inputs = dict(entry.get("inputs") or {})
        common: dict[str, Any] = {
            "file": entry["file"],
            "flow_id": entry["id"],
            "namespace": entry["namespace"],
            "needs": tuple(entry.get("needs") or ()),
            "types": tuple(entry.get("types") or ()),
            "execution_labels": {str(k): str(v) for k, v in (entry.get("execution_labels") or {}).items()},
            "also_load": tuple(entry.get("also_load") or ()),
        }
        cases.append(
            Case(
                id=entry["file"],
                source_test=entry.get("source_test"),
                expected=Expected.parse(entry["expected"]),
                inputs=base_inputs,
                setup=entry.get("setup"),
                then=tuple(
                    ThenStep(str(t["action"]), Expected.parse(t.get("expected") or {}))
                    for t in entry.get("then") or ()
                ),
                **common,
            )
        )
        for i, variant in enumerate(entry.get("variants") or (), start=1):
            given = dict(variant.get("inputs") or {})
            # '...': "otherwise as above" -> the default case's inputs, overridden by the variant's
            inputs = {**base_inputs, **given} if "..." in given else given
            cases.append(
                Case(
                    id=f"{entry['file']}#variant{i}",
                    source_test=variant.get("source_test"),
                    expected=Expected.parse(variant.get("expected") or {}),
                    inputs=inputs,
                    setup=variant.get("setup", entry.get("setup")),
                    variant=i,
                    **common,
                )
            )
    return cases


def asserted_cases(root: Path | None = None) -> list[Case]:
    return [c for c in load_cases(root) if c.asserted]


# ---------------------------------------------------------------------------------------------
# notes: a small, conservative parser. A check returns None when it holds, else a message.


@dataclass
class Observed:
    """What a check may look at: the execution (engine.execution.Execution) and its logs."""

    execution: Any
    logs: list[Any]

    @property
    def taskruns(self) -> list[Any]:
        return list(self.execution.taskruns.values())


Check = Callable[[Observed], "str | None"]


@dataclass
class ParsedNote:
    checks: list[tuple[str, Check]]
    informational: list[str]


_LIT = r"(?P<lit>'[^']*'|[^\s',;]+)"
_REMARK = r"(?:\s+\([^()]*(?:\([^()]*\)[^()]*)*\))?"  # a trailing "(explanation)"
_OP = r"(?P<op>==|!=|>=|<=|contains|starts with|ends with|matches)"
_PATH = r"(?P<path>[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*)"
_SUBJECT = (
    r"(?:(?P<first>first|last|the single) taskrun"
    r"|taskrun (?:index )?(?P<index>\d+)"
    r"|(?:taskrun |task )?'(?P<task>[^']+)')"
)


def _literal(text: str) -> Any:
    if text.startswith("'") and text.endswith("'") and len(text) >= 2:
        return text[1:-1]
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _get_path(data: Any, path: str) -> tuple[bool, Any]:
    for part in path.split("."):
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
        if re.search(r"<[^<>]+>", pattern):  # kestra:///a/<id>/b: a placeholder is any path segment
            pattern = "^" + "[^/]+".join(re.escape(p) for p in re.split(r"<[^<>]+>", pattern)) + "$"
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
        if self.first == "last":
            self.index = -1
        elif self.first in ("first", "the single"):
            self.index = 0
        self.text = m.group(0)

    def select(self, obs: Observed) -> tuple[list[Any], str | None]:
        trs = obs.taskruns
        if self.task is not None:
            found = [tr for tr in trs if tr.task_id == self.task]
            return found, None if found else f"no taskrun for task '{self.task}'"
        assert self.index is not None
        if -len(trs) <= self.index < len(trs):
            return [trs[self.index]], None
        return [], f"no taskrun at index {self.index} (only {len(trs)})"


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
        if _compare(actual, op, expected):
            return None
        return f"{subject.text}: outputs.{path} {op} {expected!r} is false (got {_short(actual)})"

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


def _usable(op: str, lit: str) -> bool:
    """A literal with a ``<placeholder>`` is only understood in ``matches`` (as a wildcard)."""
    return op == "matches" or not re.search(r"<[^<>]+>", lit)


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
    m = re.fullmatch(r"outputs of (?P<first>first )?'(?P<task>[^']+)'(?P<sep>:)? (?P<rest>.+)", seg)
    if m:
        subject = _Subject(re.fullmatch(_SUBJECT, f"'{m['task']}'"))  # type: ignore[arg-type]
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
    return None


def _strip_prefix(note: str) -> str | None:
    """Drop a descriptive ``prefix: `` (keep the note); None when the prefix names another run/test."""
    m = re.match(r"([^:']+): (.+)$", note)
    if not m:
        return note
    prefix = m.group(1)
    if " " not in prefix.strip() or re.match(r"run \d", prefix) or "#" in prefix:
        return None
    return m.group(2)


def _split(body: str, sep: str) -> list[str]:
    """Split on ``sep`` outside parentheses and quotes."""
    parts, depth, quoted, start, i = [], 0, False, 0, 0
    while i < len(body):
        ch = body[i]
        if ch == "'" and (i == 0 or not body[i - 1].isalnum() or quoted):
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
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
            parts = [_parse_segment(p, prev) for p in _split(seg, " and ")]
            if all(p is not None for p in parts):
                parsed = ([c for p in parts for c in p[0]], parts[-1][1])  # type: ignore[index]
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
    out = _parse_body(note)
    if out.informational:
        body = _strip_prefix(note)
        if body is not None and body != note:
            stripped = _parse_body(body)
            if len(stripped.informational) < len(out.informational):
                return stripped
    return out


# ---------------------------------------------------------------------------------------------
# running a case


@dataclass
class CaseResult:
    passed: bool
    reason: str
    checked_notes: int = 0
    informational_notes: int = 0
    seconds: float = 0.0
    details: list[str] = field(default_factory=list)


class CaseFailure(Exception):
    """The case cannot go on (deploy refused, setup unsupported, timeout...)."""


@contextmanager
def _patched_environ(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, old in saved.items():
            if old is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = old


def _secret_env(setup: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for m in re.finditer(
        r"SECRET_(\w+)\s*=\s*base64\('([^']*)'(?:\s*x\s*(\d+))?(,\s*line-wrapped)?\)", setup
    ):
        raw = (m.group(2) * int(m.group(3) or 1)).encode()
        value = base64.encodebytes(raw).decode() if m.group(4) else base64.b64encode(raw).decode()
        env[f"SECRET_{m.group(1)}"] = value
    return env


_FILE_LINES = re.compile(
    r".*text file of (\d+) lines: the numbers (\d+)\.\.(\d+), each left-padded with spaces to width (\d+)"
)


class _Runner:
    def __init__(self, case: Case, rt: Any, root: Path, tmp: Path, timeout: float) -> None:
        self.case = case
        self.rt = rt
        self.root = root
        self.tmp = tmp
        self.timeout = timeout
        self.deadline = time.monotonic() + CASE_BUDGET
        self.generated: dict[str, Any] = {}  # input values produced by the setup
        self.env: dict[str, str] = {}
        self.checked = 0
        self.informational = 0
        self.failures: list[str] = []
        self.execution_id: str | None = None
        self.stale_reads = 0
        self.create: Callable[..., Awaitable[None]] | None = None

    # -- inputs --------------------------------------------------------------------------------

    def _file(self, name: str, content: str) -> str:
        path = self.tmp / name
        path.write_text(content)
        return str(path)

    def materialize_inputs(self, flow: Any) -> dict[str, Any]:
        types = {inp.id: inp.type for inp in flow.inputs}
        given: dict[str, Any] = {}
        for key, value in self.case.inputs.items():
            if key == "...":
                continue
            if key in self.generated:
                given[key] = self.generated[key]
                continue
            if isinstance(value, str) and types.get(key) == "FILE":
                m = _FILE_LINES.match(value)
                if m:
                    lo, hi, width = int(m.group(2)), int(m.group(3)), int(m.group(4))
                    text = "\n".join(str(i).rjust(width) for i in range(lo, hi + 1)) + "\n"
                    given[key] = self._file(f"{key}.txt", text)
                elif value == "empty file":
                    given[key] = self._file(f"{key}.txt", "")
                elif value.startswith("<"):
                    given[key] = self._file(f"{key}.txt", "Hello World\n")
                else:
                    raise CaseFailure(f"input {key!r}: cannot produce the file {value!r}")
                continue
            if isinstance(value, str):
                m = re.fullmatch(r"'(.*)' x (\d+)(?: \(.*\))?", value)
                if m:
                    given[key] = m.group(1) * int(m.group(2))
                    continue
                if value == "<fresh unique name>":
                    given[key] = f"conformance-{uuid.uuid4().hex[:12]}"
                    continue
                if value.startswith("<") and value.endswith(">"):
                    raise CaseFailure(f"input {key!r}: cannot generate {value}")
            given[key] = value
        return given

    # -- setup ---------------------------------------------------------------------------------

    async def apply_setup(self) -> None:
        setup = self.case.setup
        if not setup:
            return
        from eventstore.store import JetStreamKV

        kv = JetStreamKV(self.rt.store)
        m = re.fullmatch(r"KV store of namespace (\S+) holds (\S+) = (.+)", setup)
        if m:
            await kv.set(m.group(1), m.group(2), yaml.safe_load(m.group(3)))
            return
        if setup == "empty KV store":
            for key in await kv.keys(self.case.namespace):
                await kv.delete(self.case.namespace, key)
            return
        if "SECRET_" in setup:
            self.env = _secret_env(setup)
            if self.env:
                return
        if re.fullmatch(r"no cache stored for the flow yet", setup):
            return  # a fresh store holds no WorkingDirectory cache
        m = re.fullmatch(r"first run flow '([^']+)' until (\w+); pass its execution id as input", setup)
        if m:
            targets = [k for k, v in self.case.inputs.items() if isinstance(v, str) and "execution" in v]
            if len(targets) != 1:
                raise CaseFailure(f"setup: cannot tell which input takes the execution id: {setup}")
            flow = await self.rt.flows.get(self.case.namespace, m.group(1))
            from engine.inputs import resolve_inputs

            eid = await self.rt.create_execution(flow, resolve_inputs(flow, {}))
            state = await self.wait_for(eid, {m.group(2)})
            if state.state != m.group(2):
                raise CaseFailure(f"setup: flow {m.group(1)!r} ended {state.state}, expected {m.group(2)}")
            self.generated[targets[0]] = eid
            return
        stored = r"scheduler running; trigger '([^']+)' of flow (\S+) stored as (disabled|enabled)"
        m = re.fullmatch(stored, setup)
        if m:
            from eventstore.triggerstate import TriggerKV, set_disabled

            kv = TriggerKV(self.rt.store)
            await kv.setup()
            await set_disabled(kv, self.case.namespace, m.group(2), m.group(1), m.group(3) == "disabled")
            self.trigger_kv = kv
            return
        raise CaseFailure(f"setup not supported: {setup}")

    # -- waiting -------------------------------------------------------------------------------

    def _budget(self) -> float:
        return max(0.5, min(self.timeout, self.deadline - time.monotonic()))

    async def wait_for(self, eid: str, states: set[str]) -> Any:
        """Poll until the execution is in one of ``states`` or terminal; CaseFailure on timeout."""
        limit = time.monotonic() + self._budget()
        while True:
            state = await self.rt.load_execution(eid)
            if state is not None and (state.state in states or state.state in TERMINAL_STATES):
                return state
            if time.monotonic() > limit:
                raise CaseFailure(self._timeout_message(state, "/".join(sorted(states))))
            await asyncio.sleep(0.05)

    async def wait_terminal(self, eid: str, on_start: Callable[[], Awaitable[Any]] | None = None) -> Any:
        budget = self._budget()
        try:
            state = await self.rt.wait_terminal(eid, on_start=on_start, timeout=budget)
        except TimeoutError:
            raise CaseFailure(self._timeout_message(await self.rt.load_execution(eid), "terminal")) from None
        if state.state not in TERMINAL_STATES:
            # Runtime.wait_terminal may wake on the live message before the stream read sees it
            self.stale_reads += 1
            state = await self.wait_for(eid, TERMINAL_STATES)
        return state

    def _timeout_message(self, state: Any, target: str) -> str:
        if state is None:
            return f"timeout: execution not created after {self.timeout:.0f} s"
        trs = ", ".join(f"{_taskrun_label(tr)}={tr.state}" for tr in state.taskruns.values())
        return f"timeout: still {state.state} (waiting for {target}); taskruns: {trs or 'none'}"

    # -- checks --------------------------------------------------------------------------------

    async def check(self, state: Any, expected: Expected, what: str) -> None:
        if state.state != expected.state:
            trs = ", ".join(f"{_taskrun_label(tr)}={tr.state}" for tr in state.taskruns.values())
            self.failures.append(f"{what}state {state.state}, expected {expected.state} (taskruns: {trs})")
        if expected.taskruns is not None and len(state.taskruns) != expected.taskruns:
            got = [tr.task_id for tr in state.taskruns.values()]
            self.failures.append(f"{what}{len(got)} taskruns, expected {expected.taskruns}: {got}")
        parsed = [parse_note(n) for n in expected.notes]
        self.informational += sum(len(p.informational) for p in parsed)
        checks = [c for p in parsed for c in p.checks]
        if not checks:
            return
        obs = Observed(state, await read_logs(self.rt, state.id))
        for text, check in checks:
            self.checked += 1
            try:
                problem = check(obs)
            except Exception as exc:  # a check must never crash the case
                problem = f"{type(exc).__name__}: {exc}"
            if problem:
                self.failures.append(f"{what}note {text!r}: {problem}")

    # -- the case ------------------------------------------------------------------------------

    async def deploy(self) -> Any:
        await deploy_corpus(self.rt, self.root)
        for other in self.case.also_load:
            path = self.root / "flows" / other
            await self.rt.flows.deploy(path.read_text(), file=str(path))
        path = self.root / "flows" / self.case.file
        return await self.rt.flows.deploy(path.read_text(), file=str(path))

    async def run(self) -> None:
        from engine.core.errors import EngineError, FlowValidationError, InputError
        from engine.core.inputs import secret_input_ids
        from engine.ids import new_execution_id
        from engine.inputs import resolve_inputs

        expected = self.case.expected
        rejected = expected.state == "rejected"
        try:
            flow = await self.deploy()
        except FlowValidationError as exc:
            if rejected:
                return
            raise CaseFailure(f"deploy refused: {_one_line(exc)}") from None
        await self.apply_setup()
        with _patched_environ(self.env):
            try:
                if self.case.inputs or rejected:
                    inputs = resolve_inputs(flow, self.materialize_inputs(flow))
                else:
                    inputs = _inputs_without_validation(flow)
            except InputError as exc:
                if rejected:
                    return
                raise CaseFailure(f"inputs refused: {_one_line(exc)}") from None
            if rejected:
                raise CaseFailure("expected the flow or its inputs to be rejected, but they were accepted")
            eid = self.execution_id = new_execution_id()

            async def create(execution_id: str = eid) -> None:
                await self.rt.create_execution(
                    flow,
                    inputs,
                    labels=self.case.execution_labels or None,
                    execution_id=execution_id,
                    secret_inputs=tuple(sorted(secret_input_ids(flow))),
                )

            self.create = create

            if any(t == FLOW_TRIGGER for t in self.case.types):
                state = await self.run_via_trigger(flow)
                await self.check(state, expected, "")
                return
            parent = self._parent_flow()
            if parent is not None:
                state = await self.run_via_parent(parent)
                await self.check(state, expected, "")
                return

            kill_when_running = any(re.match(r"run until RUNNING, then kill", n) for n in expected.notes)
            try:
                if expected.state in TERMINAL_STATES and not kill_when_running:
                    state = await self.wait_terminal(eid, on_start=create)
                else:
                    await create()
                    if kill_when_running:
                        await self.wait_for(eid, {"RUNNING"})
                        await self._send(eid, "kill")
                        state = await self.wait_terminal(eid)
                    elif expected.state == "unknown":
                        state = await self.wait_terminal(eid)
                    else:
                        state = await self.wait_for(eid, {expected.state})
            except EngineError as exc:
                raise CaseFailure(f"{type(exc).__name__}: {_one_line(exc)}") from None
            if expected.state != "unknown":
                await self.check(state, expected, "")
            elif expected.taskruns is not None:
                await self.check(state, Expected(state.state, expected.taskruns, expected.notes), "")
            for i, step in enumerate(self.case.then, start=1):
                eid = await self.then(eid, i, step)

    def _parent_flow(self) -> str | None:
        """``run as subflow of X`` / ``run as child of X``: the asserted execution is X's child."""
        for note in self.case.expected.notes:
            m = re.match(r"run as (?:a )?(?:subflow|child|grand-child) of ([\w.-]+)", note)
            if m:
                return m.group(1)
        return None

    def _upstream_flows(self, listener: Any) -> list[tuple[str, str]]:
        """The flows whose executions should start the listener: the case's `also_load`, else the
        flows its Flow trigger names, else a trigger-less flow of the namespace its condition names."""
        if self.case.also_load:
            out = []
            for name in self.case.also_load:
                data = yaml.safe_load((self.root / "flows" / name).read_text())
                out.append((str(data["namespace"]), str(data["id"])))
            return out
        named: list[tuple[str, str]] = []
        namespaces: list[str] = []
        for trigger in listener.triggers:
            if trigger.type != FLOW_TRIGGER:
                continue
            for cond in trigger.props.get("conditions") or []:
                if not isinstance(cond, dict):
                    continue
                if cond.get("flowId"):
                    named.append((str(cond.get("namespace", listener.namespace)), str(cond["flowId"])))
                elif str(cond.get("type", "")).endswith("ExecutionNamespace") and cond.get("namespace"):
                    namespaces.append(str(cond["namespace"]))
        if named:
            return named
        for ns in namespaces:
            for path in sorted((self.root / "flows").glob("*.y*ml")):
                data = yaml.safe_load(path.read_text())
                if isinstance(data, dict) and data.get("namespace") == ns and not data.get("triggers"):
                    return [(ns, str(data["id"]))]
        return []

    async def run_via_trigger(self, listener: Any) -> Any:
        """Run the upstream flows, then follow the listener execution their ends start."""
        from engine.core import events as ev
        from engine.ids import new_execution_id

        upstream = self._upstream_flows(listener)
        if not upstream:
            raise CaseFailure("no upstream flow found for the listener's Flow trigger")
        started: list[str] = []

        async def on_step(msg: Any) -> None:
            for event in ev.decode(msg.data):
                if (
                    isinstance(event, ev.ExecutionCreated)
                    and event.flow_id == listener.id
                    and event.namespace == listener.namespace
                ):
                    started.append(event.execution_id)

        sub = await self.rt.store.nc.subscribe("ev.>", cb=on_step)
        try:
            for ns, fid in upstream:
                try:
                    flow = await self.rt.flows.get(ns, fid)
                except FlowNotFound:
                    continue  # a condition may name a flow the corpus does not have
                eid = new_execution_id()
                await self.rt.wait_terminal(
                    eid,
                    on_start=lambda f=flow, e=eid: self.rt.create_execution(
                        f, _inputs_without_validation(f), execution_id=e
                    ),
                    timeout=self.timeout,
                )
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            while not started and loop.time() < deadline:
                await asyncio.sleep(0.05)
        finally:
            await sub.unsubscribe()
        if not started:
            names = ", ".join(f"{ns}.{fid}" for ns, fid in upstream)
            raise CaseFailure(f"the Flow trigger did not start {listener.id} after {names} ended")
        self.execution_id = started[0]
        return await self.wait_terminal(started[0])

    async def run_via_parent(self, parent_id: str) -> Any:
        """Run the parent flow's default case, then find this flow's execution among its descendants."""
        from engine.inputs import resolve_inputs

        cases = [c for c in load_cases(self.root) if c.flow_id == parent_id and c.variant is None]
        if not cases:
            raise CaseFailure(f"parent flow {parent_id!r} is not in the corpus")
        parent_case = cases[0]
        parent_runner = _Runner(parent_case, self.rt, self.root, self.tmp, self.timeout)
        parent_runner.deadline = self.deadline
        flow = await parent_runner.deploy()
        inputs = (
            resolve_inputs(flow, parent_runner.materialize_inputs(flow))
            if parent_case.inputs
            else _inputs_without_validation(flow)
        )
        eid = await self.rt.create_execution(flow, inputs, labels=parent_case.execution_labels or None)
        self.execution_id = eid
        try:
            parent_state = await self.wait_terminal(eid)
        except CaseFailure as exc:
            raise CaseFailure(f"parent {parent_id}: {exc}") from None
        queue, seen = [parent_state], 0
        while queue and seen < 500:
            ex = queue.pop(0)
            seen += 1
            children = [tr.subflow_execution for tr in ex.taskruns.values() if tr.subflow_execution]
            # ForEachItem's `<id>_items` taskrun starts one child execution per batch.
            children += [
                c for tr in ex.taskruns.values() if tr.task_id.endswith("_items") for c in tr.items or []
            ]
            for child_id in children:
                child = await self.rt.load_execution(child_id)
                if child is None:
                    continue
                if child.flow_id == self.case.flow_id and child.namespace == self.case.namespace:
                    self.execution_id = child.id
                    return await self.wait_terminal(child.id)
                queue.append(child)
        trs = ", ".join(f"{_taskrun_label(tr)}={tr.state}" for tr in parent_state.taskruns.values())
        raise CaseFailure(
            f"run as a child of {parent_id}: no execution of {self.case.flow_id} was started "
            f"(parent ended {parent_state.state}; taskruns: {trs})"
        )

    async def _send(self, eid: str, what: str, inputs: dict[str, Any] | None = None) -> None:
        from engine.clock import utcnow
        from engine.core import events as ev

        resume = getattr(self.rt, "resume", None)
        if what == "resume" and resume is not None:
            await resume(eid, inputs or {})
            return
        kill = getattr(self.rt, "kill", None)
        if what == "kill" and kill is not None:
            await kill(eid)
            return
        item: Any = (
            ev.KillRequested(date=utcnow(), reason="conformance: kill")
            if what == "kill"
            else ev.Resume(date=utcnow(), inputs=inputs or {})
        )
        await self.rt.store.send_input(eid, item)

    async def then(self, eid: str, i: int, step: ThenStep) -> str:
        """One follow-up action; returns the execution later steps act on."""
        action = step.action
        what = f"then[{i}] ({action}): "
        resume_inputs = self._resume_inputs(action, eid)
        if resume_inputs is not None:
            # each resume test starts from a PAUSED execution: a new one if an earlier step used it
            eid = await self._paused(eid)
            resume_inputs = self._resume_inputs(action, eid)
        if step.expected.state == "rejected":
            await self.then_rejected(eid, step)
            return eid
        before = await self.rt.load_execution(eid)
        n_hist = len(before.histories) if before is not None else 0
        target = eid
        replay = re.fullmatch(r"replay from (?:the )?taskrun (?:of task )?'([^']+)'(?: \(.*\))?", action)
        try:
            if action.startswith("wait ("):
                pass  # nothing to do but wait
            elif resume_inputs is not None:
                await self._send(eid, "resume", resume_inputs)
            elif re.fullmatch(r"restart the execution(?: \(.*\))?", action) and hasattr(self.rt, "restart"):
                await self.rt.restart(eid)
            elif replay and hasattr(self.rt, "replay"):
                target = await self.rt.replay(eid, taskrun=replay.group(1))
                self.execution_id = target
                n_hist = 0
            else:
                self.failures.append(f"then: {action} not supported")
                return eid
        except Exception as exc:  # an engine refusal is this step's failure
            self.failures.append(f"{what}{type(exc).__name__}: {_one_line(exc)}")
            return eid
        try:
            state = await self.wait_changed_terminal(target, n_hist)
        except CaseFailure as exc:
            self.failures.append(f"{what}{exc}")
            return target
        await self.check(state, step.expected, what)
        return target

    async def wait_changed_terminal(self, eid: str, n_hist: int) -> Any:
        """Wait for a terminal state reached after the ``n_hist`` first state histories."""
        limit = time.monotonic() + self._budget()
        while True:
            state = await self.rt.load_execution(eid)
            if state is not None and len(state.histories) > n_hist and state.state in TERMINAL_STATES:
                return state
            if time.monotonic() > limit:
                raise CaseFailure(self._timeout_message(state, "terminal"))
            await asyncio.sleep(0.05)

    async def _paused(self, eid: str) -> str:
        state = await self.rt.load_execution(eid)
        if state is None or state.state == "PAUSED" or self.create is None:
            return eid
        from engine.ids import new_execution_id

        fresh = new_execution_id()
        await self.create(fresh)
        self.execution_id = fresh
        await self.wait_for(fresh, {"PAUSED"})
        return fresh

    async def then_rejected(self, eid: str, step: ThenStep) -> None:
        """A resume that must be refused needs a synchronous API (``Runtime.resume``) to refuse it."""
        from engine.core.errors import EngineError

        inputs = self._resume_inputs(step.action, eid)
        resume = getattr(self.rt, "resume", None)
        if inputs is None or resume is None:
            why = "" if inputs is None else " (no synchronous Runtime.resume to refuse it)"
            self.failures.append(f"then: {step.action} not supported{why}")
            return
        state = await self.rt.load_execution(eid)
        if state is None or state.state != "PAUSED":
            got = state.state if state is not None else "missing"
            self.failures.append(f"then: {step.action}: the execution is {got}, not PAUSED")
            return
        try:
            await resume(eid, inputs)
        except EngineError:
            return
        self.failures.append(f"then: {step.action}: expected the resume to be refused, it was accepted")

    def _resume_inputs(self, action: str, eid: str) -> dict[str, Any] | None:
        """The inputs of a resume action, or None when ``action`` is not a resume."""
        plain = r"resume without inputs(?: \(.*\))?|mark taskrun '[^']+' as RUNNING(?: \(.*\))?"
        if re.fullmatch(plain, action):
            return {}
        m = re.fullmatch(r"resume with onResume inputs: (.+)", action)
        if not m:
            return None
        inputs: dict[str, Any] = {}
        for item in m.group(1).split(", "):
            kv = re.fullmatch(r"(\w+)=(?:'([^']*)'|(<file whose content is the execution id>))", item)
            if not kv:
                return None
            inputs[kv.group(1)] = self._file(f"resume-{kv.group(1)}.txt", eid) if kv.group(3) else kv.group(2)
        return inputs

    async def cleanup(self) -> None:
        """Kill what is still running so it does not load the next cases."""
        if self.execution_id is None:
            return
        try:
            state = await self.rt.load_execution(self.execution_id)
            if state is not None and state.state not in TERMINAL_STATES:
                await self._send(self.execution_id, "kill")
        except Exception:  # best effort
            pass


FLOW_TRIGGER = "io.kestra.plugin.core.trigger.Flow"
_deployed: weakref.WeakSet[Any] = weakref.WeakSet()


async def deploy_corpus(rt: Any, root: Path) -> None:
    """Deploy every corpus flow once per Runtime, as Kestra's tests load the whole directory
    (a Subflow may call any of them). Flows the engine refuses are skipped here: the case that
    runs one reports the refusal."""
    from engine.core.errors import EngineError

    if rt in _deployed:
        return
    _deployed.add(rt)
    for path in sorted((root / "flows").iterdir()):
        if path.suffix in (".yaml", ".yml"):
            with suppress(EngineError):
                await rt.flows.deploy(path.read_text(), file=str(path))


def _inputs_without_validation(flow: Any) -> dict[str, Any]:
    """What Kestra's tests get with ``runOne(namespace, flowId)`` (inputs == null): no input is
    required, a missing one is absent, defaults apply (Execution.newExecution, RunVariables)."""
    import msgspec

    from engine.inputs import resolve_inputs

    relaxed = msgspec.structs.replace(
        flow, inputs=[msgspec.structs.replace(i, required=False) for i in flow.inputs]
    )
    inputs = resolve_inputs(relaxed, {})
    for inp in flow.inputs:
        *parents, leaf = inp.id.split(".")
        node: Any = inputs
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and node.get(leaf, 0) is None:
            del node[leaf]
    return inputs


async def read_logs(rt: Any, execution_id: str) -> list[Any]:
    """The execution's log lines (falls back to plain stream reads if the direct read fails)."""
    try:
        return list(await rt.store.read_logs(execution_id))
    except Exception:
        pass
    from nats.js.errors import NotFoundError

    from eventstore import subjects as S

    lines, seq = [], 1
    while True:
        try:
            msg = await rt.store.js.get_msg(S.LOGS, seq=seq, subject=S.logs(execution_id), next=True)
        except NotFoundError:
            return lines
        lines.append(rt.store.decode_log(msg.data))
        seq = int(msg.seq or 0) + 1


def _one_line(exc: BaseException) -> str:
    return " | ".join(line.strip() for line in str(exc).splitlines() if line.strip())[:600]


async def run_case(
    case: Case, rt: Any, timeout: float = CASE_TIMEOUT, root: Path | None = None
) -> CaseResult:
    """Run one case on a started Runtime ``rt`` (its executor and worker must be running)."""
    from engine.core.errors import EngineError

    started = time.monotonic()
    root = root or corpus_root()
    with tempfile.TemporaryDirectory(prefix="conformance-") as tmp:
        runner = _Runner(case, rt, root, Path(tmp), timeout)
        try:
            await runner.run()
        except CaseFailure as exc:
            runner.failures.insert(0, str(exc))
        except EngineError as exc:
            runner.failures.insert(0, f"{type(exc).__name__}: {_one_line(exc)}")
        finally:
            await runner.cleanup()
    flows_dir = str(root / "flows") + os.sep
    failures = [f.replace(flows_dir, "") for f in runner.failures]
    return CaseResult(
        passed=not failures,
        reason="; ".join(failures)[:2000],
        checked_notes=runner.checked,
        informational_notes=runner.informational,
        seconds=time.monotonic() - started,
        details=failures,
    )
