"""ui: the execution page in Chromium with 1,000 taskruns (target: interactive <= 1 s) and with
100,000 log lines (paged, a window of rows in the DOM; scrolling never freezes the page).

Starts `engine server local` (embedded NATS, a new data directory), runs a ForEach of 1,000 Return
tasks and a one-task flow, then publishes 100,000 log lines of that execution on its log subject the
way a worker does (``Store.post_log``; the server's indexer stores them as any others: a shell
task printing them took over 10 minutes on the shared machine), then opens their pages in Debian's chromium
(`/usr/bin/chromium`) through Playwright. "Interactive" is navigation start to the page's module
having rendered the state, the Gantt and the first log rows (body[data-ready]), then a click on a
tab answered. The log list is scrolled to 30 random places; each must show its rows. The longest
main-thread task (PerformanceObserver longtask) says whether anything froze. One result line.
"""

from __future__ import annotations

import asyncio
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.testing.serve import local_server  # noqa: E402

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MANY = """id: many
namespace: bench.ui
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: "{{ range(1, 1000) }}"
    concurrencyLimit: 0
    tasks:
      - id: ret
        type: io.kestra.plugin.core.debug.Return
        format: "{{ taskrun.value }}"
"""
CHATTY = """id: chatty
namespace: bench.ui
tasks:
  - id: talk
    type: io.kestra.plugin.core.log.Log
    message: log line number 0
"""
LINES = 100_000


async def publish_logs(nats_url: str, execution_id: str, home: Path) -> None:
    from engine.core.ports import LogLine
    from engine.runtime import Runtime

    levels = ["INFO"] * 6 + ["DEBUG", "WARN", "ERROR"]
    async with Runtime(nats_url=nats_url, home=home) as rt:
        for i in range(1, LINES):
            line = LogLine(
                f"2026-12-03T00:00:{i % 60:02d}Z", levels[i % 9], f"log line number {i}", None, "talk", 0
            )
            rt.store.post_log(execution_id, line)
        await rt.store.nc.flush()


def nats_url_of(home: Path) -> str:
    """The embedded server's URL with the token it requires (in its config, in the bench's own home)."""
    for _ in range(300):
        m = re.search(r"embedded server nats://(\S+)", (home / "server.log").read_text(errors="replace"))
        token = re.search(r'token: "?([^"\s}]+)', (home / "home" / "nats" / "nats.conf").read_text())
        if m and token:
            return f"nats://{token.group(1)}@{m.group(1)}"
        time.sleep(0.2)
    raise SystemExit("the server never said where NATS listens")


OBSERVE = """() => { window.__long = 0; new PerformanceObserver((l) => { for (const e of l.getEntries())
  window.__long = Math.max(window.__long, e.duration); }).observe({type: 'longtask', buffered: true}); }"""


def run_flow(client: httpx.Client, source: str, flow_id: str) -> str:
    r = client.post("/api/v1/flows", content=source, headers={"content-type": "application/x-yaml"})
    r.raise_for_status()
    r = client.post(f"/api/v1/executions/bench.ui/{flow_id}", json={})
    r.raise_for_status()
    execution_id = str(r.json()["id"])
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        found = client.get("/api/v1/executions/search", params={"q": execution_id}).json()["results"]
        if found and found[0]["state"]["current"] in ("SUCCESS", "WARNING", "FAILED", "KILLED"):
            assert found[0]["state"]["current"] == "SUCCESS", found[0]["state"]
            return execution_id
        time.sleep(0.5)
    raise SystemExit(f"execution {execution_id} of {flow_id} did not end in 10 minutes")


def wait_logs(client: httpx.Client, execution_id: str, lines: int) -> None:
    deadline = time.monotonic() + 600
    while client.get(f"/api/v1/logs/{execution_id}/paged", params={"size": 1}).json()["total"] < lines:
        if time.monotonic() > deadline:
            raise SystemExit("the log lines were not all indexed in 10 minutes")
        time.sleep(0.5)


def open_page(page: Any, url: str) -> tuple[float, float]:
    """(ms from navigation to the page rendered, ms for a click on a tab to be answered)."""
    start = time.perf_counter()
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    ready = (time.perf_counter() - start) * 1000
    start = time.perf_counter()
    page.get_by_role("tab", name="Topology").click()
    page.wait_for_selector("#topology g.node", timeout=30_000)
    return ready, (time.perf_counter() - start) * 1000


def main() -> None:
    from playwright.sync_api import sync_playwright

    home = Path(tempfile.mkdtemp(prefix="bench-ui-"))
    with local_server(home) as base:
        with httpx.Client(base_url=base, timeout=60) as client:
            many = run_flow(client, MANY, "many")
            chatty = run_flow(client, CHATTY, "chatty")
            asyncio.run(publish_logs(nats_url_of(home), chatty, home / "publisher"))
            wait_logs(client, chatty, LINES)
            taskruns = len(client.get(f"/api/v1/executions/{many}").json()["taskRunList"])
        with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
            ctx = pw.chromium.launch_persistent_context(
                profile, executable_path="/usr/bin/chromium", args=ARGS, headless=True
            )
            page = ctx.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.add_init_script(f"({OBSERVE})()")
            open_page(page, f"{base}/ui/executions/{many}")  # warm: the modules in the cache
            runs = [open_page(page, f"{base}/ui/executions/{many}") for _ in range(5)]
            times = [r + c for r, c in runs]
            clicks = [c for _, c in runs]
            many_long = page.evaluate("window.__long")
            logs_ms = sum(open_page(page, f"{base}/ui/executions/{chatty}"))
            box = page.locator("#logs")
            rng = random.Random(7)
            scrolls, rows_max = [], 0
            for _ in range(30):
                index = rng.randrange(100_000)
                start = time.perf_counter()
                box.evaluate(f"(b) => {{ b.scrollTop = {index * 20}; }}")
                page.wait_for_selector(f"#logs .line[data-index='{index}']", timeout=10_000)
                scrolls.append((time.perf_counter() - start) * 1000)
                rows_max = max(rows_max, page.locator("#logs .line").count())
            text = page.locator("#logs .line").last.inner_text()
            assert "log line number" in text, text
            logs_long = page.evaluate("window.__long")
            ctx.close()
        assert not errors, errors
        scrolls.sort()
        print(
            f"ui: execution page with {taskruns} taskruns interactive (rendered, then a tab click answered) "
            f"median "
            f"{statistics.median(times):.0f} ms, max {max(times):.0f} ms (click median "
            f"{statistics.median(clicks):.0f} ms, longest task {many_long:.0f} ms) "
            f"(target 1000); 100,000 log lines: interactive {logs_ms:.0f} ms, scroll to a random line "
            f"p50 {scrolls[len(scrolls) // 2]:.0f} ms p95 {scrolls[int(len(scrolls) * 0.95)]:.0f} ms, "
            f"longest task {logs_long:.0f} ms, at most {rows_max} rows in the DOM"
        )


if __name__ == "__main__":
    main()
