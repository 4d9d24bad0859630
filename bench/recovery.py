"""recovery: an executor holding N open executions is killed -9; how long until they move on?

Embedded server (fsync on every write), executors and a worker as `engine server` processes.
1. Executor A alone; N executions of a flow that pauses (they stay open, in A's memory): A's RSS.
2. Executor B joins and takes its share of the partitions (rendezvous hashing, leases).
3. kill -9 A, and at once resume every execution of A's partitions. B notices A's connection is
   gone (its pings get "no responders") and takes A's leases by compare-and-set, without waiting
   for them to expire (ENGINE_LEASE_TTL, default 3 s), rebuilding each execution from its snapshot
   plus the tail on its next input.

Prints, from the kill: leases_moved_s (B wrote the last of A's leases, watched as the writes
come while the inputs are sent), first_step_s (B appended the first step of one of A's
executions), half_rebuilt_s (half of them), all_rebuilt_s (every one of A's executions rebuilt
and stepped by B), all_ended_s (and run to its end), inputs_sent_s (the bench's own resumes, all
stored); the CPU time B and the server spent from the kill to the last end, per moved execution
(on a shared machine the wall times follow the others' load, these do not); and the RSS of an
executor holding N open executions.
Targets (issue #16): leases moved <= 1 s, every execution rebuilt <= 5 s.
Env: N (default 10000).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.aio import run_async
from engine.core import events as ev
from engine.ids import new_execution_id
from engine.runtime import Runtime
from eventstore import subjects as S
from eventstore.server import EmbeddedServer

FLOW = """
id: held
namespace: bench
tasks:
  - id: before
    type: io.kestra.plugin.core.debug.Return
    format: "{{ execution.id }}"
  - id: hold
    type: io.kestra.plugin.core.flow.Pause
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.before.value }}"
"""


def cpu_s(pid: int) -> float:
    """User plus system CPU seconds the process has used (a figure the other load of a shared
    machine does not inflate, unlike the wall time)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Watch:
    """Execution states from the live event copies (core NATS), for progress and timing."""

    def __init__(self) -> None:
        self.state: dict[str, str] = {}
        self.ended_at: dict[str, float] = {}
        self.resumed_at: dict[str, float] = {}  # first RUNNING after PAUSED

    async def on_event(self, msg: Any) -> None:
        eid = msg.subject.split(".", 2)[2]
        for event in ev.decode(msg.data):
            if isinstance(event, ev.ExecutionStateChanged):
                if event.state == "RUNNING" and self.state.get(eid) == "PAUSED":
                    self.resumed_at.setdefault(eid, time.perf_counter())
                self.state[eid] = event.state
                if event.state == "SUCCESS":
                    self.ended_at[eid] = time.perf_counter()

    def count(self, state: str) -> int:
        return sum(1 for s in self.state.values() if s == state)


async def wait_for(what: str, cond: Any, timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while not cond():
        if time.perf_counter() > deadline:
            raise SystemExit(f"recovery: timed out waiting for {what}")
        await asyncio.sleep(0.05)


def spawn(role: list[str], env: dict[str, str], name: str | None = None) -> subprocess.Popen[bytes]:
    if name:
        env = {**env, "ENGINE_EXECUTOR_ID": name}
    cmd = [sys.executable, "-m", "engine", "server", *role]
    return subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)


async def main() -> None:
    n = int(os.environ.get("N", "10000"))
    ttl = os.environ.get("ENGINE_LEASE_TTL", "3")
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedServer(Path(tmp) / "nats")
        url = server.start()
        env = {**os.environ, "ENGINE_NATS_URL": url, "ENGINE_HOME": tmp, "ENGINE_LEASE_TTL": ttl}
        children: list[subprocess.Popen[bytes]] = []
        try:
            async with Runtime(nats_url=url, home=Path(tmp)) as rt:
                watch = Watch()
                sub = await rt.store.nc.subscribe("ev.>", cb=watch.on_event)
                a = spawn(["executor"], env, "bench-a")
                children += [a, spawn(["worker", "--concurrency", "64"], env)]
                flow = await rt.flows.deploy(FLOW)
                ids = [new_execution_id() for _ in range(n)]
                t0 = time.perf_counter()
                for i in range(0, n, 500):
                    await asyncio.gather(
                        *(rt.create_execution(flow, {}, execution_id=e) for e in ids[i : i + 500])
                    )
                await wait_for(f"{n} paused executions", lambda: watch.count("PAUSED") >= n, 60 + n / 50)
                created_s = time.perf_counter() - t0
                await asyncio.sleep(1.0)
                rss_a = rss_mb(a.pid)

                b = spawn(["executor"], env, "bench-b")
                children.append(b)

                async def owners() -> dict[int, str]:
                    return {p: (await rt.store.lease_holder(p))[0] for p in range(S.PARTITIONS)}

                deadline = time.perf_counter() + 30
                while True:
                    held = await owners()
                    if len(set(held.values()) - {""}) == 2 and all(held.values()):
                        break
                    if time.perf_counter() > deadline:
                        raise SystemExit(f"recovery: executor B never took its share ({held})")
                    await asyncio.sleep(0.1)
                await asyncio.sleep(1.0)
                rss_b = rss_mb(b.pid)
                a_parts = {p for p, owner in held.items() if owner == "bench-a"}
                victim = [e for e in ids if S.partition(e) in a_parts]
                victim_pid, survivor_pid = a.pid, b.pid

                # B's lease writes as they are stored (an ordered consumer of the leases' stream: a
                # plain subscription would also see the writes JetStream refused), timed on
                # arrival: polling the 16 leases one by one went through the same event loop as the
                # 5,000 resumes the bench sends meanwhile, and measured the sending too.
                taken: dict[int, float] = {}
                all_taken = asyncio.Event()

                async def on_lease(msg: Any) -> None:
                    p = int(msg.subject.rsplit(".", 1)[1])
                    if p in a_parts and msg.data == b"bench-b":
                        taken.setdefault(p, time.perf_counter())
                        if len(taken) == len(a_parts):
                            all_taken.set()

                leases_sub = await rt.store.js.subscribe(
                    S.lease(0).rsplit(".", 1)[0] + ".*", stream=S.LEASES, ordered_consumer=True, cb=on_lease
                )
                server_pid = server.proc.pid if server.proc else None
                cpu_before = (cpu_s(survivor_pid), cpu_s(server_pid) if server_pid else 0.0)
                killed_at = time.perf_counter()
                os.kill(victim_pid, signal.SIGKILL)
                resume = ev.Resume(date="2026-01-01T00:00:00Z")
                for i in range(0, len(victim), 500):
                    await asyncio.gather(*(rt.store.send_input(e, resume) for e in victim[i : i + 500]))
                sent_s = time.perf_counter() - killed_at
                await asyncio.wait_for(all_taken.wait(), 30)
                moved_s = max(taken.values()) - killed_at
                await leases_sub.unsubscribe()
                if not all(v == "bench-b" for v in (await owners()).values()):
                    raise SystemExit("recovery: B took A's leases, yet does not hold every partition")
                await wait_for(
                    "the resumed executions to end",
                    lambda: all(e in watch.ended_at for e in victim),
                    120 + len(victim) / 20,
                )
                ends = sorted(watch.ended_at[e] - killed_at for e in victim)
                survivor_cpu = cpu_s(survivor_pid) - cpu_before[0]
                server_cpu = (cpu_s(server_pid) if server_pid else 0.0) - cpu_before[1]
                resumed = sorted(watch.resumed_at[e] - killed_at for e in victim)
                rss_survivor = rss_mb(survivor_pid)
                await sub.unsubscribe()
        finally:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            for child in children:
                try:
                    child.wait(10)
                except subprocess.TimeoutExpired:
                    child.kill()
            server.stop()
    print(
        f"recovery: open={n} moved={len(victim)} leases_moved_s={moved_s:.2f} first_step_s={resumed[0]:.2f} "
        f"half_rebuilt_s={resumed[len(resumed) // 2]:.2f} all_rebuilt_s={resumed[-1]:.2f} "
        f"all_ended_s={ends[-1]:.2f} "
        f"executor_rss_mb_with_all_open={rss_a:.0f} rss_mb_after_split={rss_b:.0f} "
        f"survivor_rss_mb={rss_survivor:.0f} create_s={created_s:.1f} inputs_sent_s={sent_s:.2f} "
        f"survivor_cpu_ms_per_execution={survivor_cpu * 1000 / len(victim):.2f} "
        f"server_cpu_ms_per_execution={server_cpu * 1000 / len(victim):.2f} "
        "target_leases_s=1 target_rebuilt_s=5 target_rss_mb=300"
    )


if __name__ == "__main__":
    run_async(main())
