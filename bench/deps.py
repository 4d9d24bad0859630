"""deps: a Python Script with ``dependencies``, run twice on a fresh data directory.

The first run builds the virtual environment (``plugins.scripts.pydeps``), the second finds it in
the cache. Prints the task's time of each (RUNNING -> SUCCESS in the taskrun's history, the real
engine through ``engine run``) and their ratio, with the default installer (uv) and with pip.
Needs PyPI (or the configured index). ``--packages`` changes the requirement set.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import engine_run

TARGET = 5.0  # the second run at least 5x faster (hard acceptance: 2x)


def flow(packages: list[str], manager: str) -> str:
    deps = "".join(f"      - {p}\n" for p in packages)
    module = packages[0].split("=")[0].split("[")[0].replace("-", "_")
    return (
        "id: deps\nnamespace: bench\ntasks:\n  - id: py\n"
        "    type: io.kestra.plugin.scripts.python.Script\n"
        f"    packageManager: {manager}\n    dependencies:\n{deps}"
        f"    script: |\n      import {module}\n      print({module}.__name__)\n"
    )


def task_seconds(execution: dict[str, Any]) -> float:
    (taskrun,) = execution["taskRunList"]
    assert taskrun["state"]["current"] == "SUCCESS", taskrun["state"]
    dates = {h["state"]: h["date"] for h in taskrun["state"]["histories"]}
    began = datetime.fromisoformat(dates["RUNNING"].replace("Z", "+00:00"))
    ended = datetime.fromisoformat(dates["SUCCESS"].replace("Z", "+00:00"))
    return (ended - began).total_seconds()


def twice(packages: list[str], manager: str) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="bench-deps-") as home:
        source = flow(packages, manager)
        first = task_seconds(engine_run(source, Path(home))[1])
        second = task_seconds(engine_run(source, Path(home))[1])
    return first, second


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--packages", nargs="+", default=["tabulate==0.9.0"])
    args = parser.parse_args()
    uv_first, uv_second = twice(args.packages, "UV")
    pip_first, pip_second = twice(args.packages, "PIP")
    print(
        f"deps packages={','.join(args.packages)} uv_first_s={uv_first:.2f} uv_second_s={uv_second:.2f} "
        f"speedup={uv_first / uv_second:.1f}x pip_first_s={pip_first:.2f} pip_second_s={pip_second:.2f} "
        f"target={TARGET:g}x"
    )


if __name__ == "__main__":
    main()
