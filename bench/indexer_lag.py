"""indexer_lag: how far the DuckDB projection trails the log under the throughput workload.

bench/throughput.py's workload (back-to-back 5-task executions, CONC lanes, DUR seconds, executor
and worker in this process, embedded server with fsync on every write) runs with the indexer
alongside, as in ``engine server local``. Every 100 ms the indexer's lag is sampled: messages
received but not applied, and the age of the oldest of them (``Indexer.lag()``, the value of
``engine_indexer_lag_ms`` on /metrics). Prints one line with p50/p95/max of the ms lag (target:
p95 <= 200 ms), and the machine's 1-minute load average before and after (the lag depends on it: the
write thread competes for the CPU and the GIL). Env: DUR (default 20), CONC (default 20).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.throughput import drive
from engine.aio import run_async, stop_tasks
from engine.runtime import Runtime
from eventstore.indexer import Indexer
from eventstore.server import EmbeddedServer


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(len(ordered) * q) - 1))] if ordered else 0.0


async def sample(indexer: Indexer, out: list[tuple[int, float]], stop: asyncio.Event) -> None:
    while not stop.is_set():
        out.append(indexer.lag())
        await asyncio.sleep(0.1)


async def main() -> None:
    duration = float(os.environ.get("DUR", "20"))
    lanes = int(os.environ.get("CONC", "20"))
    samples: list[tuple[int, float]] = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedServer(Path(tmp) / "nats")
        url = server.start()
        try:
            async with Runtime(nats_url=url, home=Path(tmp)) as rt:
                roles: list[asyncio.Task[Any]] = [
                    asyncio.create_task(rt.executor().run()),
                    asyncio.create_task(rt.worker(concurrency=64).run()),
                ]
                indexer = Indexer(rt.store, Path(tmp) / "index.duckdb")
                await indexer.start()
                stop = asyncio.Event()
                sampler = asyncio.create_task(sample(indexer, samples, stop))
                try:
                    done, failed, _taskruns, elapsed = await drive(rt, duration, lanes)
                    stop.set()
                    await sampler
                    t0 = time.perf_counter()
                    caught_up = await indexer.wait_caught_up(60)
                    drain_s = time.perf_counter() - t0
                    applied = int(
                        indexer.registry.get_sample_value("engine_indexer_applied_messages_total") or 0
                    )
                    rows = indexer.query("SELECT count(*) FROM executions")[0][0]
                finally:
                    stop.set()
                    await indexer.stop()
                    await stop_tasks(roles)
        finally:
            server.stop()
    ms = [m for _, m in samples]
    behind = [e for e, _ in samples]
    print(
        f"indexer_lag: p50_ms={pct(ms, 0.5):.0f} p95_ms={pct(ms, 0.95):.0f} max_ms={max(ms, default=0):.0f} "
        f"events={applied} mean_ms={statistics.fmean(ms) if ms else 0:.0f} "
        f"p95_behind={pct([float(b) for b in behind], 0.95):.0f} max_behind={max(behind, default=0)} "
        f"samples={len(samples)} executions={done} failed={failed} indexed={rows} "
        f"executions_per_s={done / elapsed:.1f} drain_s={drain_s:.2f} caught_up={caught_up} "
        f"lanes={lanes} duration_s={elapsed:.1f} load1={load_before:.2f}->{os.getloadavg()[0]:.2f} "
        f"cpus={os.cpu_count()} target_p95_ms=200"
    )


if __name__ == "__main__":
    run_async(main())
