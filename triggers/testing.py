"""A second, plain nats-server for tests and benchmarks: the *source* a realtime trigger listens to.

Unlike the engine's embedded server it listens on a fixed loopback port (chosen free at first
start) so it can be stopped by PID and started again on the same port, with JetStream stored under
``store_dir`` (streams and durable consumers survive the restart).
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from eventstore.server import jetstream_lines, spawn_server, stop_process, write_config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SourceServer:
    def __init__(self, store_dir: Path, port: int | None = None) -> None:
        self.store_dir = Path(store_dir)
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self, timeout: float = 10.0) -> str:
        conf = write_config(
            self.store_dir / "source.conf",
            # nats-server's own fsync policy: a test source needs no durability on power loss
            [f"listen: 127.0.0.1:{self.port}", *jetstream_lines(self.store_dir / "js", sync="2m")],
        )
        self.proc = spawn_server(conf, self.store_dir / "nats-server.log")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"source nats-server exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    if sock.recv(4).startswith(b"INFO"):
                        return self.url
            except OSError:
                time.sleep(0.01)
        self.stop()
        raise RuntimeError(f"source nats-server did not listen on {self.url} within {timeout:.0f}s")

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        stop_process(proc, timeout)
