"""cpu: what the engine's own code costs per taskrun, with no server and no disk.

The real executor and worker (``engine.testing.run.MemoryEngine``) on the in-memory store run
executions of the same 5-task flow as ``bench/throughput.py``, 20 lanes back to back, and the
process's CPU time is divided by the taskruns it ran. What ``bench/throughput.py`` adds on top is
nats-py's and the server's share; what this one measures is what a change to the executor, the
decider or the worker moves. It repeats better than the throughput on a busy machine (about ±3 %
against ±15 %), and under ``valgrind --tool=callgrind`` it counts instructions, which do not move
at all with the machine's load.

It also prints ``calib_ms``, a fixed pure-Python loop timed in the same process: machines differ
(the same code took 390 µs per taskrun on one and 1,190 on another), and ``cpu_us_per_taskrun``
divided by ``calib_ms`` compares runs made on different machines.

Env: N (executions, default 2,000), CONC (lanes, default 20).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import chain_flow
from engine.core import events as ev
from engine.core.states import TERMINAL, State
from engine.ids import new_execution_id
from engine.testing.run import MemoryEngine

TASKS = 5


def calibrate() -> float:
    """Milliseconds for one million additions in a Python loop (the machine's Python speed)."""
    best = float("inf")
    for _ in range(3):
        began = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i
        best = min(best, time.perf_counter() - began)
    return best * 1000


async def measure(executions: int, lanes: int) -> tuple[int, int, float, float]:
    """(taskruns ended, executions failed, CPU seconds, wall seconds) for ``executions`` runs."""
    async with MemoryEngine() as eng:
        flow = await eng.deploy(chain_flow(TASKS, "cpu5"))
        taskruns = failed = 0
        left = executions

        async def one() -> None:
            nonlocal taskruns, failed
            done = asyncio.Event()

            async def on_events(events: list[ev.Event]) -> None:
                nonlocal taskruns, failed
                for e in events:
                    if isinstance(e, ev.TaskRunStateChanged) and State(e.state) in TERMINAL:
                        taskruns += 1
                    elif isinstance(e, ev.ExecutionStateChanged) and State(e.state) in TERMINAL:
                        failed += State(e.state) is not State.SUCCESS
                        done.set()

            execution_id = new_execution_id()
            sub = await eng.store.watch_events(execution_id, on_events)
            try:
                await eng.start(flow, execution_id=execution_id, fresh=True)
                await asyncio.wait_for(done.wait(), 30)
            finally:
                await sub.unsubscribe()

        async def lane() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                await one()

        for _ in range(lanes):  # warm: templates compiled, plugins resolved
            await one()
        taskruns = failed = 0
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(lanes)))
        return taskruns, failed, time.process_time() - cpu0, time.perf_counter() - wall0


def main() -> None:
    executions = int(os.environ.get("N", "2000"))
    lanes = int(os.environ.get("CONC", "20"))
    calib = calibrate()
    taskruns, failed, cpu, wall = asyncio.run(measure(executions, lanes))
    if taskruns != executions * TASKS or failed:
        raise SystemExit(f"cpu: {taskruns} taskruns ended and {failed} executions failed of {executions}")
    per = cpu / taskruns * 1e6
    print(
        f"cpu cpu_us_per_taskrun={per:.0f} taskruns={taskruns} executions={executions} lanes={lanes} "
        f"wall_s={wall:.2f} calib_ms={calib:.1f} per_calib={per / calib:.1f}"
    )


if __name__ == "__main__":
    main()
