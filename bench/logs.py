"""logs: p95 of GET /api/v1/logs/{execution} pages with 100,000 lines indexed (target <= 100 ms).

One execution with 100,000 log lines (and 100,000 lines of 50 other executions interleaved),
written through the indexer's batch path (``Indexer.apply``, 1,000 lines per transaction);
pages of 100 lines at random offsets (first, middle, last), and a minLevel filter, through the
API in process.
"""

from __future__ import annotations

import asyncio
import gc
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from engine.core import events as ev
from eventstore import subjects as S
from eventstore.indexer import Indexer, Msg
from eventstore.store import LogLine, _log_enc
from webserver.app import Auth, create_app

TARGET = "L" * 22
LEVELS = ["INFO"] * 6 + ["DEBUG", "WARN", "ERROR"]


async def main(lines: int = 100_000, rounds: int = 200) -> None:
    rng = random.Random(3)
    with tempfile.TemporaryDirectory() as tmp:
        ix = Indexer(None, Path(tmp) / "logs.duckdb")  # type: ignore[arg-type]  # the batch path needs no NATS
        created = ev.ExecutionCreated(
            date="2026-01-01T00:00:00Z",
            execution_id=TARGET,
            namespace="bench",
            flow_id="logs",
            flow_revision=1,
        )
        await ix.apply([Msg(f"{S.EVENTS}_{S.shard(TARGET)}", 1, S.events(TARGET), ev.encode([created]))])
        msgs = []
        for i in range(lines * 2):
            eid = TARGET if i % 2 == 0 else f"O{i % 50:021d}"
            line = LogLine(
                f"2026-01-01T00:{(i // 60000) % 60:02d}:{(i // 1000) % 60:02d}.{i % 1000:03d}Z",
                rng.choice(LEVELS),
                f"line {i} of a long task with some text to make it realistic",
                f"{eid}tr{i % 10}",
                f"task{i % 10}",
                1,
            )
            msgs.append(Msg(S.LOGS, i + 1, S.logs(eid), _log_enc.encode(line)))
        t0 = time.perf_counter()
        for k in range(0, len(msgs), 1000):
            await ix.apply(msgs[k : k + 1000])
        insert_s = time.perf_counter() - t0
        del msgs
        gc.collect()
        ix.checkpoint()
        app = create_app(None, ix, Auth())
        timings: list[float] = []
        pages = lines // 100
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
        ) as c:
            url = f"/api/v1/logs/{TARGET}"
            first = (await c.get(url, params={"size": 100})).json()
            assert first["total"] == lines, first["total"]
            for r in range(rounds):
                params: dict[str, object] = {
                    "size": 100,
                    "page": rng.choice([1, pages // 2, pages, rng.randint(1, pages)]),
                }
                if r % 4 == 3:
                    params["minLevel"] = "WARN"
                    params["page"] = 1
                t = time.perf_counter()
                resp = await c.get(url, params=params)
                timings.append(time.perf_counter() - t)
                resp.raise_for_status()
                assert len(resp.json()["results"]) == 100
        ix.close()
    timings.sort()
    p95 = timings[int(len(timings) * 0.95) - 1] * 1000
    print(
        f"logs lines={lines} pages={len(timings)} p95_ms={p95:.1f} "
        f"median_ms={statistics.median(timings) * 1000:.1f} max_ms={timings[-1] * 1000:.1f} "
        f"index_lines_per_s={2 * lines / insert_s:.0f} target_p95_ms=100"
    )


if __name__ == "__main__":
    asyncio.run(main())
