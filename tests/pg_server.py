"""A real PostgreSQL for the tests: Debian's server binaries, a fresh cluster in a temporary directory, on a
free 127.0.0.1 port, password authentication, stopped by its PID.

PostgreSQL refuses to run as root: as root, the cluster belongs to ``nobody`` and the server runs as that
user (the directory is made for it). Where no server binaries are installed, ``PgServer.find`` says why
(the tests then fail with that reason: ``.ci/deps``, which the README's test command runs, installs
Debian's ``postgresql``).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

USER = "engine"
PASSWORD = "s3cret-pw"
DATABASE = "postgres"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PgServer:
    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="engine-pg-"))
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.run_as: str | None = "nobody" if os.geteuid() == 0 else None

    @staticmethod
    def find() -> tuple[Path | None, str]:
        """The newest installed server's bin directory, or None and why."""
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
        if found:
            return Path(found[-1]).parent, ""
        initdb = shutil.which("initdb")
        if initdb:
            return Path(initdb).parent, ""
        return None, "no PostgreSQL server installed (Debian: apt-get install postgresql)"

    @property
    def url(self) -> str:
        return f"jdbc:postgresql://127.0.0.1:{self.port}/{DATABASE}"

    def _own(self, path: Path) -> None:
        if self.run_as is not None:
            entry = pwd.getpwnam(self.run_as)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def start(self) -> None:
        self._own(self.root)
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        self._own(pwfile)
        data = self.root / "data"
        subprocess.run(
            [str(self.bindir / "initdb"), "-D", str(data), "-U", USER, "--pwfile", str(pwfile),
             "--auth", "scram-sha-256", "-E", "UTF8", "--no-sync"],
            check=True, capture_output=True, user=self.run_as, cwd=self.root, timeout=120,
        )  # fmt: skip
        with (self.root / "server.log").open("wb") as log:
            self.proc = subprocess.Popen(
                [str(self.bindir / "postgres"), "-D", str(data), "-p", str(self.port),
                 "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.root}",
                 "-c", "fsync=off"],
                stdout=log, stderr=subprocess.STDOUT, user=self.run_as, cwd=self.root,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("postgres exited: " + (self.root / "server.log").read_text()[-2000:])
            ready = subprocess.run(
                [str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
            )
            if ready.returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError("postgres did not start in 60 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)  # "fast" shutdown: open sessions are ended
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)
