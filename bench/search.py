"""search: p95 of GET /api/v1/executions/search with 100,000 executions indexed (target <= 20 ms).

Synthetic executions (20 namespaces, 50 flows, mixed states and labels, 2 taskruns each, start
dates over 30 days) go through the indexer's batch path (``Indexer.apply``, 1,000 messages per
transaction); the queries go through the API in process (httpx ASGI transport), mixing filters,
text search, sorting and deep pages.
"""

from __future__ import annotations

import asyncio
import gc
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from engine.core import events as ev
from eventstore import subjects as S
from eventstore.indexer import Indexer, Msg
from webserver.app import Auth, create_app

STATES = ["SUCCESS"] * 8 + ["FAILED", "WARNING", "KILLED", "RUNNING"]


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def execution_msg(i: int, now: datetime, rng: random.Random) -> Msg:
    eid = f"E{i:021d}"
    start = now - timedelta(seconds=rng.randint(0, 30 * 86400))
    ns = f"company.team{i % 20}"
    flow = f"flow{i % 50}"
    state = rng.choice(STATES)
    events: list[Any] = [
        ev.ExecutionCreated(
            date=iso(start),
            execution_id=eid,
            namespace=ns,
            flow_id=flow,
            flow_revision=1,
            inputs={"n": i},
            labels={"env": rng.choice(["prod", "dev"]), "owner": f"user{i % 7}"},
        ),
        ev.ExecutionStateChanged(date=iso(start + timedelta(milliseconds=5)), state="RUNNING"),
    ]
    for t in range(2):
        trid = f"{eid}t{t}"
        events += [
            ev.TaskRunCreated(date=iso(start), taskrun_id=trid, task_id=f"task{t}"),
            ev.TaskRunStateChanged(
                date=iso(start + timedelta(milliseconds=10)), taskrun_id=trid, state="SUCCESS"
            ),
        ]
    if state != "RUNNING":
        events.append(
            ev.ExecutionStateChanged(date=iso(start + timedelta(seconds=rng.randint(1, 600))), state=state)
        )
    return Msg(f"{S.EVENTS}_{S.shard(eid)}", i + 1, S.events(eid), ev.encode(events))


QUERIES: list[dict[str, Any]] = [
    {},
    {"namespace": "company.team3"},
    {"namespace": "company", "state": "FAILED"},
    {"flowId": "flow7", "namespace": "company.team7"},
    {"labels": "env:prod", "state": ["SUCCESS", "WARNING"]},
    {"q": "E00000000000000004242"},
    {"q": "team1"},
    {"timeRange": "P1D"},
    {"startDate": "2000-01-01T00:00:00Z", "sort": "state.duration:desc"},
    {"page": 200, "size": 25},
    {"namespace": "company.team5", "page": 10, "size": 100, "sort": "state.endDate:asc"},
]


async def main(n: int = 100_000, rounds: int = 30) -> None:
    rng = random.Random(7)
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        ix = Indexer(None, Path(tmp) / "bench.duckdb")  # type: ignore[arg-type]  # the batch path needs no NATS
        # one message per execution: shards interleave like the real streams
        msgs = [execution_msg(i, now, rng) for i in range(n)]
        per_stream: dict[str, int] = {}
        fixed = []
        for m in msgs:
            per_stream[m.stream] = per_stream.get(m.stream, 0) + 1
            fixed.append(Msg(m.stream, per_stream[m.stream], m.subject, m.data))
        t0 = time.perf_counter()
        for k in range(0, n, 1000):
            await ix.apply(fixed[k : k + 1000])
        insert_s = time.perf_counter() - t0
        del msgs, fixed
        gc.collect()
        ix.checkpoint()
        count = ix.query("SELECT count(*) FROM executions")[0][0]
        assert count == n, count
        live = await measure(ix, rounds)
        ix.close()
        ix = Indexer(None, Path(tmp) / "bench.duckdb")  # type: ignore[arg-type]
        reopened = await measure(ix, rounds)
        ix.close()
    p95 = live[int(len(live) * 0.95) - 1] * 1000
    p95_reopened = reopened[int(len(reopened) * 0.95) - 1] * 1000
    print(
        f"search executions={n} queries={len(live)} p95_ms={p95:.1f} "
        f"median_ms={statistics.median(live) * 1000:.1f} max_ms={live[-1] * 1000:.1f} "
        f"p95_reopened_ms={p95_reopened:.1f} index_msgs_per_s={n / insert_s:.0f} target_p95_ms=20"
    )


async def measure(ix: Indexer, rounds: int) -> list[float]:
    """Sorted latencies of ``rounds`` passes over QUERIES through the API."""
    app = create_app(None, ix, Auth())
    timings: list[float] = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as c:
        for q in QUERIES:  # warm-up
            (await c.get("/api/v1/executions/search", params=q)).raise_for_status()
        for _ in range(rounds):
            for q in QUERIES:
                t = time.perf_counter()
                r = await c.get("/api/v1/executions/search", params=q)
                timings.append(time.perf_counter() - t)
                r.raise_for_status()
    return sorted(timings)


if __name__ == "__main__":
    asyncio.run(main())
