"""chaos: a 3-node NATS cluster, 2 executors, 3 workers and a scheduler (each its own OS process) run a mixed
flow set while workers, executors and a NATS node are killed with SIGKILL and restarted; at the end every
execution must have ended exactly once per taskrun.

    python bench/chaos.py --executions 500 --duration 120 [--seed 1] [--wait 300] [--keep DIR]
                          [--combined] [--executors 2]

``--combined --executors 1`` runs one node (executor and worker in one process), always alone, so its
work goes through memory; it is killed three times.

Everything runs on 127.0.0.1 in a temporary directory; every process it starts is stopped by PID at the end
(roles and the scripts they started, then the nats-server nodes). The last line is

    chaos: executions=N terminal=N lost=0 duplicate_completions=0 stuck=0 concurrency_violations=0 wall_s=W

and the exit code is 1 when a counter is not zero.

Faults: every ``--kill-every`` seconds a random worker is killed (the process and its children: the scripts
it runs die with it, as in a lost host or container) and restarted ``--restart-after`` seconds later; each
executor is killed once; one NATS node is killed once and restarted on the same ports
(``--no-nats-kill`` and ``--no-executor-kill`` turn those off).

Flows (namespace ``chaos``): ``sleeper`` (flow.Sleep, Return), ``shell`` (two scripts), ``foreach`` (a ForEach
over three values, one script each), ``parent`` (a Subflow call of ``child``, which runs a script, then a
script) and ``limited`` (``concurrency.limit: 2``, QUEUE). Every script ends by appending one line to the
side file ``done``::

    <execution id> <taskrun id> <attemptsCount> <worker pid ($PPID)> <epoch seconds>

and ``limited``'s script also appends ``<execution id> start|end <epoch seconds>`` to ``spans``.

Counters (what "zero" guarantees):

* ``lost``: an execution whose creation was acknowledged (the create input is on the INBOX stream) but that
  has no history in the EVENTS log at the end: it vanished.
* ``stuck``: an execution (or one of its subflow executions) with a history that is not terminal after the
  bounded wait.
* ``duplicate_completions``: taskruns that completed twice. Per taskrun, either (a) its history records more
  than one ending: two accepted ``AttemptEnded`` with a successful state, or two changes of the taskrun to
  a terminal state; or (b) its script ran to the end twice *with no kill in between*: for two consecutive
  lines of the taskrun in ``done`` (by time), the worker that wrote the earlier one was not SIGKILLed
  between the two lines. A killed worker's attempt may well have written its line just before dying (its
  report never left): that is allowed, and its history then shows that attempt ended FAILED, "worker ...
  lost", RESUBMITTED. A worker that was *not* killed but lost its heartbeat (so that its still-running
  attempt ran again elsewhere) counts as a duplicate; or (c) its script wrote its line after the history
  recorded the taskrun's end (a finished task run again, e.g. a work message delivered again after its
  holder reported the end and died before acknowledging it).
* ``concurrency_violations``: for ``limited``, each execution spans from its first ``start`` to its last
  ``end`` line; the count of span starts at which more than ``limit`` spans are open.

Detail lines before the last one also give: ``unbacked`` (a taskrun recorded SUCCESS whose script never wrote
its line), ``unexplained_lines`` (a line of an attempt the history records neither as the completing one nor
as lost), states of the executions, the kills done, and the replicas of the streams.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.aio import run_async  # noqa: E402
from engine.core import events as ev  # noqa: E402
from engine.core.states import TERMINAL  # noqa: E402
from eventstore.cluster import LocalCluster  # noqa: E402

NAMESPACE = "chaos"
LIMIT = 2
SUCCESSFUL = {"SUCCESS", "WARNING"}
SCRIPTED = {"first", "second", "item", "work", "then", "guarded"}  # the task ids that write a line
TERMINAL_NAMES = {str(s) for s in TERMINAL}


@dataclass
class ChaosConfig:
    executions: int = 500
    duration: float = 120.0  # seconds over which executions are created and faults injected
    wait: float = 300.0  # bounded wait at the end for every execution to be terminal
    seed: int = 1
    nodes: int = 3
    executors: int = 2
    workers: int = 3
    kill_every: float = 5.0  # a worker is killed this often
    restart_after: float = 1.0  # ... and restarted this much later
    kill_executors: bool = True
    kill_nats: bool = True
    worker_concurrency: int = 16
    combined: bool = False  # executors run a worker in their process too (engine server node)
    keep: Path | None = None  # keep the working directory here (logs, side files); on a problem, in build/


# ---- flows ------------------------------------------------------------------------------------


def _record(done: Path) -> str:
    return (
        f'echo "{{{{ execution.id }}}} {{{{ taskrun.id }}}} {{{{ taskrun.attemptsCount }}}} $PPID '
        f'$(date +%s.%N)" >> {done}'
    )


def _script(task_id: str, seconds: float, done: Path, indent: str = "  ") -> str:
    return (
        f"{indent}- id: {task_id}\n"
        f"{indent}  type: io.kestra.plugin.scripts.shell.Commands\n"
        f"{indent}  commands:\n"
        f"{indent}    - sleep {seconds}\n"
        f"{indent}    - '{_record(done)}'\n"
    )


def flow_sources(marks: Path) -> dict[str, str]:
    """The flow set, by flow id; scripts write to ``marks/done`` and ``marks/spans``."""
    done, spans = marks / "done", marks / "spans"
    ns = f"id: {{}}\nnamespace: {NAMESPACE}\n"
    return {
        "sleeper": ns.format("sleeper")
        + "tasks:\n"
        + "  - id: nap\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT0.8S\n"
        + "  - id: after\n    type: io.kestra.plugin.core.debug.Return\n    format: ok\n",
        "shell": ns.format("shell") + "tasks:\n" + _script("first", 0.6, done) + _script("second", 0.3, done),
        "foreach": ns.format("foreach")
        + "tasks:\n"
        + "  - id: each\n    type: io.kestra.plugin.core.flow.ForEach\n"
        + '    values: ["a", "b", "c"]\n    concurrencyLimit: 2\n    tasks:\n'
        + _script("item", 0.4, done, indent="      "),
        "child": ns.format("child") + "tasks:\n" + _script("work", 0.5, done),
        "parent": ns.format("parent")
        + "tasks:\n"
        + f"  - id: call\n    type: io.kestra.plugin.core.flow.Subflow\n    namespace: {NAMESPACE}\n"
        + "    flowId: child\n    wait: true\n    transmitFailed: true\n"
        + _script("then", 0.2, done),
        "limited": ns.format("limited")
        + f"concurrency:\n  limit: {LIMIT}\n  behavior: QUEUE\n"
        + "tasks:\n"
        + "  - id: guarded\n    type: io.kestra.plugin.scripts.shell.Commands\n    commands:\n"
        + f"      - 'echo \"{{{{ execution.id }}}} start $(date +%s.%N)\" >> {spans}'\n"
        + "      - sleep 0.5\n"
        + f"      - 'echo \"{{{{ execution.id }}}} end $(date +%s.%N)\" >> {spans}'\n"
        + f"      - '{_record(done)}'\n",
    }


# Which flows the driver starts, and how often (``child`` is started by ``parent``).
MIX = {"shell": 3, "sleeper": 2, "foreach": 2, "parent": 2, "limited": 2}


# ---- processes --------------------------------------------------------------------------------


def _children_of() -> dict[int, list[int]]:
    out: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        out[ppid].append(int(entry.name))
    return out


def descendants(pid: int) -> list[int]:
    """Every live process under ``pid`` (children, grandchildren...)."""
    tree = _children_of()
    out, todo = [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "X"


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and everything it started (processes in sessions of their own included), as a
    lost host would: the tree is frozen first (SIGSTOP, top down) so that nothing forks in between."""
    frozen: list[int] = []
    todo = [pid]
    while todo:
        for p in todo:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGSTOP)
            frozen.append(p)
        deadline = time.monotonic() + 1.0
        while any(_state(p) not in ("T", "t", "Z", "X") for p in todo) and time.monotonic() < deadline:
            time.sleep(0.001)
        tree = _children_of()
        todo = [c for p in todo for c in tree.get(p, []) if c not in frozen]
    for p in frozen:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)


@dataclass
class Kill:
    role: str
    pid: int
    at: float  # epoch seconds (the clock the scripts' lines use)


@dataclass
class Role:
    name: str
    argv: list[str]
    log_dir: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    incarnation: int = 0

    def spawn(self) -> int:
        self.incarnation += 1
        log = open(self.log_dir / f"{self.name}.{self.incarnation}.log", "wb")  # noqa: SIM115 - the child's
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "engine", "server", *self.argv],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            log.close()
        return self.proc.pid


class Topology:
    """The cluster and the engine's roles, each an OS process of ours (tracked by PID)."""

    def __init__(self, work: Path, cfg: ChaosConfig) -> None:
        self.work = work
        self.cfg = cfg
        self.cluster = LocalCluster(work / "nats", size=cfg.nodes)
        self.roles: dict[str, Role] = {}
        self.kills: list[Kill] = []
        self.pids: set[int] = set()  # every role process ever started
        self.node_kills = 0
        self.crashes = 0  # role processes that exited without being killed (restarted by _supervise)

    @property
    def env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("ENGINE_", "SECRET_", "ENV_"))}
        return {
            **keep,
            "ENGINE_NATS_URL": self.cluster.url,
            "ENGINE_REPLICAS": str(min(3, self.cfg.nodes)),
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
        }

    def start_cluster(self) -> str:
        self.cluster.start()
        return self.cluster.url

    def start_roles(self) -> None:
        logs = self.work / "logs"
        logs.mkdir(exist_ok=True)
        # --combined: each executor process runs a worker too (`engine server node`), so reports go
        # to the executor in memory (engine.handoff) whenever the partition is its own.
        concurrency = ["--concurrency", str(self.cfg.worker_concurrency)]
        node = ["node", *concurrency] if self.cfg.combined else ["executor"]
        specs = [(f"executor-{i + 1}", node) for i in range(self.cfg.executors)]
        specs += [
            (f"worker-{i + 1}", ["worker", "--concurrency", str(self.cfg.worker_concurrency)])
            for i in range(self.cfg.workers)
        ]
        specs.append(("scheduler", ["scheduler"]))
        for name, argv in specs:
            home = self.work / "homes" / name
            home.mkdir(parents=True, exist_ok=True)
            env = {**self.env, "ENGINE_HOME": str(home)}
            if name.startswith("executor"):  # partitions taken and when work may go through memory
                env["ENGINE_LOG_LEVEL"] = "info"
            role = Role(name, argv, logs, env)
            self.roles[name] = role
            self.pids.add(role.spawn())

    def kill(self, name: str) -> int:
        role = self.roles[name]
        assert role.proc is not None
        pid = role.proc.pid
        kill_tree(pid)
        self.kills.append(Kill(name, pid, time.time()))
        role.proc.wait()
        role.proc = None
        return pid

    def restart(self, name: str) -> int:
        pid = self.roles[name].spawn()
        self.pids.add(pid)
        return pid

    def close(self) -> list[int]:
        """Stop every role (SIGTERM, then SIGKILL of what is left of its tree), then the cluster.

        Returns the PIDs of ours still alive afterwards (none, unless something is badly wrong)."""
        family: set[int] = set()
        for role in self.roles.values():
            if role.proc is not None and role.proc.poll() is None:
                family.update(descendants(role.proc.pid))
                with contextlib.suppress(ProcessLookupError):
                    os.kill(role.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for role in self.roles.values():
            if role.proc is None:
                continue
            try:
                role.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                kill_tree(role.proc.pid)
                role.proc.wait()
        for pid in family:  # scripts a role left behind (they run in sessions of their own)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        node_pids = set(self.cluster.pids)
        self.cluster.stop()
        return [p for p in (self.pids | family | node_pids) if _alive(p)]


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


# ---- the run ----------------------------------------------------------------------------------


@dataclass
class Created:
    execution_id: str
    flow_id: str


@dataclass
class Report:
    executions: int = 0
    terminal: int = 0
    lost: int = 0
    duplicate_completions: int = 0
    stuck: int = 0
    concurrency_violations: int = 0
    wall_s: float = 0.0
    unbacked: int = 0
    unexplained_lines: int = 0
    subflow_executions: int = 0
    states: dict[str, int] = field(default_factory=dict)
    kills: dict[str, int] = field(default_factory=dict)
    replicas: int = 0
    survivors: list[int] = field(default_factory=list)
    role_crashes: int = 0
    problems: list[str] = field(default_factory=list)  # the first few, for a human

    @property
    def ok(self) -> bool:
        return not (
            self.lost
            or self.duplicate_completions
            or self.stuck
            or self.concurrency_violations
            or self.unbacked
            or self.unexplained_lines
            or self.survivors
            or self.terminal != self.executions
        )

    def line(self) -> str:
        return (
            f"chaos: executions={self.executions} terminal={self.terminal} lost={self.lost} "
            f"duplicate_completions={self.duplicate_completions} stuck={self.stuck} "
            f"concurrency_violations={self.concurrency_violations} wall_s={self.wall_s:.1f}"
        )


async def _create(
    rt: Any, flows: dict[str, Any], created: list[Created], rng: random.Random, cfg: ChaosConfig
) -> None:
    """Create ``cfg.executions`` executions spread over ``cfg.duration``; a create that fails (a node is
    down) is sent again with the same id (deduplicated by its message id) until acknowledged."""
    from engine.ids import new_execution_id

    names = [name for name, weight in MIX.items() for _ in range(weight)]
    t0 = time.monotonic()
    for i in range(cfg.executions):
        due = t0 + cfg.duration * i / max(cfg.executions, 1)
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        flow_id = names[rng.randrange(len(names))]
        eid = new_execution_id()
        for attempt in range(120):
            try:
                await rt.create_execution(flows[flow_id], {}, execution_id=eid)
                break
            except Exception:
                if attempt == 119:
                    raise
                await asyncio.sleep(0.5)
        created.append(Created(eid, flow_id))


async def _chaos(topo: Topology, rng: random.Random, cfg: ChaosConfig, log: list[str]) -> None:
    """The fault schedule: workers every few seconds, each executor once, one NATS node once."""
    t0 = time.monotonic()
    plan: list[tuple[float, str]] = []
    t = cfg.kill_every
    while t < cfg.duration:
        plan.append((t, "worker"))
        t += cfg.kill_every
    if cfg.kill_executors and cfg.executors == 1:
        # A lone executor is always alone: its work goes through memory, and each kill leaves the
        # restarted one to find, by its marks, what the dead one held there.
        plan += [(cfg.duration * f, "executor-1") for f in (0.25, 0.5, 0.7)]
    elif cfg.kill_executors:
        for i in range(cfg.executors):
            plan.append((cfg.duration * (0.25 + 0.45 * i / max(cfg.executors - 1, 1)), f"executor-{i + 1}"))
    if cfg.kill_nats and cfg.nodes >= 3:
        plan.append((cfg.duration * 0.45, "nats"))
    plan.sort()
    pending: set[asyncio.Task[None]] = set()

    async def later(delay: float, fn: Any, *args: Any) -> None:
        await asyncio.sleep(delay)
        await asyncio.to_thread(fn, *args)

    for at, what in plan:
        while time.monotonic() < t0 + at:
            await asyncio.sleep(min(0.5, t0 + at - time.monotonic()))
            _supervise(topo, log, t0)
        stamp = f"{time.monotonic() - t0:6.1f}s ({time.strftime('%H:%M:%S')})"
        if what == "worker":
            name = f"worker-{rng.randrange(cfg.workers) + 1}"
            if topo.roles[name].proc is None:
                continue  # still down from the previous kill
            pid = topo.kill(name)
            log.append(f"{stamp} kill -9 {name} (pid {pid})")
            pending.add(asyncio.create_task(later(cfg.restart_after, topo.restart, name)))
        elif what.startswith("executor"):
            pid = topo.kill(what)
            log.append(f"{stamp} kill -9 {what} (pid {pid})")
            pending.add(asyncio.create_task(later(3.0, topo.restart, what)))
        else:
            index = rng.randrange(cfg.nodes)
            node_pid = topo.cluster.nodes[index].pid or 0
            topo.cluster.kill_node(index)
            topo.kills.append(Kill(f"nats-{index + 1}", node_pid, time.time()))
            topo.node_kills += 1
            log.append(f"{stamp} kill -9 nats node n{index + 1} (pid {node_pid})")
            pending.add(asyncio.create_task(later(8.0, topo.cluster.restart_node, index)))
    if pending:
        await asyncio.gather(*pending)


def _supervise(topo: Topology, log: list[str], t0: float) -> None:
    """A role that exited on its own is restarted, as systemd (Restart=always) or compose would; counted."""
    for name, role in topo.roles.items():
        if role.proc is not None and role.proc.poll() is not None:
            code = role.proc.returncode
            topo.crashes += 1
            log.append(f"{time.monotonic() - t0:6.1f}s {name} exited by itself (code {code}): restarted")
            topo.restart(name)


async def _histories(rt: Any, ids: Iterable[str]) -> dict[str, list[Any]]:
    """Every event of each execution (an empty list: no history at all).

    Completed from the stream's leader: a direct get may be served by a replica still catching up
    (the NATS node killed and restarted), and a history read short would count as stuck (seed 36
    reported three executions stuck whose last steps the leader had)."""
    out: dict[str, list[Any]] = {}
    for eid in ids:
        for attempt in range(5):
            try:
                steps = await rt.store.read(eid)
                last = await rt.store.last_seq(eid, leader=True)
                read_upto = steps[-1][0] if steps else 0
                if last > read_upto:
                    steps += await rt.store.read_from_leader(eid, read_upto, last)
                out[eid] = [event for _, events in steps for event in events]
                break
            except Exception:
                if attempt == 4:
                    raise
                await asyncio.sleep(1)
    return out


def _final_state(events: list[Any]) -> str | None:
    state = None
    for event in events:
        if isinstance(event, ev.ExecutionStateChanged):
            state = event.state
    return state


def _children(events: list[Any]) -> list[str]:
    return [e.execution_id for e in events if isinstance(e, ev.SubflowStarted)]


async def _wait_terminal(rt: Any, ids: list[str], deadline: float) -> dict[str, list[Any]]:
    """Until every execution and subflow execution is terminal (or the deadline); returns their histories."""
    histories: dict[str, list[Any]] = {}
    todo = set(ids)
    while True:
        unread = [eid for eid in todo if _final_state(histories.get(eid, [])) not in TERMINAL_NAMES]
        histories.update(await _histories(rt, unread))
        for eid in list(todo):
            todo.update(_children(histories[eid]))
        if all(_final_state(histories.get(eid, [])) in TERMINAL_NAMES for eid in todo):
            return histories
        if time.monotonic() > deadline:
            histories.update(await _histories(rt, [eid for eid in todo if eid not in histories]))
            return histories
        await asyncio.sleep(2.0)


# ---- analysis (pure) --------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    execution_id: str
    taskrun_id: str
    attempt: int  # 1-based (attemptsCount + 1)
    pid: int
    at: float


def parse_done(text: str) -> list[Line]:
    out = []
    for raw in text.splitlines():
        parts = raw.split()
        if len(parts) != 5:
            continue  # a line cut by a kill mid-write
        eid, trid, count, pid, at = parts
        out.append(Line(eid, trid, int(count) + 1, int(pid), float(at)))
    return out


def parse_spans(text: str) -> dict[str, tuple[float, float]]:
    starts: dict[str, float] = {}
    ends: dict[str, float] = {}
    for raw in text.splitlines():
        parts = raw.split()
        if len(parts) != 3:
            continue
        eid, kind, at = parts[0], parts[1], float(parts[2])
        if kind == "start":
            starts[eid] = min(starts.get(eid, at), at)
        elif kind == "end":
            ends[eid] = max(ends.get(eid, at), at)
    return {eid: (s, ends.get(eid, s)) for eid, s in starts.items()}


def concurrency_violations(spans: dict[str, tuple[float, float]], limit: int) -> int:
    """How many spans start while ``limit`` others are open (touching ends do not overlap)."""
    points = sorted([(s, 1) for s, _ in spans.values()] + [(e, -1) for _, e in spans.values()])
    open_, violations = 0, 0
    for _, delta in points:  # at equal times, ends (-1) sort before starts (+1)
        open_ += delta
        if delta > 0 and open_ > limit:
            violations += 1
    return violations


def duplicate_completions(
    histories: dict[str, list[Any]], lines: list[Line], kills: list[Kill]
) -> tuple[int, int, int, list[str]]:
    """(duplicates, unbacked, unexplained lines, problems) over every taskrun; see the module doc."""
    killed_at: dict[int, list[float]] = defaultdict(list)
    for k in kills:
        killed_at[k.pid].append(k.at)
    by_taskrun: dict[tuple[str, str], list[Line]] = defaultdict(list)
    for line in lines:
        by_taskrun[(line.execution_id, line.taskrun_id)].append(line)
    dups: set[tuple[str, str]] = set()
    unbacked = unexplained = 0
    problems: list[str] = []
    for eid, events in histories.items():
        succeeded: dict[str, list[int]] = defaultdict(list)
        lost: dict[str, set[int]] = defaultdict(set)
        endings: Counter[str] = Counter()
        ended_at: dict[str, float] = {}
        scripted: set[str] = set()
        for event in events:
            if isinstance(event, ev.TaskRunCreated) and event.task_id in SCRIPTED:
                scripted.add(event.taskrun_id)
            elif isinstance(event, ev.AttemptEnded):
                if event.final and event.state in SUCCESSFUL:
                    succeeded[event.taskrun_id].append(event.attempt)
                if not event.final and event.error and "lost" in event.error:
                    lost[event.taskrun_id].add(event.attempt)
            elif isinstance(event, ev.TaskRunStateChanged) and event.state in TERMINAL_NAMES:
                endings[event.taskrun_id] += 1
                at = datetime.fromisoformat(event.date.replace("Z", "+00:00")).timestamp()
                ended_at[event.taskrun_id] = min(at, ended_at.get(event.taskrun_id, at))
        for trid in set(succeeded) | set(endings):
            if len(succeeded[trid]) > 1 or endings[trid] > 1:
                dups.add((eid, trid))
                problems.append(
                    f"{eid} {trid}: history ends it {endings[trid]}x, successes {succeeded[trid]}"
                )
        for trid in scripted:
            done = sorted(by_taskrun.get((eid, trid), []), key=lambda x: x.at)
            for earlier, later in itertools.pairwise(done):
                if not any(earlier.at <= t <= later.at for t in killed_at.get(earlier.pid, [])):
                    dups.add((eid, trid))
                    problems.append(
                        f"{eid} {trid}: script completed by attempt {earlier.attempt} (pid {earlier.pid}) "
                        f"and attempt {later.attempt} (pid {later.pid}) with no kill in between"
                    )
            late = [x for x in done if trid in ended_at and x.at > ended_at[trid]]
            if late:  # ran again after its end was recorded: a finished task run twice
                dups.add((eid, trid))
                problems.append(
                    f"{eid} {trid}: script ran again (attempt {late[0].attempt}, pid {late[0].pid}) "
                    f"{late[0].at - ended_at[trid]:.1f} s after the taskrun ended"
                )
            accepted = set(succeeded.get(trid, []))
            attempts = {x.attempt for x in done}
            if accepted and not accepted & attempts:
                unbacked += 1
                problems.append(f"{eid} {trid}: attempt {sorted(accepted)} recorded SUCCESS, no script line")
            for x in done:
                if x.attempt not in accepted and x.attempt not in lost.get(trid, set()):
                    unexplained += 1
                    problems.append(f"{eid} {trid}: line of attempt {x.attempt}, neither completing nor lost")
    return len(dups), unbacked, unexplained, problems


def analyse(
    created: list[Created],
    histories: dict[str, list[Any]],
    done_text: str,
    spans_text: str,
    kills: list[Kill],
) -> Report:
    report = Report(executions=len(created))
    top = {c.execution_id for c in created}
    states: Counter[str] = Counter()
    for eid, events in histories.items():
        state = _final_state(events)
        if eid in top:
            states[state or ("(no history)" if not events else "(not terminal)")] += 1
            if state in TERMINAL_NAMES:
                report.terminal += 1
        else:
            report.subflow_executions += 1
        if not events and eid in top:
            report.lost += 1
            report.problems.append(f"{eid}: created, no history")
        elif state not in TERMINAL_NAMES:
            report.stuck += 1
            report.problems.append(f"{eid}: stuck in {state}")
    report.states = dict(states)
    lines = parse_done(done_text)
    dup, unbacked, unexplained, problems = duplicate_completions(histories, lines, kills)
    report.duplicate_completions, report.unbacked, report.unexplained_lines = dup, unbacked, unexplained
    report.problems += problems
    limited = {c.execution_id for c in created if c.flow_id == "limited"}
    spans = {eid: span for eid, span in parse_spans(spans_text).items() if eid in limited}
    report.concurrency_violations = concurrency_violations(spans, LIMIT)
    counts = Counter(k.role.rsplit("-", 1)[0] for k in kills)
    report.kills = dict(counts)
    return report


@contextlib.asynccontextmanager
async def _entered(rt: Any) -> AsyncIterator[Any]:
    try:
        yield rt
    finally:
        await rt.__aexit__(None, None, None)


async def run_chaos(cfg: ChaosConfig, say: Any = print) -> Report:
    """The whole benchmark; ``say`` gets the detail lines."""
    from engine.runtime import Runtime

    rng = random.Random(cfg.seed)
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="engine-chaos-") as tmp:
        work = Path(tmp)
        marks = work / "marks"
        marks.mkdir()
        (marks / "done").touch()
        (marks / "spans").touch()
        topo = Topology(work, cfg)
        created: list[Created] = []
        log: list[str] = []
        report = Report()
        keep = cfg.keep
        try:
            url = await asyncio.to_thread(topo.start_cluster)
            saved = os.environ.get("ENGINE_REPLICAS")
            os.environ["ENGINE_REPLICAS"] = str(min(3, cfg.nodes))  # the driver's Store, like the roles'
            try:
                rt = await Runtime(nats_url=url, home=work / "driver").__aenter__()
            finally:
                if saved is None:
                    os.environ.pop("ENGINE_REPLICAS", None)
                else:
                    os.environ["ENGINE_REPLICAS"] = saved
            async with _entered(rt):
                flows = {}
                for name, source in flow_sources(marks).items():
                    flows[name] = await rt.flows.deploy(source)
                info = await rt.store.js.stream_info("EVENTS_0")
                replicas = info.config.num_replicas or 1
                topo.start_roles()
                await asyncio.sleep(2.0)  # the roles connect
                chaos = asyncio.create_task(_chaos(topo, rng, cfg, log))
                try:
                    await _create(rt, flows, created, rng, cfg)
                    await chaos
                finally:
                    if not chaos.done():
                        chaos.cancel()
                        await asyncio.gather(chaos, return_exceptions=True)
                deadline = time.monotonic() + cfg.wait

                async def keep_alive() -> None:
                    t0 = time.monotonic()
                    while True:
                        _supervise(topo, log, t0)
                        await asyncio.sleep(0.5)

                supervisor = asyncio.create_task(keep_alive())
                try:
                    histories = await _wait_terminal(rt, [c.execution_id for c in created], deadline)
                finally:
                    supervisor.cancel()
                    await asyncio.gather(supervisor, return_exceptions=True)
            report = analyse(
                created,
                histories,
                (marks / "done").read_text(errors="replace"),
                (marks / "spans").read_text(errors="replace"),
                topo.kills,
            )
            report.replicas = replicas
            report.role_crashes = topo.crashes
            if keep is None and report.problems:
                # A rare failure may not come back with the same seed (seed 107 did not): its logs are
                # the only evidence, so they outlive the temporary directory unasked.
                keep = ROOT / "build" / f"chaos-seed{cfg.seed}-{time.strftime('%Y%m%d-%H%M%S')}"
                say(f"chaos: problems found: logs, side files and histories kept in {keep}")
            if keep is not None:
                _dump(work / "report", created, histories, report)
        finally:
            report.survivors = topo.close()
            if keep is not None:
                import shutil

                shutil.copytree(work, keep, dirs_exist_ok=True, ignore=shutil.ignore_patterns("js"))
        report.wall_s = time.monotonic() - t_start
    for entry in log:
        say(f"chaos: fault {entry}")
    say(
        f"chaos: states {json.dumps(report.states, sort_keys=True)} "
        f"subflow_executions={report.subflow_executions}"
    )
    say(
        f"chaos: kills {json.dumps(report.kills, sort_keys=True)} replicas={report.replicas} "
        f"unbacked={report.unbacked} unexplained_lines={report.unexplained_lines} "
        f"survivors={len(report.survivors)} role_crashes={report.role_crashes}"
    )
    for problem in report.problems[:20]:
        say(f"chaos: problem {problem}")
    return report


def _dump(where: Path, created: list[Created], histories: dict[str, list[Any]], report: Report) -> None:
    """For a human: the created executions, and the histories of those named in a problem."""
    import msgspec

    where.mkdir(parents=True, exist_ok=True)
    (where / "created.json").write_text(json.dumps([asdict(c) for c in created], indent=1))
    named = {p.split()[0].rstrip(":") for p in report.problems}
    for eid in named & set(histories):
        text = msgspec.json.format(msgspec.json.encode(histories[eid]), indent=1)
        (where / f"{eid}.json").write_bytes(text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--executions", type=int, default=500)
    p.add_argument("--duration", type=float, default=120.0, help="seconds of load and faults")
    p.add_argument("--wait", type=float, default=300.0, help="bounded wait for the end, seconds")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--kill-every", type=float, default=5.0)
    p.add_argument("--restart-after", type=float, default=1.0)
    p.add_argument("--no-executor-kill", action="store_true")
    p.add_argument("--no-nats-kill", action="store_true")
    p.add_argument("--combined", action="store_true", help="executor processes run a worker too (node)")
    p.add_argument(
        "--executors", type=int, default=2, help="executor processes (one: killed three times, always alone)"
    )
    p.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="copy logs and side files here at the end (a run that finds a problem keeps them in build/)",
    )
    p.add_argument("--report", type=Path, default=None, help="write the report as JSON here")
    a = p.parse_args()
    cfg = ChaosConfig(
        executions=a.executions,
        duration=a.duration,
        wait=a.wait,
        seed=a.seed,
        kill_every=a.kill_every,
        restart_after=a.restart_after,
        kill_executors=not a.no_executor_kill,
        kill_nats=not a.no_nats_kill,
        combined=a.combined,
        executors=a.executors,
        keep=a.keep,
    )
    report = run_async(run_chaos(cfg))
    if a.report is not None:
        a.report.write_text(json.dumps(asdict(report), indent=2, default=str))
    print(report.line(), flush=True)
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
