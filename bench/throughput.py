"""throughput: back-to-back executions of a 5-task flow, C concurrent lanes, for D seconds.

Everything runs in one process on the embedded server (fsync on every write). Prints
executions/s and taskruns/s. Env: DUR (seconds, default 20), CONC (lanes, default 10).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import chain_flow
from engine.runtime import Runtime, new_execution_id
from engine.states import TERMINAL, State
from eventstore import events as ev


async def main() -> None:
    duration = float(os.environ.get("DUR", "20"))
    lanes = int(os.environ.get("CONC", "10"))
    with tempfile.TemporaryDirectory() as tmp:
        async with Runtime(home=Path(tmp)) as rt:
            flow = await rt.flows.deploy(chain_flow(5, "thru5"))
            roles = [
                asyncio.create_task(rt.executor().run()),
                asyncio.create_task(rt.worker(concurrency=64).run()),
            ]
            waiters: dict[str, asyncio.Future[str]] = {}

            async def on_event(msg: Any) -> None:
                eid = msg.subject.split(".", 2)[2]
                fut = waiters.get(eid)
                if fut is None or fut.done():
                    return
                for event in ev.decode(msg.data):
                    if isinstance(event, ev.ExecutionStateChanged) and State(event.state) in TERMINAL:
                        fut.set_result(event.state)

            sub = await rt.store.nc.subscribe("ev.>", cb=on_event)
            done = 0
            failed = 0
            stop_at = time.perf_counter() + duration

            async def lane() -> None:
                nonlocal done, failed
                while time.perf_counter() < stop_at:
                    eid = new_execution_id()
                    fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
                    waiters[eid] = fut
                    await rt.create_execution(flow, {}, execution_id=eid)
                    state = await asyncio.wait_for(fut, 60)
                    del waiters[eid]
                    done += 1
                    failed += state != "SUCCESS"

            t0 = time.perf_counter()
            await asyncio.gather(*(lane() for _ in range(lanes)))
            elapsed = time.perf_counter() - t0
            await sub.unsubscribe()
            for task in roles:
                task.cancel()
            await asyncio.gather(*roles, return_exceptions=True)
    print(
        f"throughput executions_per_s={done / elapsed:.1f} taskruns_per_s={done * 5 / elapsed:.1f} "
        f"executions={done} failed={failed} lanes={lanes} duration_s={elapsed:.1f} fsync=always "
        "target_taskruns_per_s=1500"
    )


if __name__ == "__main__":
    asyncio.run(main())
