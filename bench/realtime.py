"""realtime: NATS RealtimeTrigger, from a message published on a source server to its execution RUNNING.

The engine runs on its embedded server (executor, worker and the trigger role in this process);
a second nats-server on a free loopback port is the source. A flow with
``io.kestra.plugin.nats.RealtimeTrigger`` listens to it. Each message carries its publish time
(wall clock); the latency is the date of the execution's RUNNING event minus that time.

1. latency: N messages (default 300), one every 10 ms, p50 and p99.
2. throughput: messages published back to back for DUR seconds (default 5); messages/s turned
   into RUNNING executions, from the first publish to the last RUNNING event.

Env: N, DUR, DURABLE=1 (a durable JetStream consumer instead of a core subscription).
Every process started here is stopped by PID at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nats

from engine.aio import stop_tasks
from engine.core import events as ev
from engine.runtime import Runtime, run_async
from eventstore.server import EmbeddedServer
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


class Watch:
    """RUNNING dates by the message number each execution was started for."""

    def __init__(self) -> None:
        self.number: dict[str, int] = {}
        self.running: dict[int, float] = {}
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

    async def until(self, numbers: range, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not all(n in self.running for n in numbers):
            left = deadline - time.monotonic()
            if left <= 0:
                missing = sum(1 for n in numbers if n not in self.running)
                raise SystemExit(f"{missing} message(s) never reached RUNNING within {timeout:.0f}s")
            self.changed.clear()
            await asyncio.wait({asyncio.ensure_future(self.changed.wait())}, timeout=min(left, 0.5))


async def bench(url: str, source: SourceServer, tmp: Path) -> str:
    n_latency = int(os.environ.get("N", "300"))
    duration = float(os.environ.get("DUR", "5"))
    durable = os.environ.get("DURABLE") == "1"
    pub = await nats.connect(source.url)
    try:
        extra = ""
        if durable:
            await pub.jetstream().add_stream(name="BENCH", subjects=["bench.>"])
            extra = "    durableId: bench\n    deliverPolicy: New\n"
        async with Runtime(nats_url=url, home=tmp) as rt:
            roles = [
                asyncio.create_task(rt.executor().run()),
                asyncio.create_task(rt.worker(concurrency=64).run()),
            ]
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
                await watch.until(range(20), 30)

                first = 1000
                for n in range(first, first + n_latency):
                    await send(n)
                    await pub.flush()
                    await asyncio.sleep(0.01)
                await watch.until(range(first, first + n_latency), 60)
                lat = sorted((watch.running[n] - sent[n]) * 1000 for n in range(first, first + n_latency))
                p50 = statistics.median(lat)
                p99 = lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))]

                # saturation: publish faster than executions can start, count RUNNING in the window
                start_n = 100_000
                n = start_n
                t0 = time.time()
                stop_at = time.monotonic() + duration
                while time.monotonic() < stop_at:
                    for _ in range(20):
                        await send(n)
                        n += 1
                    await pub.flush()
                    await asyncio.sleep(0.002)
                await asyncio.sleep(0.5)  # the last RUNNING events of the window arrive
                ramp = 1.0  # the first second fills the pipeline
                window = [
                    t for i, t in watch.running.items() if i >= start_n and t0 + ramp <= t <= t0 + duration
                ]
                rate = len(window) / (duration - ramp)
                published = n - start_n
            finally:
                await service.stop()
                await sub.unsubscribe()
                await stop_tasks(roles)
    finally:
        await pub.close()
    mode = "durable" if durable else "core"
    return (
        f"realtime p50_ms={p50:.1f} p99_ms={p99:.1f} msgs_per_s={rate:.0f} n={n_latency} "
        f"published={published} window_s={duration - 1.0:.0f} consumer={mode} fsync=always target_p50_ms=10"
    )


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedServer(Path(tmp) / "nats")
        source = SourceServer(Path(tmp) / "source")
        try:
            url = server.start()
            source.start()
            line = await bench(url, source, Path(tmp))
        finally:
            source.stop()
            server.stop()
    print(line)


if __name__ == "__main__":
    run_async(main())
