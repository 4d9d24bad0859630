"""throughput: back-to-back executions of a 5-task flow, C concurrent lanes, for D seconds.

Embedded server with fsync on every write (`sync_interval: always`). Prints executions/s and
taskruns/s, where a taskrun is counted when the history records it terminal (failed executions'
taskruns too, but never a taskrun that did not run: bench/_watcher.py follows the events in a
process of its own, as a client would, so that its decoding is not counted against the engine);
the durable appends per taskrun (every JetStream stream's last sequence, before and after: events,
inputs, work, logs, KV puts); and the floor measured on the same server in the same run
(bench/floor.py: acknowledged appends/s, 100 in flight) with the ratio.

Executions are created as the API, webhooks and `engine run` create them: with an id made at random
just now (``fresh``), so that an executor in the same process stores the creation as its first step
instead of reading it back from the inbox. With PROCS=1 or NODES=3 the executors are other processes
and every creation takes the inbox.

In this process the collector is set as in the serving processes (``engine.cli.common.gc_started``:
start-up objects frozen, young collections every 50,000 allocations); GC=python keeps Python's own.

Env: DUR (seconds, default 20), CONC (lanes, default 20), PROCS=1 runs the executor
and the worker as two `engine server` processes (the deployment shape) instead of in this process.

NODES=3 runs on a real 3-node NATS cluster on loopback (eventstore.cluster, streams with 3 replicas)
with EXECUTORS (default 2) executor and WORKERS (default 3) worker processes; EXECUTORS/WORKERS also
apply to PROCS=1 on the embedded server, for the same process shape on one node. COMBINED=1 runs
EXECUTORS `engine server node` processes instead (an executor and a worker each: reports handed over
in memory) and no worker process.
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

from bench._common import chain_flow
from bench.floor import measure as measure_floor
from engine.aio import run_async
from engine.cli.common import gc_for_startup, gc_started
from engine.ids import new_execution_id
from engine.runtime import Runtime
from eventstore.cluster import LocalCluster
from eventstore.server import EmbeddedServer, sync_interval

ROOT = Path(__file__).resolve().parent.parent


async def appended(rt: Runtime) -> dict[str, int]:
    """Last sequence of every stream: the count of durable appends it ever acknowledged."""
    js = rt.store.nc.jetstream()
    return {info.config.name or "": info.state.last_seq for info in await js.streams_info()}


async def drive(rt: Runtime, url: str, duration: float, lanes: int) -> tuple[int, int, int, float]:
    flow = await rt.flows.deploy(chain_flow(5, "thru5"))
    waiters: dict[str, asyncio.Future[str]] = {}
    taskruns = 0
    # The watcher decodes every event in a process of its own, as a client would (bench/_watcher.py).
    watcher = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "bench" / "_watcher.py"),
        url,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert watcher.stdin is not None and watcher.stdout is not None
    if await watcher.stdout.readline() != b"ready\n":
        raise RuntimeError("bench/_watcher.py did not start")

    async def ended() -> None:
        nonlocal taskruns
        assert watcher.stdout is not None
        async for line in watcher.stdout:
            eid, state, count = line.decode().split()
            fut = waiters.get(eid)
            if fut is not None and not fut.done():
                taskruns += int(count)
                fut.set_result(state)

    reader = asyncio.create_task(ended())
    done = failed = 0
    stop_at = time.perf_counter() + duration

    async def lane() -> None:
        nonlocal done, failed
        while time.perf_counter() < stop_at:
            eid = new_execution_id()
            fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            waiters[eid] = fut
            # fresh: the id was made at random just now, as the API, webhooks and `engine run` create
            # theirs; made here, so that the waiter is set before the execution can end.
            await rt.create_execution(flow, {}, execution_id=eid, fresh=True)
            state = await asyncio.wait_for(fut, 60)
            del waiters[eid]
            done += 1
            failed += state != "SUCCESS"

    t0 = time.perf_counter()
    try:
        await asyncio.gather(*(lane() for _ in range(lanes)))
        elapsed = time.perf_counter() - t0
    finally:
        watcher.stdin.close()
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await watcher.wait()
    return done, failed, taskruns, elapsed


async def main() -> None:
    duration = float(os.environ.get("DUR", "20"))
    lanes = int(os.environ.get("CONC", "20"))
    nodes = int(os.environ.get("NODES", "1"))
    procs = os.environ.get("PROCS") == "1" or nodes > 1
    executors = int(os.environ.get("EXECUTORS", "2" if nodes > 1 else "1"))
    workers = int(os.environ.get("WORKERS", "3" if nodes > 1 else "1"))
    replicas = min(3, nodes)
    combined = os.environ.get("COMBINED") == "1"
    if os.environ.get("GC") != "python":
        gc_for_startup()
    with tempfile.TemporaryDirectory() as tmp:
        cluster: LocalCluster | EmbeddedServer
        if nodes > 1:
            cluster = LocalCluster(Path(tmp) / "nats", size=nodes)
            cluster.start()
            url = cluster.url
        else:
            cluster = EmbeddedServer(Path(tmp) / "nats")
            url = cluster.start()
        children: list[subprocess.Popen[bytes]] = []
        saved = os.environ.get("ENGINE_REPLICAS")
        os.environ["ENGINE_REPLICAS"] = str(replicas)
        try:
            async with Runtime(nats_url=url, home=Path(tmp)) as rt:
                roles: list[asyncio.Task[Any]] = []
                if procs:
                    env = {
                        **os.environ,
                        "ENGINE_NATS_URL": url,
                        "ENGINE_HOME": tmp,
                        "ENGINE_REPLICAS": str(replicas),
                        "PYTHONPATH": str(ROOT),
                    }
                    if combined:  # each process an executor and a worker (reports handed over in memory)
                        shapes = [["node", "--concurrency", "64"]] * executors
                    else:
                        shapes = [["executor"]] * executors + [["worker", "--concurrency", "64"]] * workers
                    for role in shapes:
                        cmd = [sys.executable, "-m", "engine", "server", *role]
                        children.append(subprocess.Popen(cmd, env=env, cwd=ROOT, stderr=subprocess.DEVNULL))
                    await asyncio.sleep(1.0 + 0.5 * len(shapes))
                else:
                    roles = [
                        asyncio.create_task(rt.executor().run()),
                        asyncio.create_task(rt.worker(concurrency=64).run()),
                    ]
                if os.environ.get("GC") != "python":
                    gc_started()  # as `engine run` and `engine server` once their roles are up
                before = await appended(rt)
                cpu0 = time.process_time()
                done, failed, taskruns, elapsed = await drive(rt, url, duration, lanes)
                cpu = time.process_time() - cpu0
                after = await appended(rt)
                floor, _ = await measure_floor(url)
                for task in roles:
                    task.cancel()
                await asyncio.gather(*roles, return_exceptions=True)
        finally:
            if saved is None:
                os.environ.pop("ENGINE_REPLICAS", None)
            else:
                os.environ["ENGINE_REPLICAS"] = saved
            for child in children:
                child.send_signal(signal.SIGTERM)
            for child in children:
                try:
                    child.wait(10)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
            cluster.stop()
    shape = f"{executors + workers} executors={executors} workers={workers}" if procs else "1"
    if procs and combined:
        shape = f"{executors} nodes_with_executor_and_worker={executors}"
    appends = sum(after.get(name, 0) - seq for name, seq in before.items()) + sum(
        seq for name, seq in after.items() if name not in before
    )
    events = sum(after[n] - before.get(n, 0) for n in after if n.startswith("EVENTS"))
    rate = taskruns / elapsed
    per = max(taskruns, 1)
    families: dict[str, int] = {}
    for name, seq in after.items():
        family = name.rstrip("0123456789").rstrip("_")
        families[family] = families.get(family, 0) + seq - before.get(name, 0)
    detail = " ".join(f"{k}={v / per:.2f}" for k, v in sorted(families.items(), key=lambda kv: -kv[1]) if v)
    print(f"appends per taskrun by stream: {detail}")
    from eventstore.batching import COUNTS

    if COUNTS.messages:
        print(
            f"batching (this process): messages={COUNTS.messages} commits={COUNTS.commits} "
            f"messages_per_commit={COUNTS.messages / max(COUNTS.commits, 1):.2f} "
            f"refused_batches={COUNTS.refused_batches}"
        )
    print(
        f"throughput taskruns_per_s={rate:.1f} executions_per_s={done / elapsed:.1f} taskruns={taskruns} "
        f"executions={done} failed={failed} appends_per_taskrun={appends / per:.2f} "
        f"event_appends_per_taskrun={events / per:.2f} floor_appends_per_s={floor:.0f} "
        f"of_floor={rate / floor:.2f} lanes={lanes} procs={shape} nodes={nodes} replicas={replicas} "
        f"duration_s={elapsed:.1f} fsync={sync_interval()} target_taskruns_per_s=1500 "
        f"cpu_us_per_taskrun={cpu / per * 1e6:.0f}"
    )


if __name__ == "__main__":
    run_async(main())
