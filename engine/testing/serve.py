"""``engine server local`` as a child process for tests and benchmarks that drive it from outside (a
browser, a published API client): a free loopback port, ready when ``/ready`` answers, stopped by PID."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from eventstore.cluster import free_ports

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def local_server(home: Path, *args: str, ready_within: float = 60.0) -> Iterator[str]:
    """Yield the base URL of ``engine server local [args]`` with its data directory and log
    (``server.log``) in ``home``; the engine's own settings of this process are not passed on."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_ports(1)[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENGINE_", "SECRET_", "ENV_"))}
    env.update(ENGINE_HOME=str(home / "home"), PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    log_path = home / "server.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "server", "local", "--port", str(port), *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_within
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server ended: {log_path.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server is not ready: {log_path.read_text()[-3000:]}")
            time.sleep(0.1)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
