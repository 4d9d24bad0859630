"""seq40_memory: one execution of 40 sequential debug.Return tasks on the in-memory store.

The real executor and worker (``engine.testing.run.MemoryEngine``), no nats-server: what the
engine's own code costs per step, without the server's round trips and fsyncs. Prints the first
run (templates compiled, plugins resolved) and the median of the runs after it.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import chain_flow
from engine.testing.run import MemoryEngine


async def main(runs: int = 20) -> None:
    async with MemoryEngine() as eng:
        flow = await eng.deploy(chain_flow(40, "seq40"))
        times = []
        for _ in range(runs + 1):
            began = time.perf_counter()
            state = await eng.run(flow)
            times.append(time.perf_counter() - began)
            assert state.state == "SUCCESS" and len(state.taskruns) == 40, state.state
    print(
        f"seq40_memory first_ms={times[0] * 1000:.1f} median_ms={statistics.median(times[1:]) * 1000:.1f} "
        f"runs={runs} target_ms=50"
    )


if __name__ == "__main__":
    asyncio.run(main())
