"""cpu: what the engine's own code costs per taskrun, with no server and no disk.

The real executor and worker (``engine.testing.run.MemoryEngine``) on the in-memory store, on
the engine's event loop (uvloop), run executions of the same 5-task flow as
``bench/throughput.py``, 20 lanes back to back; the process's CPU time is divided by the
taskruns it ran. What ``bench/throughput.py`` adds on top is nats-py's and the server's share;
this one moves only with the executor, the decider and the worker.

CPU time still moves with what else the machine runs (on a shared 2-core machine, 640-850 µs for
the same code within minutes). Under ``valgrind --tool=callgrind`` it counts instructions, which
do not: two runs of the same code were 0.5 % apart. Run it twice (N=200 and N=400) and divide
the difference by the 1,000 taskruns between them, so that start-up does not count; give it
ENGINE_LEASE_TTL=60 there, since 50 times slower, a collection can outlast the 3 s partition lease:

    ENGINE_LEASE_TTL=60 N=400 valgrind --tool=callgrind python3.11 bench/cpu.py

It also prints ``calib_ms``, a fixed pure-Python loop timed in the same process: machines differ
(the same code took 390 µs per taskrun in ``bench/throughput.py`` on one and 1,190 on another),
and ``per_calib`` (CPU per taskrun divided by ``calib_ms``) compares runs made on different ones.

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
from engine.aio import run_async
from engine.cli.common import gc_for_startup, gc_started
from engine.core import events as ev
from engine.core.states import TERMINAL, State
from engine.ids import new_execution_id
from engine.testing.run import MemoryEngine
from workers import worker as worker_module

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
        gc_started()  # the collector as `engine run` and `engine server` set it once their roles are up
        taskruns = failed = 0
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(lanes)))
        return taskruns, failed, time.process_time() - cpu0, time.perf_counter() - wall0


def main() -> None:
    # The flow's tasks take microseconds: a native run announces none of its attempts as started
    # (workers.worker.START_REPORT_DELAY, 20 ms), but under valgrind, 50 times slower, many would
    # be, and the count would include work a native run never does.
    worker_module.START_REPORT_DELAY = 3600.0
    executions = int(os.environ.get("N", "2000"))
    lanes = int(os.environ.get("CONC", "20"))
    calib = calibrate()
    gc_for_startup()
    taskruns, failed, cpu, wall = run_async(measure(executions, lanes))  # uvloop, as the engine
    if taskruns != executions * TASKS or failed:
        raise SystemExit(f"cpu: {taskruns} taskruns ended and {failed} executions failed of {executions}")
    per = cpu / taskruns * 1e6
    print(
        f"cpu cpu_us_per_taskrun={per:.0f} taskruns={taskruns} executions={executions} lanes={lanes} "
        f"wall_s={wall:.2f} calib_ms={calib:.1f} per_calib={per / calib:.1f}"
    )


if __name__ == "__main__":
    main()
