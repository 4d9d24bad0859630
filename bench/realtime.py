"""realtime: NATS RealtimeTrigger, from a message published on a source server to its execution RUNNING.

The engine runs on its embedded server (executor, worker and the trigger role in this process);
a second nats-server on a free loopback port is the source. A flow with
``io.kestra.plugin.nats.RealtimeTrigger`` listens to it. Each message carries its publish time
(wall clock); the latency is the date of the execution's RUNNING event minus that time.

1. latency: N messages (default 300), one every 10 ms, p50 and p99. ``hop_p50_ms`` is the floor
   under it: publish to receipt by a bare subscriber of the source, same machine, same moment.
2. throughput: messages published by a child process at RATE per second (default 2,500: above
   the target, so the engine and not the publisher sets the pace) for DUR seconds (default 5);
   ``msgs_per_s`` counts the RUNNING events dated in the window (the first second fills the
   pipeline and is left out),
   ``created_per_s`` the creations the store acknowledged to the trigger in the same window,
   ``ended_per_s`` the executions that ended in it (below msgs_per_s: a backlog grows), and
   ``cpu_us_per_msg`` this process's CPU time (the engine's roles, the bench's watcher) per RUNNING;
   ``engine_cpu_pct`` and ``server_cpu_pct`` how busy this process and the embedded nats-server were
   (100 = one core): which of the two sets the pace; ``appends_per_msg`` the durable appends (every
   stream of the engine's server) per RUNNING in the window, beside ``floor_appends_per_s``
   (bench/floor.py, same server, same run) and ``floor_append_ms``, one fsynced append waited for
   (a creation is stored before the executor sees it: p50 cannot beat hop_p50_ms + floor_append_ms).

Env: N, DUR, RATE, DURABLE=1 (a durable JetStream consumer instead of a core subscription),
ROLES=trigger (no executor nor worker: the trigger role's own pace, ``created_per_s``, and its CPU
per creation; nothing gets RUNNING, so p50, p99 and msgs_per_s are nan/0).
The line ends with the targets and the load average. Every process started here is stopped by PID.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nats

from bench.floor import measure as measure_floor
from engine.aio import run_async, stop_tasks
from engine.core import events as ev
from engine.core.states import TERMINAL
from engine.runtime import Runtime
from eventstore.server import EmbeddedServer, sync_interval
from triggers.service import TriggerService
from triggers.testing import SourceServer

FLOW = """
id: realtime
namespace: bench
tasks:
  - id: ret
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ trigger.data }}}}"
triggers:
  - id: nats
    type: io.kestra.plugin.nats.RealtimeTrigger
    url: {url}
    subject: bench.in
{extra}"""


def _epoch(date: str) -> float:
    return datetime.fromisoformat(date.replace("Z", "+00:00")).timestamp()


# The saturation publisher (a child process): ``started <wall time>``, then ``published <count>``.
PUBLISHER = """
import asyncio, json, sys, time
import nats

async def main(url, start, rate, duration):
    nc = await nats.connect(url)
    n, began = start, time.monotonic()
    print("started", time.time(), flush=True)
    while (elapsed := time.monotonic() - began) < duration:
        due = start + int(rate * elapsed)  # a late loop catches up
        while n < due:
            await nc.publish("bench.in", json.dumps({"n": n, "at": time.time()}).encode())
            n += 1
        await nc.flush()
        await asyncio.sleep(0.005)
    await nc.close()
    print("published", n - start, flush=True)

asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])))
"""

TARGET_P50_MS = 2
TARGET_MSGS_PER_S = 1000


class Watch:
    """RUNNING and end dates by the message number each execution was started for."""

    def __init__(self) -> None:
        self.number: dict[str, int] = {}
        self.running: dict[int, float] = {}
        self.ended: dict[int, float] = {}
        self.changed = asyncio.Event()

    async def on_step(self, msg: Any) -> None:
        eid = msg.subject.split(".", 2)[2]
        for event in ev.decode(msg.data):
            if isinstance(event, ev.ExecutionCreated) and event.namespace == "bench" and event.trigger:
                self.number[eid] = int(json.loads(event.trigger["data"])["n"])
            elif isinstance(event, ev.ExecutionStateChanged) and event.state == "RUNNING":
                n = self.number.get(eid)
                if n is not None and n not in self.running:
                    self.running[n] = _epoch(event.date)
                    self.changed.set()
            elif isinstance(event, ev.ExecutionStateChanged) and event.state in TERMINAL:
                n = self.number.pop(eid, None)
                if n is not None:
                    self.ended[n] = _epoch(event.date)

    async def until(self, numbers: range, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not all(n in self.running for n in numbers):
            left = deadline - time.monotonic()
            if left <= 0:
                missing = sum(1 for n in numbers if n not in self.running)
                raise SystemExit(f"{missing} message(s) never reached RUNNING within {timeout:.0f}s")
            self.changed.clear()
            await asyncio.wait({asyncio.ensure_future(self.changed.wait())}, timeout=min(left, 0.5))


async def bench(url: str, server: EmbeddedServer, source: SourceServer, tmp: Path) -> str:
    n_latency = int(os.environ.get("N", "300"))
    duration = float(os.environ.get("DUR", "5"))
    rate_wanted = float(os.environ.get("RATE", "2500"))
    durable = os.environ.get("DURABLE") == "1"
    trigger_only = os.environ.get("ROLES") == "trigger"
    pub = await nats.connect(source.url)
    try:
        extra = ""
        if durable:
            await pub.jetstream().add_stream(name="BENCH", subjects=["bench.>"])
            extra = "    durableId: bench\n    deliverPolicy: New\n"
        async with Runtime(nats_url=url, home=tmp) as rt:
            roles = []
            if not trigger_only:
                roles.append(asyncio.create_task(rt.executor().run()))
                roles.append(asyncio.create_task(rt.worker(concurrency=64).run()))
            service = TriggerService(rt, namespace="bench", poll_interval=0.2, schedules=False)
            watch = Watch()
            sub = await rt.store.nc.subscribe("ev.>", cb=watch.on_step)
            try:
                await service.start()
                await rt.flows.deploy(FLOW.format(url=source.url, extra=extra))
                deadline = time.monotonic() + 10
                while not any(li.connected.is_set() for li in service.realtime.listeners.values()):
                    if time.monotonic() > deadline:
                        raise SystemExit("the realtime listener did not connect within 10 s")
                    await asyncio.sleep(0.01)
                sent: dict[int, float] = {}

                async def send(n: int) -> None:
                    sent[n] = time.time()
                    await pub.publish("bench.in", json.dumps({"n": n, "at": sent[n]}).encode())

                for n in range(20):  # warm-up: first compilation of the flow's expressions, caches
                    await send(n)
                    await pub.flush()
                    await asyncio.sleep(0.01)
                listener = next(iter(service.realtime.listeners.values()))
                if trigger_only:
                    await _until(lambda: listener.stats.created >= 20, 30)
                else:
                    await watch.until(range(20), 30)

                # the floor: the same messages seen by a bare subscriber of the source
                hops: list[float] = []

                async def on_hop(msg: Any) -> None:
                    hops.append((time.time() - json.loads(msg.data)["at"]) * 1000)

                hop_conn = await nats.connect(source.url)
                await hop_conn.subscribe("bench.in", cb=on_hop)
                await hop_conn.flush()
                first = 1000
                try:
                    for n in range(first, first + n_latency):
                        await send(n)
                        await pub.flush()
                        await asyncio.sleep(0.01)
                    if trigger_only:
                        await _until(lambda: listener.stats.created >= 20 + n_latency, 60)
                    else:
                        await watch.until(range(first, first + n_latency), 60)
                finally:
                    await hop_conn.close()
                p50 = p99 = float("nan")  # no executor: nothing gets RUNNING
                if not trigger_only:
                    lat = sorted((watch.running[n] - sent[n]) * 1000 for n in range(first, first + n_latency))
                    p50 = statistics.median(lat)
                    p99 = lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))]
                hop_p50 = statistics.median(hops) if hops else float("nan")

                # saturation: a child process publishes at RATE, faster than executions can start (in
                # this process its ~2,500 publishes/s would take the engine's CPU); count in the window
                ramp = 1.0  # the first second fills the pipeline
                stop = duration
                start_n = 100_000
                child = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-c",
                    PUBLISHER,
                    source.url,
                    str(start_n),
                    str(rate_wanted),
                    str(duration),
                    stdout=asyncio.subprocess.PIPE,
                )
                try:
                    assert child.stdout is not None
                    t0 = float((await asyncio.wait_for(child.stdout.readline(), 30)).split()[1])
                    await asyncio.sleep(max(0.0, t0 + ramp - time.time()))
                    created0, cpu0, server0 = listener.stats.created, _cpu(), _proc_cpu(server.pid)
                    appends0 = await _appended(rt)
                    await asyncio.sleep(max(0.0, t0 + duration - time.time()))
                    published = int((await asyncio.wait_for(child.stdout.readline(), 30)).split()[1])
                    await asyncio.wait_for(child.wait(), 10)
                finally:
                    if child.returncode is None:
                        child.kill()  # by its handle: the one process this bench started
                        await child.wait()
                created1, cpu1, server1 = listener.stats.created, _cpu(), _proc_cpu(server.pid)
                appends1 = await _appended(rt)
                await asyncio.sleep(0.5)  # the last RUNNING events of the window arrive
                window = [
                    t for i, t in watch.running.items() if i >= start_n and t0 + ramp <= t <= t0 + duration
                ]
                rate = len(window) / (duration - ramp)
                ended = sum(1 for i, t in watch.ended.items() if i >= start_n and t0 + ramp <= t <= t0 + stop)
                ended_rate = ended / (duration - ramp)
                created_rate = (created1 - created0) / (duration - ramp)
                cpu_per_msg = (cpu1 - cpu0) / max(1, len(window) or created1 - created0) * 1e6
                engine_busy = (cpu1 - cpu0) / (duration - ramp) * 100
                server_busy = (server1 - server0) / (duration - ramp) * 100
                offered = published / duration
                appends = sum(seq - appends0.get(name, 0) for name, seq in appends1.items())
                done = len(window) or int(created1 - created0)
            finally:
                await service.stop()
                await sub.unsubscribe()
                await stop_tasks(roles)
    finally:
        await pub.close()
    floor, sequential = await measure_floor(url)
    mode = "durable" if durable else "core"
    return (
        f"realtime p50_ms={p50:.1f} p99_ms={p99:.1f} hop_p50_ms={hop_p50:.2f} msgs_per_s={rate:.0f} "
        f"ended_per_s={ended_rate:.0f} "
        f"created_per_s={created_rate:.0f} cpu_us_per_msg={cpu_per_msg:.0f} offered_per_s={offered:.0f} "
        f"engine_cpu_pct={engine_busy:.0f} server_cpu_pct={server_busy:.0f} "
        f"appends_per_msg={appends / max(1, done):.1f} floor_appends_per_s={floor:.0f} "
        f"floor_append_ms={sequential / 80 * 1000:.2f} "
        f"n={n_latency} window_s={duration - ramp:.0f} consumer={mode} "
        f"roles={'trigger' if trigger_only else 'all'} "
        f"fsync={sync_interval()} "
        f"target_p50_ms={TARGET_P50_MS} target_msgs_per_s={TARGET_MSGS_PER_S} load={os.getloadavg()[0]:.1f}"
    )


async def _until(done: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit(f"the trigger did not create the executions within {timeout:.0f}s")
        await asyncio.sleep(0.01)


async def _appended(rt: Runtime) -> dict[str, int]:
    """Last sequence of every stream of the engine's server: the durable appends it acknowledged."""
    return {info.config.name or "": info.state.last_seq for info in await rt.store.js.streams_info()}


def _cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def _proc_cpu(pid: int | None) -> float:
    """CPU seconds of another process (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedServer(Path(tmp) / "nats")
        source = SourceServer(Path(tmp) / "source")
        try:
            url = server.start()
            source.start()
            line = await bench(url, server, source, Path(tmp))
        finally:
            source.stop()
            server.stop()
    print(line)


if __name__ == "__main__":
    run_async(main())
