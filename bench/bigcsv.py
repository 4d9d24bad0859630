"""bigcsv: a large CSV (1 GB by default) converted to ION (serdes.csv.CsvToIon) and queried with DuckDB
(jdbc.duckdb.Query over ``inputFiles``), through ``engine run`` in a child process. Prints the wall time,
each task's time and the peak RSS of the engine process (VmHWM: the process that ran both tasks; the
nats-server child it starts is reported apart). Target: under 300 MB.

    python3 bench/bigcsv.py [--mb 1024]

The CSV is generated in a temporary directory and removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CUSTOMERS = ["Ada", "Bob", "Cy", "Dee", "Eve", "Fay", "Gus", "Hal"]

FLOW = """
id: bigcsv
namespace: bench
inputs:
  - id: data
    type: FILE
tasks:
  - id: to_ion
    type: io.kestra.plugin.serdes.csv.CsvToIon
    from: "{{ inputs.data }}"
  - id: query
    type: io.kestra.plugin.jdbc.duckdb.Query
    inputFiles:
      big.csv: "{{ inputs.data }}"
    sql: |
      SELECT count(*) AS n, round(sum(amount), 2) AS total, count(DISTINCT customer) AS customers
      FROM read_csv('big.csv', header = true,
                    columns = {'id': 'BIGINT', 'customer': 'VARCHAR', 'amount': 'DOUBLE',
                               'day': 'DATE', 'note': 'VARCHAR'})
    fetchType: FETCH_ONE
"""


def generate(path: Path, size: int) -> int:
    """Rows of ~50 bytes up to ``size`` bytes (one block of 100,000 rows written again and again: the
    machine's time goes to the benchmark, not to making its input); returns the row count."""
    lines = [
        f"{i},{CUSTOMERS[i % 8]},{(i % 9973) / 100:.2f},2024-{1 + i % 12:02d}-{1 + i % 28:02d},"
        f'"note {i % 1000}, ok"\n'
        for i in range(100_000)
    ]
    block = "".join(lines).encode()
    rows = 0
    with path.open("wb") as out:
        out.write(b"id,customer,amount,day,note\n")
        while rows * len(block) // len(lines) < size:
            out.write(block)
            rows += len(lines)
    return rows


def hwm_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (the nats-server the engine starts)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def seconds(taskrun: dict[str, object]) -> float:
    hist = taskrun["state"]["histories"]  # type: ignore[index]
    first = datetime.fromisoformat(hist[0]["date"].replace("Z", "+00:00"))  # type: ignore[index]
    last = datetime.fromisoformat(hist[-1]["date"].replace("Z", "+00:00"))  # type: ignore[index]
    return (last - first).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bigcsv-") as tmp:
        csv_path = Path(tmp) / "big.csv"
        rows = generate(csv_path, args.mb * 1024 * 1024)
        flow = Path(tmp) / "flow.yaml"
        flow.write_text(FLOW)
        env = {**os.environ, "ENGINE_HOME": str(Path(tmp) / "home"), "ENGINE_SYNC_INTERVAL": "1s"}
        env.pop("ENGINE_NATS_URL", None)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        started = time.perf_counter()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "engine",
                "run",
                str(flow),
                "--input",
                f"data={csv_path}",
                "--output",
                "json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=ROOT,
        )
        peaks = {"engine": 0, "nats": 0}

        def watch() -> None:
            while proc.poll() is None:
                peaks["engine"] = max(peaks["engine"], hwm_kb(proc.pid))
                for child in children(proc.pid):
                    peaks["nats"] = max(peaks["nats"], hwm_kb(child))
                time.sleep(0.2)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        out, err = proc.communicate()
        wall = time.perf_counter() - started
        watcher.join()
        if proc.returncode != 0:
            raise SystemExit(f"engine run failed ({proc.returncode}):\n{err.decode()[-3000:]}")
        doc = json.loads(out)
        runs = {tr["taskId"]: tr for tr in doc["taskRunList"]}
        row = runs["query"]["outputs"]["row"]
        assert row["n"] == rows, (row, rows)
        assert runs["to_ion"]["outputs"]["size"] == rows
        size_mb = csv_path.stat().st_size / 1024 / 1024
    print(
        f"bigcsv csv_mb={size_mb:.0f} rows={rows} wall_s={wall:.1f} to_ion_s={seconds(runs['to_ion']):.1f} "
        f"query_s={seconds(runs['query']):.1f} engine_peak_rss_mb={peaks['engine'] / 1024:.0f} "
        f"nats_peak_rss_mb={peaks['nats'] / 1024:.0f} target_rss_mb=300"
    )


if __name__ == "__main__":
    main()
