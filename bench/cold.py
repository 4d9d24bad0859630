"""cold: wall time of ``engine run`` of a one-task flow in a fresh data dir (median of 5)."""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import chain_flow, engine_run


def main(runs: int = 5) -> None:
    walls = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            wall, ex = engine_run(chain_flow(1, "cold"), Path(tmp))
            assert ex["state"]["current"] == "SUCCESS"
            walls.append(wall)
    print(f"cold wall_s={statistics.median(walls):.3f} min_s={min(walls):.3f} runs={runs} target_s=1.0")


if __name__ == "__main__":
    main()
