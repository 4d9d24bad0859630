"""Helpers shared by the benchmarks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any


def chain_flow(n: int, flow_id: str = "bench") -> str:
    lines = [f"id: {flow_id}", "namespace: bench", "tasks:"]
    for i in range(n):
        lines.append(f"  - id: t{i}")
        lines.append("    type: io.kestra.plugin.core.debug.Return")
        lines.append(f'    format: "{i}"')
    return "\n".join(lines) + "\n"


def engine_run(flow_text: str, home: Path, *args: str) -> tuple[float, dict[str, Any]]:
    """Run ``engine run --output json`` in a subprocess; returns (wall seconds, execution JSON)."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(flow_text)
    env = {**os.environ, "ENGINE_HOME": str(home)}
    env.pop("ENGINE_NATS_URL", None)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "engine", "run", f.name, "--output", "json", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    wall = time.perf_counter() - t0
    os.unlink(f.name)
    if proc.returncode != 0:
        raise SystemExit(f"engine run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return wall, json.loads(proc.stdout)


def engine_seconds(execution: dict[str, Any]) -> float:
    hist = execution["state"]["histories"]
    first = datetime.fromisoformat(hist[0]["date"].replace("Z", "+00:00"))
    last = datetime.fromisoformat(hist[-1]["date"].replace("Z", "+00:00"))
    return (last - first).total_seconds()
