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
from notes import Observed, _taskrun_label, parse_note

from engine.core.errors import FlowNotFound

REPO_ROOT = Path(__file__).resolve().parents[2]
CASE_TIMEOUT = 20.0  # seconds to reach one expected state
CASE_BUDGET = 45.0  # seconds for a whole case (first run and its then steps)

TERMINAL_STATES = {"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "SKIPPED", "RETRIED"}


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
        """Does the manifest assert a state for it (the first run or a ``then`` step)?"""
        return self.expected.state != "unknown" or any(t.expected.state != "unknown" for t in self.then)

    @property
    def checked(self) -> bool:
        """Does it assert anything a machine can check: a state, a taskrun count, a note we parse?"""
        if self.asserted or self.expected.taskruns is not None:
            return True
        return any(parse_note(n).checks for n in self.expected.notes)

    def assertions(self) -> tuple[int, int]:
        """(assertions a machine checks, informational note segments) of the case, from the text."""
        checked, informational = 0, 0
        for expected in (self.expected, *(t.expected for t in self.then)):
            checked += int(expected.state != "unknown") + int(expected.taskruns is not None)
            for note in expected.notes:
                parsed = parse_note(note)
                checked += len({text for text, _ in parsed.checks})
                informational += len(parsed.informational)
        return checked, informational


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
    """The cases that assert something a machine can check (``Case.checked``)."""
    return [c for c in load_cases(root) if c.checked]


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
    def __init__(
        self,
        case: Case,
        rt: Any,
        root: Path,
        tmp: Path,
        timeout: float,
        triggers_durable: str | None = None,
    ) -> None:
        self.case = case
        self.rt = rt
        self.triggers_durable = triggers_durable  # the step consumers of the running trigger service
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
        self.root_execution: Any = None  # the execution a case run as a child started from
        self.upstream: dict[str, str] = {}  # flow id -> the execution a Flow trigger case ran first
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

    async def steps_handled(self) -> None:
        """Until the trigger service has handled every execution step stored so far (and sent the
        creations they make): a Flow trigger then has seen each upstream end, in the order they
        ended, and a window holds what every earlier case's executions put in it."""
        if self.triggers_durable is None:
            return
        from eventstore.triggerfeeds import steps_backlog

        limit = time.monotonic() + self._budget()
        while (held := await steps_backlog(self.rt.store, self.triggers_durable)) != 0:
            if time.monotonic() > limit:
                what = "has no step consumer" if held is None else f"still holds {held} step(s)"
                raise CaseFailure(f"timeout: the trigger service ({self.triggers_durable}) {what}")
            await asyncio.sleep(0.02)

    def _timeout_message(self, state: Any, target: str) -> str:
        if state is None:
            return f"timeout: execution not created after {self.timeout:.0f} s"
        trs = ", ".join(f"{_taskrun_label(tr)}={tr.state}" for tr in state.taskruns.values())
        return f"timeout: still {state.state} (waiting for {target}); taskruns: {trs or 'none'}"

    # -- checks --------------------------------------------------------------------------------

    async def check(
        self,
        state: Any,
        expected: Expected,
        what: str,
        chain: list[Any] | None = None,
        executions: dict[str, Any] | None = None,
        run: int = 1,
    ) -> None:
        """``state``: the execution the expectation is about (a retried one's last try)."""
        if expected.state != "unknown":
            self.checked += 1
            if state.state != expected.state:
                trs = ", ".join(f"{_taskrun_label(tr)}={tr.state}" for tr in state.taskruns.values())
                self.failures.append(
                    f"{what}state {state.state}, expected {expected.state} (taskruns: {trs})"
                )
        if expected.taskruns is not None:
            self.checked += 1
            if len(state.taskruns) != expected.taskruns:
                got = [tr.task_id for tr in state.taskruns.values()]
                self.failures.append(f"{what}{len(got)} taskruns, expected {expected.taskruns}: {got}")
        parsed = [p for p in (parse_note(n) for n in expected.notes) if p.run == run]
        self.informational += sum(len(p.informational) for p in parsed)
        checks = [c for p in parsed for c in p.checks]
        if not checks:
            return
        obs = Observed(
            state,
            await read_logs(self.rt, state.id),
            chain=chain or [state],
            children=await self.descendants(state),
            flow=await self._flow_of(state),
            root=self.root_execution or state,
            upstream=dict(self.upstream),
            executions=executions or {},
        )
        segments = set()
        for text, check in checks:
            segments.add(text)
            try:
                problem = check(obs)
            except Exception as exc:  # a check must never crash the case
                problem = f"{type(exc).__name__}: {exc}"
            if problem:
                self.failures.append(f"{what}note {text!r}: {problem}")
        self.checked += len(segments)

    async def _flow_of(self, state: Any) -> Any:
        try:
            return await self.rt.flows.get(state.namespace, state.flow_id, state.flow_revision)
        except Exception:  # a check that needs the flow says so
            return None

    async def descendants(self, state: Any, limit: int = 500) -> list[Any]:
        """The executions ``state`` started (Subflow, ForEachItem batches) and theirs, terminal ones
        waited for (a child's end reaches its parent before the child's own last read)."""
        out: list[Any] = []
        queue = [state]
        while queue and len(out) < limit:
            ex = queue.pop(0)
            ids = [tr.subflow_execution for tr in ex.taskruns.values() if tr.subflow_execution]
            ids += [c for tr in ex.taskruns.values() if tr.task_id.endswith("_items") for c in tr.items or []]
            for child_id in dict.fromkeys(ids):
                child = await self.rt.load_execution(child_id)
                if child is None:
                    continue
                if child.state not in TERMINAL_STATES:
                    with suppress(CaseFailure):
                        child = await self.wait_for(child_id, TERMINAL_STATES)
                out.append(child)
                queue.append(child)
        return out

    async def later_runs(self, create: Callable[..., Awaitable[None]]) -> None:
        """Notes about "run 2", "run 3" (same inputs): the flow runs again, each run checked in turn."""
        from engine.ids import new_execution_id

        runs = sorted({p.run for p in (parse_note(n) for n in self.case.expected.notes)} - {1})
        for n in runs:
            eid = self.execution_id = new_execution_id()
            await create(eid)
            state = await self.wait_for(eid, TERMINAL_STATES)
            notes = Expected("unknown", None, self.case.expected.notes)
            await self.check(state, notes, f"run {n}: ", run=n)

    async def run_two(self, create: Callable[..., Awaitable[None]]) -> None:
        """Notes about "execution 1" and "execution 2" (a flow's concurrency limit): start one, once it
        runs start the other, wait for both; the case's expectation is the first one's."""
        from engine.ids import new_execution_id

        first = self.execution_id or new_execution_id()
        await create(first)
        await self.wait_for(first, {"RUNNING", "PAUSED"})
        second = new_execution_id()
        await create(second)
        two = await self.wait_for(second, TERMINAL_STATES)
        self.execution_id = first
        one = await self.wait_for(first, TERMINAL_STATES)
        await self.check(one, self.case.expected, "", executions={"1": one, "2": two})

    async def follow_retries(self, state: Any) -> tuple[Any, list[Any]]:
        """A try that ended RETRIED is followed by the next one (retry behavior CREATE_NEW_EXECUTION):
        every try, until the one that ends otherwise."""
        from engine.core.factory import retry_id

        chain = [state]
        while state.state == "RETRIED" and len(chain) < 100:
            next_id = retry_id(state.id)
            self.execution_id = next_id
            limit = time.monotonic() + self._budget()
            while await self.rt.load_execution(next_id) is None:
                if time.monotonic() > limit:
                    raise CaseFailure(f"try {len(chain)} ended RETRIED and no next try was created")
                await asyncio.sleep(0.05)
            state = await self.wait_for(next_id, TERMINAL_STATES)
            chain.append(state)
        return state, chain

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

            if any(re.search(r"\bexecution 2\b", n) for n in expected.notes):
                await self.run_two(create)
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
            first = state
            if state.state in TERMINAL_STATES:
                state, chain = await self.follow_retries(state)
            else:
                chain = [state]
            await self.check(state, expected, "", chain)
            eid = first.id
            await self.later_runs(create)
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
        # Listener executions by the upstream execution that started them: one started by an
        # execution of another case (or by another listener) is not this case's.
        started: list[tuple[str, str | None]] = []
        seen = asyncio.Event()

        async def on_step(msg: Any) -> None:
            for event in ev.decode(msg.data):
                if (
                    isinstance(event, ev.ExecutionCreated)
                    and event.flow_id == listener.id
                    and event.namespace == listener.namespace
                ):
                    started.append((event.execution_id, (event.trigger or {}).get("executionId")))
                    seen.set()

        def ours() -> list[str]:
            ran = set(self.upstream.values())
            return [eid for eid, by in started if by in ran]

        sub = await self.rt.store.nc.subscribe("ev.>", cb=on_step)
        try:
            await self.steps_handled()  # what earlier cases ran is in the windows before this case runs
            for ns, fid in upstream:
                try:
                    flow = await self.rt.flows.get(ns, fid)
                except FlowNotFound:
                    continue  # a condition may name a flow the corpus does not have
                eid = new_execution_id()
                self.upstream[fid] = eid
                await self.rt.wait_terminal(
                    eid,
                    on_start=lambda f=flow, e=eid: self.rt.create_execution(
                        f, _inputs_without_validation(f), execution_id=e
                    ),
                    timeout=self.timeout,
                )
                # Its end handled before the next upstream runs, as Kestra's tests run them one
                # after the other: a window completes on the step of the last one.
                await self.steps_handled()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            while not ours() and loop.time() < deadline:
                seen.clear()
                with suppress(TimeoutError):
                    await asyncio.wait_for(seen.wait(), deadline - loop.time())
        finally:
            await sub.unsubscribe()
        started_here = ours()
        if not started_here:
            names = ", ".join(f"{ns}.{fid}" for ns, fid in upstream)
            raise CaseFailure(f"the Flow trigger did not start {listener.id} after {names} ended")
        self.execution_id = started_here[0]
        return await self.wait_terminal(started_here[0])

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
        self.root_execution = parent_state
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
    case: Case,
    rt: Any,
    timeout: float = CASE_TIMEOUT,
    root: Path | None = None,
    triggers_durable: str | None = None,
) -> CaseResult:
    """Run one case on a started Runtime ``rt`` (its executor and worker must be running).

    ``triggers_durable``: the step consumer of the trigger service running next to them; a Flow
    trigger case then waits for it to have handled every step before each upstream run and after
    (without, it only waits for the listener's execution to appear)."""
    from engine.core.errors import EngineError

    started = time.monotonic()
    root = root or corpus_root()
    with tempfile.TemporaryDirectory(prefix="conformance-") as tmp:
        runner = _Runner(case, rt, root, Path(tmp), timeout, triggers_durable)
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
