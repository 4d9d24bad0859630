"""Record the golden histories the replayer checks (tests/replay/test_replay.py).

Runs conformance cases (and the flows of tests/replay/flows/) on an embedded server with the
executor's ``on_step`` hook on, and writes one JSON-lines file per execution under
tests/replay/histories/: a header (execution id, case, the source of every flow revision it
used), then one line per executor step (``engine.core.replay.Step``).

    python -m tests.replay.record                  # the chosen set (CASES), histories/ rewritten
    python -m tests.replay.record -k retry -o /tmp/h  # cases whose id contains "retry", elsewhere
    python -m tests.replay.record --all -o /tmp/h  # every asserted case (to choose from)

Recording runs real workers and real time: the histories differ from one recording to the next
(ids, dates); each one replays exactly as it was recorded.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "conformance"))

import msgspec  # noqa: E402
from corpus import FLOW_TRIGGER, Case, asserted_cases, corpus_root, run_case  # noqa: E402

from engine.core import events as ev  # noqa: E402
from engine.core.execution import Execution, clone, evolve  # noqa: E402
from engine.core.replay import FORMAT, FlowKey, Header, Step, dump, recorded_events  # noqa: E402

HISTORIES = HERE / "histories"
OWN_FLOWS = HERE / "flows"

# The chosen cases, by what they cover. Flow-triggered executions are left out (a listener of
# the corpus fires on executions of other cases: its histories would change with the set).
CASES = (
    # errors branches, allow-failure, Fail on a condition
    "allow-failure.yaml",
    "allow-failure.yaml#variant1",
    "sequential-with-global-errors.yaml",
    "sequential-with-local-errors.yaml",
    "fail-on-switch.yaml",
    # Dag, ForEach, EachParallel, Switch, If, runIf, loops in loops
    "dag.yaml",
    "each-parallel.yaml",
    "each-parallel-nested.yaml",
    "each-sequential-nested.yaml",
    "each-switch.yaml",
    "foreach-concurrent.yaml",
    "switch.yaml",
    "switch.yaml#variant2",
    "if.yaml",
    "if-condition.yaml#variant1",
    "task-runif.yml",
    # flow outputs
    "flow-with-outputs.yml",
    "flow-with-outputs-failed.yml",
    "flow-with-array-outputs.yml",
    # subflows (with labels, retries, allow-failure) and ForEachItem
    "subflow-parent.yaml",
    "task-flow.yaml",
    "task-flow-inherited-labels.yaml",
    "retry-subflow.yaml",
    "task-allow-failure-executable-flow.yml",
    "task-allow-failure-executable-foreachitem.yml",
    # pauses and resumes (delays, timeouts, onResume inputs, the Resume task)
    "pause.yaml",
    "pause-delay.yaml",
    "pause-timeout.yaml",
    "pause_on_resume.yaml",
    "each-parallel-pause.yml",
    "resume-execution.yaml",
    # retries (task and flowable, constant, exponential, random, new execution)
    "retry-success.yaml",
    "retry-failed.yaml",
    "retry-expo.yaml",
    "retry-random.yaml",
    "retry-flowable-parallel.yaml",
    "retry-new-execution-task-attempts.yml",
    "retry-failed-flow-attempts.yml",
    # restarts and replays
    "restart_last_failed.yaml",
    "restart_local_errors.yaml",
    "restart_pause_last_failed.yaml",
    "restart-each.yaml",
    "restart_with_inputs.yaml",
    # concurrency limits, SLA, WaitFor, working directories, labels, kill, state store
    "flow-concurrency-queue.yml",
    "flow-concurrency-cancel.yml",
    "sla-max-duration-fail.yaml",
    "waitfor.yaml",
    "waitfor-max-iterations.yaml",
    "working-directory.yaml",
    "working-directory-each.yaml",
    "labels-update-task.yml",
    "sleep.yml",
    "state.yaml",
    "full.yaml",
)

# The flows of tests/replay/flows/ run as cases of their own: now(), uuid() and randomInt() in
# decisions (the corpus has none), and errors, finally and afterExecution branches.
OWN_RUNS = ("step-functions", "errors-finally")
OWN_NAMESPACE = "engine.replay"


@dataclass
class Recorder:
    """The executor's ``on_step`` hook: keeps every step, by execution, with the case it ran in."""

    case: str = ""
    steps: dict[str, list[Step]] = field(default_factory=dict)
    cases: dict[str, str] = field(default_factory=dict)
    states: dict[str, Execution] = field(default_factory=dict)  # the fold of what was recorded
    flows: dict[str, set[FlowKey]] = field(default_factory=dict)

    def __call__(self, eid: str, step: Step) -> None:
        state = self.states.get(eid)
        sources: dict[str, Execution] = {}
        for item in step.inputs:
            if state is None and isinstance(item, ev.ReplayRequested):
                source = self.states.get(item.source_execution_id)
                if source is not None:
                    sources[item.source_execution_id] = clone(source)
        if sources:  # the replayer cannot load them: they go with the step, as they were then
            step = msgspec.structs.replace(step, sources=sources)
        self.steps.setdefault(eid, []).append(step)
        self.cases.setdefault(eid, self.case)
        for event in recorded_events(step):
            state = evolve(state, event)
        if state is not None:
            self.states[eid] = state
            key = (state.namespace, state.flow_id, state.flow_revision)
            self.flows.setdefault(eid, set()).add(key)


def file_name(case: str, n: int, flow_id: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", re.sub(r"\.ya?ml", "", case).replace("replay:", ""))
    return f"{slug}.{n}.{flow_id}.jsonl"


async def run_own_flows(rt: object, recorder: Recorder, timeout: float = 30.0) -> None:
    from engine.runtime import Runtime

    assert isinstance(rt, Runtime)
    for path in sorted(OWN_FLOWS.glob("*.yaml")):
        await rt.flows.deploy(path.read_text(), file=str(path))
    for flow_id in OWN_RUNS:
        recorder.case = f"replay:{flow_id}"
        flow = await rt.flows.get(OWN_NAMESPACE, flow_id)
        eid = await rt.create_execution(flow, {})
        state = await rt.wait_terminal(eid, timeout=timeout)
        print(f"RAN  {recorder.case:<58} {state.state}", file=sys.stderr, flush=True)


async def record_cases(cases: list[Case], own: bool, out: Path) -> list[Path]:
    from engine.executor import Executor
    from engine.runtime import Runtime
    from triggers.service import TriggerService

    recorder = Recorder()
    root = corpus_root()
    with tempfile.TemporaryDirectory(prefix="replay-record-") as home:
        os.environ["ENGINE_HOME"] = home
        os.environ.pop("ENGINE_NATS_URL", None)
        async with Runtime(home=Path(home)) as rt:
            executor = Executor(rt.store, rt.flows, rt.expressions, on_step=recorder)
            roles = [
                asyncio.create_task(executor.run()),
                asyncio.create_task(rt.worker(concurrency=32).run()),
                asyncio.create_task(TriggerService(rt, schedules=False).run()),
            ]
            try:
                for case in cases:
                    recorder.case = case.id
                    result = await run_case(case, rt, root=root)
                    mark = "PASS" if result.passed else "FAIL"
                    print(f"{mark} {case.id:<58} {result.seconds:5.1f}s", file=sys.stderr, flush=True)
                if own:
                    await run_own_flows(rt, recorder)
                await asyncio.sleep(1.0)  # the last notifications (a child's end) reach their parents
            finally:
                for task in roles:
                    task.cancel()
                await asyncio.gather(*roles, return_exceptions=True)
            keep = {c.id for c in cases if "flow-trigger" in c.needs}
            return await write(recorder, rt, out, keep_triggered=keep)


def flow_triggered(steps: list[Step]) -> bool:
    """Started by a Flow trigger (its type named old style or new)?"""
    first = steps[0].inputs[0] if steps and steps[0].inputs else None
    trigger = first.trigger if isinstance(first, ev.ExecutionCreated) else None
    kind = str((trigger or {}).get("type", ""))
    return bool(kind.rsplit(".", 1)[-1] == str(FLOW_TRIGGER).rsplit(".", 1)[-1])


async def write(recorder: Recorder, rt: object, out: Path, keep_triggered: set[str]) -> list[Path]:
    from engine.runtime import Runtime

    assert isinstance(rt, Runtime)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    counters: dict[str, int] = {}
    for eid, steps in recorder.steps.items():
        case = recorder.cases[eid]
        if case not in keep_triggered and flow_triggered(steps):
            continue
        flows: list[tuple[str, str, int, str]] = []
        for ns, fid, rev in sorted(recorder.flows.get(eid, ())):
            stored = await rt.store.get_flow(ns, fid, rev)
            if stored is None:
                raise SystemExit(f"flow {ns}.{fid} revision {rev} is not stored: cannot record {eid}")
            flows.append((ns, fid, rev, stored.source))
        counters[case] = counters.get(case, 0) + 1
        flow_id = flows[0][1] if flows else "none"
        path = out / file_name(case, counters[case], flow_id)
        header = Header(format=FORMAT, execution_id=eid, case=case, flows=flows)
        path.write_bytes(dump(header, steps))
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-k", help="only the cases whose id contains this text")
    parser.add_argument("--all", action="store_true", help="every asserted case of the corpus")
    parser.add_argument(
        "-o", "--out", type=Path, default=HISTORIES, help="where to write (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    every = asserted_cases(corpus_root())
    if args.all:
        cases = every
    else:
        by_id = {c.id: c for c in every}
        missing = [c for c in CASES if c not in by_id]
        if missing:
            raise SystemExit(f"not asserted cases of the corpus: {missing}")
        cases = [by_id[c] for c in CASES]
    if args.k:
        cases = [c for c in cases if args.k in c.id]
    own = args.all or not args.k or any(args.k in f"replay:{f}" for f in OWN_RUNS)
    if args.out == HISTORIES:
        for old in HISTORIES.glob("*.jsonl"):
            old.unlink()
    started = time.monotonic()
    written = asyncio.run(record_cases(cases, own, args.out))
    size = sum(p.stat().st_size for p in written)
    print(f"recorded {len(written)} histories, {size / 1e6:.2f} MB, in {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    main()
