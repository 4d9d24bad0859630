"""seq40: one execution of 40 sequential debug.Return tasks.

Prints engine time (first to last execution state date, median of runs after a warm-up) and
the whole ``engine run`` wall time (process start to exit).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import chain_flow, engine_run, engine_seconds


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
    print(
        f"seq40 engine_s={statistics.median(engine_times):.3f} wall_s={statistics.median(walls):.3f} "
        f"runs={runs} target_engine_s=0.15"
    )


if __name__ == "__main__":
    main()
