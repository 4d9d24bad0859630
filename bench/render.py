"""render: cost of rendering a cached simple expression (the hot path of every task)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.expressions import Expressions


def main() -> None:
    expr = Expressions()
    template = "Hello {{ inputs.name }}"
    variables = {"inputs": {"name": "world"}}
    expr.render(template, variables)
    best = float("inf")
    for _ in range(5):
        n = 5000
        start = time.perf_counter()
        for _ in range(n):
            expr.render(template, variables)
        best = min(best, (time.perf_counter() - start) / n)
    print(f"render cached_simple_us={best * 1e6:.2f} target_us=20")


if __name__ == "__main__":
    main()
