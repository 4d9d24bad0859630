"""seq40: one execution of 40 sequential debug.Return tasks.

Prints engine time (first to last execution state date, median of runs after a warm-up), the whole
``engine run`` wall time (process start to exit), and the latency floor measured in the same run: 80
sequential fsynced appends (bench/floor.py) on an embedded server, with the ratio (#16: at most 2).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import chain_flow, engine_run, engine_seconds
from bench.floor import measure as measure_floor
from engine.aio import run_async
from eventstore.server import EmbeddedServer


def main(runs: int = 5) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        flow = chain_flow(40, "seq40")
        engine_run(flow, home)  # warm-up: streams and consumers created once per data dir
        engine_times, walls = [], []
        for _ in range(runs):
            wall, ex = engine_run(flow, home)
            assert ex["state"]["current"] == "SUCCESS", ex["state"]
            assert len(ex["taskRunList"]) == 40
            engine_times.append(engine_seconds(ex))
            walls.append(wall)
        server = EmbeddedServer(home / "floor")
        try:
            _, floor = run_async(measure_floor(server.start(), seconds=0.5))
        finally:
            server.stop()
    engine_s = statistics.median(engine_times)
    print(
        f"seq40 engine_s={engine_s:.3f} wall_s={statistics.median(walls):.3f} floor80_s={floor:.3f} "
        f"of_floor={engine_s / floor:.2f} runs={runs} target_of_floor=2 target_wall_s=0.8"
    )


if __name__ == "__main__":
    main()
