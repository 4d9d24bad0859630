"""cold: wall time of ``engine run`` of a one-task flow in a fresh data dir (median of 5).

Prints the median wall (process start to exit, as a person waits for it), its ratio to the #16
target, and a breakdown measured in a second child process that does what ``engine run`` does, one
phase after the other: the interpreter's own start, the imports, the embedded server's start with the
streams' creation, the execution (roles started, flow deployed, run to its end) and the stop (roles,
connection, server). Bytecode is compiled first, as ``pip install`` does: this machine sets
PYTHONDONTWRITEBYTECODE, and without cached bytecode every run compiles ~150 modules again.
"""

from __future__ import annotations

import compileall
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import chain_flow, engine_run

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 0.6

# What `engine run` does, phase by phase, in a fresh interpreter (see the module's docstring).
_PHASES = r"""
import time
t0 = time.perf_counter()
import asyncio, json, sys
from pathlib import Path
import engine.cli  # the command line, as `python -m engine` loads it
from engine.aio import run_async, stop_tasks
from engine.ids import new_execution_id
from engine.runtime import Runtime
import engine.executor, workers.worker, plugins.registry  # the roles' modules, as the session loads them
plugins.registry.default_registry()
rt = Runtime(home=Path(sys.argv[2]))
imported = time.perf_counter()

async def phases():
    out = {"import_s": imported - t0}
    t = time.perf_counter()
    await rt.__aenter__()
    out["server_s"] = time.perf_counter() - t
    t = time.perf_counter()
    tasks = [asyncio.create_task(rt.executor().run()), asyncio.create_task(rt.worker().run())]
    flow = await rt.flows.deploy(sys.argv[1])
    eid = new_execution_id()  # made at random, handed to the executor as `engine run` does (fresh)
    state = await rt.wait_terminal(eid, lambda: rt.create_execution(flow, {}, execution_id=eid, fresh=True))
    assert state.state == "SUCCESS", state.state
    out["execution_s"] = time.perf_counter() - t
    t = time.perf_counter()
    await stop_tasks(tasks)
    await rt.__aexit__(None, None, None)
    out["stop_s"] = time.perf_counter() - t
    return out

out = run_async(phases())
out["in_process_s"] = time.perf_counter() - t0
print(json.dumps(out))
"""


def breakdown(flow: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "ENGINE_HOME": tmp, "PYTHONPATH": str(ROOT)}
        env.pop("ENGINE_NATS_URL", None)
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", _PHASES, flow, tmp], capture_output=True, text=True, env=env, check=False
        )
        wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"breakdown failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    out: dict[str, float] = json.loads(proc.stdout.splitlines()[-1])
    # The interpreter's start (site, .pth files) and its exit: the rest of the child's wall time.
    out["python_s"] = wall - out.pop("in_process_s")
    return out


def main(runs: int = 5) -> None:
    for package in ("engine", "eventstore", "workers", "triggers", "plugins"):
        compileall.compile_dir(ROOT / package, quiet=1)
    flow = chain_flow(1, "cold")
    walls, parts = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            wall, ex = engine_run(flow, Path(tmp))
            assert ex["state"]["current"] == "SUCCESS"
            walls.append(wall)
        parts.append(breakdown(flow))
    wall = statistics.median(walls)
    load = os.getloadavg()[0]
    print(
        f"cold wall_s={wall:.3f} min_s={min(walls):.3f} runs={runs} target_s={TARGET_S} "
        f"of_target={wall / TARGET_S:.2f} load={load:.1f}"
    )
    keys = ("python_s", "import_s", "server_s", "execution_s", "stop_s")
    medians = " ".join(f"{k}={statistics.median(p[k] for p in parts):.3f}" for k in keys)
    print(f"cold breakdown (median) {medians}")


if __name__ == "__main__":
    main()
