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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "conformance"))
sys.path.insert(0, str(HERE))

import msgspec  # noqa: E402
from corpus import FLOW_TRIGGER, Case, asserted_cases, corpus_root, run_case  # noqa: E402
from replaying import HISTORIES, mismatches  # noqa: E402

from engine.clock import utcnow  # noqa: E402
from engine.core import events as ev  # noqa: E402
from engine.core.execution import Execution, clone, evolve  # noqa: E402
from engine.core.replay import FORMAT, FlowKey, Header, Step, dump, recorded_events  # noqa: E402
from engine.executor import Executor  # noqa: E402
from engine.runtime import Runtime  # noqa: E402
from triggers.service import TriggerService  # noqa: E402

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
    # retries (task and flowable, constant, exponential, random; CREATE_NEW_EXECUTION: every try)
    "retry-success.yaml",
    "retry-failed.yaml",
    "retry-expo.yaml",
    "retry-random.yaml",
    "retry-flowable-parallel.yaml",
    "retry-failed-task-attempts.yml",
    "retry-failed-flow-attempts.yml",
    "retry-new-execution-flow-attempts.yml",
    "retry-new-execution-task-duration.yml",
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
OWN_RUNS = ("step-functions", "errors-finally")  # and executor-restart (run_executor_restart)
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
        if _json_inputs(step.inputs) != [ev.encode_input(i) for i in step.inputs]:
            # The golden file keeps inputs as JSON: a value JSON cannot tell apart (bytes, a tuple, a
            # non-text key) would reach the replay changed, and its verdict would mean nothing.
            print(f"WARNING {eid}: an input of step {step.seq} does not survive JSON", file=sys.stderr)
        for event in recorded_events(step):
            state = evolve(state, event)
        if state is not None:
            self.states[eid] = state
            key = (state.namespace, state.flow_id, state.flow_revision)
            self.flows.setdefault(eid, set()).add(key)


def _json_inputs(inputs: list[ev.Input]) -> list[bytes]:
    again = msgspec.json.decode(msgspec.json.encode(inputs), type=list[ev.Input])
    return [ev.encode_input(i) for i in again]


def file_name(case: str, n: int, flow_id: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", re.sub(r"\.ya?ml", "", case).replace("replay:", ""))
    return f"{slug}.{n}.{flow_id}.jsonl"


class Roles:
    """The executor, worker and trigger service of the recording, each stopped and started at will."""

    def __init__(self, rt: Runtime, recorder: Recorder) -> None:
        self.rt = rt
        self.recorder = recorder
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, name: str) -> None:
        rt = self.rt
        if name == "executor":  # a stable id: a restarted one takes its partitions back at once
            job = Executor(rt.store, rt.flows, rt.expressions, executor_id="recorder", on_step=self.recorder)
            self.tasks[name] = asyncio.create_task(job.run())
        elif name == "worker":
            self.tasks[name] = asyncio.create_task(rt.worker(concurrency=32).run())
        else:
            self.tasks[name] = asyncio.create_task(TriggerService(rt, schedules=False).run())

    async def stop(self, *names: str) -> None:
        tasks = [self.tasks.pop(n) for n in names or list(self.tasks)]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def poll(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 20.0) -> None:
    limit = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > limit:
            raise SystemExit(f"recording: timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def run_own_flows(rt: Runtime, recorder: Recorder, roles: Roles, timeout: float = 30.0) -> None:
    for path in sorted(OWN_FLOWS.glob("*.yaml")):
        await rt.flows.deploy(path.read_text(), file=str(path))
    for flow_id in OWN_RUNS:
        recorder.case = f"replay:{flow_id}"
        flow = await rt.flows.get(OWN_NAMESPACE, flow_id)
        eid = await rt.create_execution(flow, {})
        state = await rt.wait_terminal(eid, timeout=timeout)
        print(f"RAN  {recorder.case:<58} {state.state}", file=sys.stderr, flush=True)
    await run_executor_restart(rt, recorder, roles, timeout)


async def run_executor_restart(rt: Runtime, recorder: Recorder, roles: Roles, timeout: float) -> None:
    """The executor restarts between a dispatch and the worker's start: the next one folds the
    execution from the store and, not knowing whether the dispatch went out, sends it again."""
    recorder.case = "replay:executor-restart"
    await roles.stop("worker")
    flow = await rt.flows.get(OWN_NAMESPACE, "executor-restart")
    eid = await rt.create_execution(flow, {})

    async def dispatched() -> bool:
        state = await rt.load_execution(eid)
        return state is not None and any(tr.dispatched for tr in state.taskruns.values())

    async def redispatched() -> bool:
        return any(step.redispatch and step.effects for step in recorder.steps.get(eid, ()))

    await poll(dispatched, "the first dispatch")
    await roles.stop("executor")
    roles.start("executor")
    # Any input makes the new executor load the execution (a resume of a running one changes nothing).
    await rt.store.send_input(eid, ev.Resume(date=utcnow()))
    await poll(redispatched, "the dispatch sent again")
    roles.start("worker")
    state = await rt.wait_terminal(eid, timeout=timeout)
    print(f"RAN  {recorder.case:<58} {state.state}", file=sys.stderr, flush=True)


async def record_cases(cases: list[Case], own: bool, out: Path) -> list[Path]:
    recorder = Recorder()
    root = corpus_root()
    with tempfile.TemporaryDirectory(prefix="replay-record-") as home:
        os.environ["ENGINE_HOME"] = home
        os.environ.pop("ENGINE_NATS_URL", None)
        async with Runtime(home=Path(home)) as rt:
            roles = Roles(rt, recorder)
            for name in ("executor", "worker", "triggers"):
                roles.start(name)
            try:
                for case in cases:
                    recorder.case = case.id
                    result = await run_case(case, rt, root=root)
                    mark = "PASS" if result.passed else "FAIL"
                    print(f"{mark} {case.id:<58} {result.seconds:5.1f}s", file=sys.stderr, flush=True)
                if own:
                    await run_own_flows(rt, recorder, roles)
                await asyncio.sleep(1.0)  # the last notifications (a child's end) reach their parents
            finally:
                await roles.stop()
            keep = {c.id for c in cases if "flow-trigger" in c.needs}
            return await write(recorder, rt, out, keep_triggered=keep)


def flow_triggered(steps: list[Step]) -> bool:
    """Started by a Flow trigger (its type named old style or new)?"""
    first = steps[0].inputs[0] if steps and steps[0].inputs else None
    trigger = first.trigger if isinstance(first, ev.ExecutionCreated) else None
    kind = str((trigger or {}).get("type", ""))
    return bool(kind.rsplit(".", 1)[-1] == str(FLOW_TRIGGER).rsplit(".", 1)[-1])


async def write(recorder: Recorder, rt: Runtime, out: Path, keep_triggered: set[str]) -> list[Path]:
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
    own = args.all or not args.k or any(args.k in f"replay:{f}" for f in (*OWN_RUNS, "executor-restart"))
    if args.out == HISTORIES:
        for old in HISTORIES.glob("*.jsonl"):
            old.unlink()
    for name in [n for n in os.environ if n.startswith("ENV_")]:
        del os.environ[name]  # envs.* go into the golden files, which are committed: none of this machine's
    started = time.monotonic()
    written = asyncio.run(record_cases(cases, own, args.out))
    size = sum(p.stat().st_size for p in written)
    print(f"recorded {len(written)} histories, {size / 1e6:.2f} MB, in {time.monotonic() - started:.0f}s")
    found = mismatches(written)  # a history that does not replay is a finding, not a golden file
    for message in found:
        print(message)
    print(f"replayed {len(written) - len(found)}/{len(written)}")
    if found:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
