"""Task runners: where a script task's command line runs (Kestra's ``taskRunner`` property).

``io.kestra.plugin.core.runner.Process`` (the default) runs it as a local process in the task's
working directory. ``io.kestra.plugin.scripts.runner.docker.Docker`` runs it in a container with
the docker CLI against the daemon of ``host`` (else ``DOCKER_HOST``, else the local socket): the
working directory is bind-mounted at the same path, so ``WORKING_DIR``, ``OUTPUT_DIR`` and the
script's own paths mean the same inside and out. Before starting the CLI the runner asks the
daemon for ``/_ping``; an unreachable daemon fails the task with that reason, never a hang nor a
silent fallback to a local process. Kestra's deprecated ``runner: DOCKER`` and ``docker:`` options
select the same Docker runner.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import anyio
import msgspec

from engine.core.errors import TaskFailed
from engine.settings import settings
from plugins.scripts.process import LineCallback, LongLineCallback, run_process

__all__ = [
    "DOCKER_TYPES",
    "PROCESS_TYPES",
    "Container",
    "Docker",
    "DockerCredentials",
    "DockerOptions",
    "DockerTaskRunner",
    "LocalProcess",
    "Process",
    "ProcessTaskRunner",
    "Runner",
    "RunnerProps",
    "daemon_address",
]

PROCESS_TYPES = (
    "io.kestra.plugin.core.runner.Process",
    "io.kestra.core.models.tasks.runners.types.ProcessTaskRunner",
)
DOCKER_TYPES = (
    "io.kestra.plugin.scripts.runner.docker.Docker",
    "io.kestra.plugin.scripts.runner.docker.DockerTaskRunner",
)
DEFAULT_SOCKET = "unix:///var/run/docker.sock"
PING_TIMEOUT_S = 5.0
_PULL = {"IF_NOT_PRESENT": "missing", "ALWAYS": "always", "NEVER": "never"}


class Process(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="type",
              tag=PROCESS_TYPES[0]):  # fmt: skip
    """The local process runner: no settings."""


class ProcessTaskRunner(Process, frozen=True, kw_only=True, tag=PROCESS_TYPES[1]):
    """Kestra's older name of the Process runner."""


class DockerCpu(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    cpus: float | str | None = None


class DockerMemory(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    memory: str | None = None
    memorySwap: str | None = None
    memorySwappiness: int | None = None
    memoryReservation: str | None = None
    oomKillDisable: bool | None = None


class DockerCredentials(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A private registry's credentials (Kestra's), written as a docker config.json ``auths`` entry."""

    registry: str | None = None
    username: str | None = None
    password: str | None = None
    auth: str | None = None
    registryToken: str | None = None
    identityToken: str | None = None


class _DockerSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What the Docker runner and the deprecated ``docker:`` options share (each maps to a docker
    run flag)."""

    host: str | None = None
    config: str | dict[str, Any] | None = None
    credentials: DockerCredentials | None = None
    deviceRequests: list[Any] | None = None  # refused at validation (engine.loader.plugin_rules)
    pullPolicy: Literal["IF_NOT_PRESENT", "ALWAYS", "NEVER"] = "IF_NOT_PRESENT"
    volumes: list[str] | None = None
    cpu: DockerCpu | None = None
    memory: DockerMemory | None = None
    shmSize: str | None = None
    privileged: bool | None = None
    user: str | None = None
    entryPoint: list[str] | None = None
    extraHosts: list[str] | None = None
    networkMode: str | None = None
    delete: bool = True


class Docker(_DockerSettings, frozen=True, kw_only=True, tag_field="type", tag=DOCKER_TYPES[0]):
    """Kestra's Docker task runner (the image is the task's ``containerImage``)."""

    fileHandlingStrategy: Literal["VOLUME", "MOUNT"] | None = None  # both: the workdir is shared


class DockerTaskRunner(Docker, frozen=True, kw_only=True, tag=DOCKER_TYPES[1]):
    """Kestra's older name of the Docker runner."""


class DockerOptions(_DockerSettings, frozen=True, kw_only=True):
    """The deprecated ``docker:`` property of script tasks (``image`` instead of ``containerImage``)."""

    image: str | None = None


RunnerProps = Process | ProcessTaskRunner | Docker | DockerTaskRunner


class Runner(Protocol):
    """Runs one command line for a script task and returns its exit status (``-N``: signal N)."""

    @property
    def local(self) -> bool:
        """True when the command runs on this machine (host paths and interpreters apply)."""
        ...

    async def run(
        self,
        argv: Sequence[str],
        *,
        workdir: Path,
        env: Mapping[str, str],
        on_stdout: LineCallback,
        on_stderr: LineCallback,
        on_long_line: LongLineCallback,
    ) -> int: ...


@dataclass(frozen=True)
class LocalProcess:
    local: bool = True

    async def run(
        self,
        argv: Sequence[str],
        *,
        workdir: Path,
        env: Mapping[str, str],
        on_stdout: LineCallback,
        on_stderr: LineCallback,
        on_long_line: LongLineCallback,
    ) -> int:
        try:
            return await run_process(
                argv,
                cwd=workdir,
                env=env,
                on_stdout=on_stdout,
                on_stderr=on_stderr,
                on_long_line=on_long_line,
            )
        except (FileNotFoundError, PermissionError) as exc:
            raise TaskFailed(f"cannot start interpreter {argv[0]!r}: {exc}", retryable=False) from None


def daemon_address(host: str | None, environ: Mapping[str, str] | None = None) -> str:
    """The daemon the runner talks to: ``host``, else ``DOCKER_HOST``, else the local socket."""
    env = os.environ if environ is None else environ
    return host or env.get("DOCKER_HOST") or DEFAULT_SOCKET


async def _ping(address: str) -> str | None:
    """None when the daemon at ``address`` answers ``/_ping``, else why not."""
    parts = urlsplit(address)
    request = b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n"
    try:
        with anyio.fail_after(PING_TIMEOUT_S):
            if parts.scheme == "unix":
                stream: Any = await anyio.connect_unix(parts.path)
            elif parts.scheme in ("tcp", "http"):
                stream = await anyio.connect_tcp(parts.hostname or "127.0.0.1", parts.port or 2375)
            else:
                return None  # ssh://, https (TLS): the CLI connects and reports itself
            async with stream:
                await stream.send(request)
                head = b""
                while b"\r\n" not in head and len(head) < 4096:
                    try:
                        head += await stream.receive()
                    except anyio.EndOfStream:
                        break
    except TimeoutError:
        return f"no answer within {PING_TIMEOUT_S:g} s"
    except OSError as exc:
        cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc  # anyio wraps TCP errors
        return os.strerror(cause.errno) if cause.errno else str(cause)
    status = head.split(b"\r\n", 1)[0].decode("latin-1", "replace")
    if " 200" not in status:
        return f"unexpected answer to /_ping: {status or 'none'}"
    return None


_NAME = re.compile(r"[^a-zA-Z0-9_.-]")


@dataclass(frozen=True)
class Container:
    """A command line run with ``docker run`` (the CLI: it handles pulls, credentials helpers, TLS)."""

    image: str
    settings: _DockerSettings
    name: str
    labels: Mapping[str, str]
    local: bool = False

    @property
    def address(self) -> str:
        return daemon_address(self.settings.host)

    def command_line(
        self, argv: Sequence[str], *, workdir: Path, env_names: Sequence[str], config_dir: str | None = None
    ) -> list[str]:
        """The docker CLI's argv. Variables are named with ``-e NAME`` only: their values travel in
        the CLI's environment, never on a command line other users can read."""
        s = self.settings
        cmd = ["docker", "--host", self.address]
        if config_dir is not None:
            cmd += ["--config", config_dir]
        cmd += ["run", "--name", self.name, "--pull", _PULL[s.pullPolicy]]
        if s.delete:
            cmd.append("--rm")
        for key, value in sorted(self.labels.items()):
            cmd += ["--label", f"{key}={value}"]
        where = str(workdir)
        cmd += ["--volume", f"{where}:{where}", "--workdir", where]
        for volume in s.volumes or ():
            cmd += ["--volume", volume]
        for name in env_names:
            cmd += ["--env", name]
        if s.cpu is not None and s.cpu.cpus is not None:
            cmd += ["--cpus", str(s.cpu.cpus)]
        m = s.memory
        if m is not None:
            flags: tuple[tuple[str, str | int | None], ...] = (
                ("--memory", m.memory),
                ("--memory-swap", m.memorySwap),
                ("--memory-reservation", m.memoryReservation),
                ("--memory-swappiness", m.memorySwappiness),
            )
            for flag, setting in flags:
                if setting is not None:
                    cmd += [flag, str(setting)]
            if m.oomKillDisable:
                cmd.append("--oom-kill-disable")
        if s.shmSize is not None:
            cmd += ["--shm-size", s.shmSize]
        if s.privileged:
            cmd.append("--privileged")
        if s.user is not None:
            cmd += ["--user", s.user]
        for host in s.extraHosts or ():
            cmd += ["--add-host", host]
        if s.networkMode is not None:
            cmd += ["--network", s.networkMode]
        # Kestra clears the image's entrypoint by default, so the interpreter runs as given.
        entry = s.entryPoint if s.entryPoint else [""]
        cmd += ["--entrypoint", entry[0], self.image, *entry[1:], *argv]
        return cmd

    async def run(
        self,
        argv: Sequence[str],
        *,
        workdir: Path,
        env: Mapping[str, str],
        on_stdout: LineCallback,
        on_stderr: LineCallback,
        on_long_line: LongLineCallback,
    ) -> int:
        if self.settings.volumes and not settings().docker_volumes:
            # A host volume reaches the worker's files as the container's root: the operator decides.
            raise TaskFailed(
                "Docker task runner: host volumes are disabled on this worker "
                f"({', '.join(self.settings.volumes)}) — the operator may allow them with "
                "ENGINE_DOCKER_VOLUMES=true (Kestra's volume-enabled)",
                retryable=False,
            )
        reason = await _ping(self.address)
        if reason is not None:
            raise TaskFailed(
                f"Docker task runner: no Docker daemon reachable at {self.address} ({reason}) — start "
                "Docker, point DOCKER_HOST or the runner's 'host' at a daemon, or use "
                f"'taskRunner: {{type: {PROCESS_TYPES[0]}}}'"
            )
        docker = shutil.which("docker")
        if docker is None:
            raise TaskFailed(
                "Docker task runner: the docker CLI is not on the worker's PATH — install it, or use "
                f"'taskRunner: {{type: {PROCESS_TYPES[0]}}}'",
                retryable=False,
            )
        config_dir = _write_config(self.settings.config, self.settings.credentials, self.image)
        try:
            cmd = self.command_line(argv, workdir=workdir, env_names=sorted(env), config_dir=config_dir)
            cli_env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "TMPDIR")}
            cli_env.update(env)
            try:
                return await run_process(
                    [docker, *cmd[1:]],
                    cwd=workdir,
                    env=cli_env,
                    on_stdout=on_stdout,
                    on_stderr=on_stderr,
                    on_long_line=on_long_line,
                )
            except BaseException:
                # The CLI's death does not stop its container: remove it by name.
                with anyio.CancelScope(shield=True), anyio.move_on_after(20):
                    await anyio.run_process(
                        [docker, "--host", self.address, "rm", "--force", self.name], check=False
                    )
                raise
        finally:
            if config_dir is not None:
                shutil.rmtree(config_dir, ignore_errors=True)


def _registry_of(image: str) -> str:
    """The registry an image comes from (Docker Hub's when its first part is no host name)."""
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first
    return "https://index.docker.io/v1/"


def _write_config(
    config: str | dict[str, Any] | None, credentials: DockerCredentials | None, image: str
) -> str | None:
    """The runner's ``config`` (a docker config.json, text or map) and ``credentials`` in a private
    directory outside the mounted working directory, so the container never sees them."""
    if config is None and credentials is None:
        return None
    text = "{}" if config is None else config if isinstance(config, str) else json.dumps(config)
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise TaskFailed(f"taskRunner.config: not a JSON docker config: {exc}", retryable=False) from None
    if not isinstance(document, dict):
        raise TaskFailed("taskRunner.config: a docker config is a JSON object", retryable=False)
    if credentials is not None:
        entry: dict[str, str] = {}
        if credentials.auth is not None:
            entry["auth"] = credentials.auth
        elif credentials.username is not None:
            pair = f"{credentials.username}:{credentials.password or ''}"
            entry["auth"] = base64.b64encode(pair.encode()).decode()
        if credentials.identityToken is not None:
            entry["identitytoken"] = credentials.identityToken
        if credentials.registryToken is not None:
            entry["registrytoken"] = credentials.registryToken
        registry = credentials.registry or _registry_of(image)
        auths = document.setdefault("auths", {})
        if not isinstance(auths, dict):
            raise TaskFailed("taskRunner.config: 'auths' is not a map", retryable=False)
        auths[registry] = {**auths.get(registry, {}), **entry}
    where = tempfile.mkdtemp(prefix="engine-docker-")
    path = Path(where) / "config.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(document, out)
    return where


def container_name(execution_id: str, taskrun_id: str, attempt: int) -> str:
    return _NAME.sub("-", f"engine-{execution_id}-{taskrun_id}-{attempt}")[:200]


def choose(
    task_runner: RunnerProps | None,
    runner: str | None,
    docker: DockerOptions | None,
    container_image: str | None,
    default_image: str,
    ids: tuple[str, str, int],
) -> Runner:
    """The runner of one attempt: ``taskRunner`` first; else the deprecated ``runner`` (DOCKER, or
    unset with ``docker:`` options, as Kestra did); else the local process."""
    settings: _DockerSettings | None = None
    image = container_image or (docker.image if docker is not None else None) or default_image
    if isinstance(task_runner, Docker):
        settings = task_runner
    elif task_runner is None and runner is not None and runner.upper() == "DOCKER":
        settings = docker or DockerOptions()
    elif task_runner is None and runner is None and docker is not None:
        settings = docker
    if settings is None:
        return LocalProcess()
    execution_id, taskrun_id, attempt = ids
    labels = {"io.kestra.execution": execution_id, "io.kestra.taskrun": taskrun_id}
    return Container(
        image=image, settings=settings, name=container_name(execution_id, taskrun_id, attempt), labels=labels
    )
