"""floor: what the disk lets JetStream acknowledge, measured on the same server as the benchmark.

Two figures every speed claim is compared with:

* ``appends_per_s``: acknowledged appends per second to a file-stored stream with ``in_flight`` publishes
  outstanding (the throughput floor: a taskrun can never cost less than its durable writes);
* ``sequential_s``: ``n`` appends one after the other, each waiting for its ack (the latency floor of a chain
  of steps: seq40 writes about 80 events one after another).

With ``sync_interval: always`` (the embedded default) every acknowledged append is on disk. The scratch
stream is deleted afterwards. Alone: ``python bench/floor.py`` starts its own embedded server.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

import nats
from nats.js.api import StorageType, StreamConfig

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

STREAM = "BENCH_FLOOR"


async def measure(url: str, seconds: float = 3.0, in_flight: int = 100, n: int = 80) -> tuple[float, float]:
    """(acknowledged appends/s with ``in_flight`` outstanding, seconds for ``n`` sequential appends)."""
    nc = await nats.connect(servers=url.split(","))  # a cluster's ENGINE_NATS_URL lists every node
    try:
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name=STREAM, subjects=["bench.floor.>"], storage=StorageType.FILE))
        payload = b"x" * 300  # about the size of one encoded step
        for _ in range(20):  # warm the stream's files
            await js.publish("bench.floor.w", payload)
        t0 = time.perf_counter()
        for i in range(n):
            await js.publish(f"bench.floor.s{i % 4}", payload)
        sequential = time.perf_counter() - t0

        count = 0
        stop_at = time.perf_counter() + seconds

        async def lane(k: int) -> None:
            nonlocal count
            while time.perf_counter() < stop_at:
                await js.publish(f"bench.floor.p{k}", payload)
                count += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(lane(k) for k in range(in_flight)))
        rate = count / (time.perf_counter() - t0)
        await js.delete_stream(STREAM)
        return rate, sequential
    finally:
        await nc.close()


def main() -> None:
    from engine.aio import run_async
    from eventstore.server import EmbeddedServer, sync_interval

    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedServer(Path(tmp) / "nats")
        url = server.start()
        try:
            rate, sequential = run_async(measure(url))
        finally:
            server.stop()
    print(
        f"floor appends_per_s={rate:.0f} sequential80_s={sequential:.3f} in_flight=100 "
        f"fsync={sync_interval()}"
    )


if __name__ == "__main__":
    main()
