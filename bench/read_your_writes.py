"""read_your_writes: POST /api/v1/executions/NS/ID then GET /api/v1/executions/{id}, 1,000 times.

Everything in one process on an embedded server in a temporary data directory: an executor, a
worker, the indexer and the API (in process, httpx ASGI transport). Prints how many GETs answered
200 (the target: every one) and the latency of the POST and of the GET; exits 1 on any other answer.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from eventstore.indexer import Indexer
from webserver.app import Auth, create_app

FLOW = """
id: ryw
namespace: bench
tasks:
  - id: hi
    type: io.kestra.plugin.core.debug.Return
    format: hi
"""


def p95(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.95) - 1]


async def main(tries: int = 1000) -> int:
    from engine.runtime import Runtime

    with tempfile.TemporaryDirectory() as tmp:
        async with Runtime(home=Path(tmp)) as rt:
            roles = [asyncio.create_task(rt.executor().run()), asyncio.create_task(rt.worker().run())]
            indexer = Indexer(rt.store, Path(tmp) / "index.duckdb")
            await indexer.start()
            app = create_app(rt, indexer, Auth())
            ok, posts, gets = 0, [], []
            transport = httpx.ASGITransport(app=app)
            try:
                await rt.flows.deploy(FLOW)
                async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
                    for _ in range(tries):
                        t0 = time.perf_counter()
                        created = await c.post("/api/v1/executions/bench/ryw")
                        t1 = time.perf_counter()
                        got = await c.get(f"/api/v1/executions/{created.json()['id']}")
                        t2 = time.perf_counter()
                        posts.append(t1 - t0)
                        gets.append(t2 - t1)
                        if got.status_code == 200:
                            ok += 1
                        else:
                            print(f"GET answered {got.status_code}: {got.text[:200]}", file=sys.stderr)
            finally:
                await indexer.stop()
                for task in roles:
                    task.cancel()
                await asyncio.gather(*roles, return_exceptions=True)
    print(
        f"read_your_writes ok={ok}/{tries} post_p50_ms={statistics.median(posts) * 1000:.1f} "
        f"post_p95_ms={p95(posts) * 1000:.1f} get_p50_ms={statistics.median(gets) * 1000:.1f} "
        f"get_p95_ms={p95(gets) * 1000:.1f} target=all"
    )
    return 0 if ok == tries else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)))
