"""Task runners: the local process, and Docker (run for real only where a daemon answers)."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import anyio
import pytest
from plugin_harness import FakeContext, run_task

from engine.core.errors import FlowValidationError, TaskFailed
from engine.loader.loader import load_flow
from plugins.scripts.runners import (
    DEFAULT_SOCKET,
    Container,
    Docker,
    DockerCpu,
    DockerCredentials,
    DockerMemory,
    _ping,
    _write_config,
    daemon_address,
)

pytestmark = pytest.mark.anyio

SH = "io.kestra.plugin.scripts.shell.Commands"
PY = "io.kestra.plugin.scripts.python.Script"
PROCESS = "io.kestra.plugin.core.runner.Process"
DOCKER = "io.kestra.plugin.scripts.runner.docker.Docker"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_process_runner_runs_locally(ctx: FakeContext) -> None:
    props = {"commands": ["echo $WORKING_DIR"], "taskRunner": {"type": PROCESS}, "containerImage": "ubuntu"}
    result = await run_task(SH, props, ctx)
    assert result.state == "SUCCESS"
    assert ctx.messages("INFO") == [str(ctx.workdir)]


async def test_old_process_runner_name(ctx: FakeContext) -> None:
    props = {
        "commands": ["echo ok"],
        "taskRunner": {"type": "io.kestra.core.models.tasks.runners.types.ProcessTaskRunner"},
    }
    assert (await run_task(SH, props, ctx)).state == "SUCCESS"


@pytest.mark.parametrize(
    "props",
    [
        {"taskRunner": {"type": DOCKER}},
        {"taskRunner": {"type": "io.kestra.plugin.scripts.runner.docker.DockerTaskRunner"}},
        {"runner": "DOCKER"},
        {"docker": {"image": "alpine"}},
    ],
    ids=["taskRunner", "old-name", "runner-DOCKER", "docker-options"],
)
async def test_docker_without_daemon_fails_with_the_reason(
    ctx: FakeContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, props: dict[str, object]
) -> None:
    socket_path = tmp_path / "no-daemon.sock"
    monkeypatch.setenv("DOCKER_HOST", f"unix://{socket_path}")
    marker = tmp_path / "ran"
    with pytest.raises(TaskFailed) as info:
        await run_task(SH, {"commands": [f"touch {marker}"], **props}, ctx)
    message = str(info.value)
    assert f"no Docker daemon reachable at unix://{socket_path}" in message
    assert "No such file or directory" in message
    assert PROCESS in message  # the way out
    assert not marker.exists()  # never a silent local run


async def test_docker_runner_host_wins_and_a_refused_port_says_so(ctx: FakeContext) -> None:
    host = f"tcp://127.0.0.1:{_free_port()}"
    props = {"commands": ["true"], "taskRunner": {"type": DOCKER, "host": host}}
    with pytest.raises(TaskFailed, match=f"no Docker daemon reachable at {host} \\(.*[Rr]efused"):
        await run_task(SH, props, ctx)


async def test_a_listener_that_is_not_docker_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "http.sock"

    async def answer(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await stream.receive()
            await stream.send(b"HTTP/1.0 404 Not Found\r\n\r\n")

    listener = await anyio.create_unix_listener(path)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, answer)
        reason = await _ping(f"unix://{path}")
        tg.cancel_scope.cancel()
    assert reason is not None and "404" in reason


def test_daemon_address_order() -> None:
    assert daemon_address("tcp://h:1", {"DOCKER_HOST": "unix:///x"}) == "tcp://h:1"
    assert daemon_address(None, {"DOCKER_HOST": "unix:///x"}) == "unix:///x"
    assert daemon_address(None, {}) == DEFAULT_SOCKET


def test_docker_command_line(tmp_path: Path) -> None:
    settings = Docker(
        host="tcp://127.0.0.1:2375",
        pullPolicy="NEVER",
        volumes=["/data:/data:ro"],
        cpu=DockerCpu(cpus=1.5),
        memory=DockerMemory(memory="512Mb", memorySwap="1g"),
        user="1000:1000",
        networkMode="host",
        extraHosts=["db:10.0.0.2"],
        delete=False,
    )
    container = Container(image="python:3.13-slim", settings=settings, name="engine-e-t-1", labels={"k": "v"})
    argv = ["/bin/sh", "-c", "echo hi"]
    cmd = container.command_line(argv, workdir=tmp_path, env_names=["SECRET_TOKEN", "WORKING_DIR"])
    assert cmd[:3] == ["docker", "--host", "tcp://127.0.0.1:2375"]
    assert "--rm" not in cmd  # delete: false keeps the container
    pairs = {(cmd[i], cmd[i + 1]) for i in range(len(cmd) - 1)}
    expected = {
        ("--pull", "never"),
        ("--volume", f"{tmp_path}:{tmp_path}"),
        ("--workdir", str(tmp_path)),
        ("--volume", "/data:/data:ro"),
        ("--cpus", "1.5"),
        ("--memory", "512Mb"),
        ("--memory-swap", "1g"),
        ("--user", "1000:1000"),
        ("--network", "host"),
        ("--add-host", "db:10.0.0.2"),
        ("--env", "SECRET_TOKEN"),
        ("--label", "k=v"),
        ("--entrypoint", ""),
    }
    assert expected <= pairs
    assert cmd[-4:] == ["python:3.13-slim", *argv]  # image, then the interpreter and its script
    assert not any("=" in part and part.startswith("SECRET_TOKEN") for part in cmd)  # values stay off argv


@pytest.mark.skipif(
    shutil.which("docker") is None, reason="no docker CLI on PATH: its flag parser is not tested"
)
def test_the_real_docker_cli_accepts_the_command_line(tmp_path: Path) -> None:
    """The CLI parses every flag before it connects: an unreachable daemon proves the line is valid."""
    settings = Docker(
        host=f"unix://{tmp_path}/none.sock",
        pullPolicy="ALWAYS",
        volumes=["/data:/data:ro"],
        cpu=DockerCpu(cpus="0.5"),
        memory=DockerMemory(
            memory="512Mb",
            memorySwap="1g",
            memoryReservation="256m",
            memorySwappiness=10,
            oomKillDisable=True,
        ),
        shmSize="64m",
        privileged=True,
        user="1000",
        entryPoint=["/bin/tini", "--"],
        extraHosts=["db:10.0.0.2"],
        networkMode="host",
    )
    container = Container(image="alpine:3", settings=settings, name="engine-e-t-1", labels={"a": "b"})
    config = tmp_path / "config"
    config.mkdir()
    cmd = container.command_line(
        ["/bin/sh", "-c", "echo hi"], workdir=tmp_path, env_names=["A"], config_dir=str(config)
    )
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    assert "Cannot connect to the Docker daemon" in done.stderr, done.stderr
    at = cmd.index("run") + 1
    bad = subprocess.run([*cmd[:at], "--bogus", *cmd[at:]], capture_output=True, text=True, timeout=30)
    assert "unknown flag: --bogus" in bad.stderr  # the CLI does refuse a flag it does not know


def test_entrypoint_given_replaces_the_cleared_one(tmp_path: Path) -> None:
    container = Container(image="img", settings=Docker(entryPoint=["/bin/tini", "--"]), name="n", labels={})
    cmd = container.command_line(["sh", "-c", "x"], workdir=tmp_path, env_names=[])
    assert cmd[cmd.index("--entrypoint") + 1] == "/bin/tini"
    assert cmd[-5:] == ["img", "--", "sh", "-c", "x"]


@pytest.mark.skipif(
    anyio.run(_ping, daemon_address(None)) is not None,
    reason=f"no Docker daemon answers at {daemon_address(None)}: the container run is not tested here",
)
async def test_docker_runs_a_container(ctx: FakeContext) -> None:
    props = {
        "commands": ["echo in-container > out.txt", "cat /etc/os-release | head -1"],
        "taskRunner": {"type": DOCKER},
        "containerImage": "alpine:3",
        "outputFiles": ["out.txt"],
    }
    result = await run_task(SH, props, ctx)
    assert result.state == "SUCCESS"
    assert any("Alpine" in m for m in ctx.messages("INFO"))
    assert "out.txt" in result.outputs["outputFiles"]


# ------------------------------------------------------------------ validation


def _flow(task: str) -> str:
    return f"id: f\nnamespace: company.team\ntasks:\n  - id: t\n{task}"


def _issues(source: str) -> list[str]:
    with pytest.raises(FlowValidationError) as info:
        load_flow(source)
    return [f"{i.path}: {i.message}" for i in info.value.issues]


def test_an_unknown_runner_type_is_refused() -> None:
    source = _flow(
        f"    type: {SH}\n    commands: [echo]\n"
        "    taskRunner:\n      type: io.kestra.plugin.ee.kubernetes.runner.Kubernetes\n"
    )
    (issue,) = _issues(source)
    assert issue.startswith("tasks[0].taskRunner.type: ")
    assert "is unknown or not supported" in issue and DOCKER in issue and PROCESS in issue


def test_docker_runner_properties_are_checked() -> None:
    source = _flow(
        f"    type: {SH}\n    commands: [echo]\n"
        f"    taskRunner:\n      type: {DOCKER}\n      pullPolicy: SOMETIMES\n      imag: x\n"
    )
    issues = _issues(source)
    assert any(i.startswith("tasks[0].taskRunner.pullPolicy: expected one of") for i in issues)
    assert any(i.startswith("tasks[0].taskRunner.imag: unknown property") for i in issues)


def test_a_process_runner_takes_no_settings() -> None:
    source = _flow(
        f"    type: {SH}\n    commands: [echo]\n    taskRunner:\n      type: {PROCESS}\n      cpu: 2\n"
    )
    (issue,) = _issues(source)
    assert issue.startswith("tasks[0].taskRunner.cpu: unknown property")


def test_device_requests_are_refused() -> None:
    source = _flow(
        f"    type: {SH}\n    commands: [echo]\n    taskRunner:\n      type: {DOCKER}\n"
        "      deviceRequests: [{capabilities: [[gpu]]}]\n"
    )
    (issue,) = _issues(source)
    assert issue.startswith("tasks[0].taskRunner.deviceRequests: 'deviceRequests' is not supported here")


def test_runner_value_is_checked() -> None:
    (issue,) = _issues(_flow(f"    type: {SH}\n    commands: [echo]\n    runner: KUBERNETES\n"))
    assert issue.startswith("tasks[0].runner: invalid runner")


@pytest.mark.parametrize("prop", ["runner: DOCKER", "dockerOptions: {image: alpine}"])
def test_old_script_tasks_refuse_docker(prop: str) -> None:
    (issue,) = _issues(
        _flow(f"    type: io.kestra.core.tasks.scripts.Bash\n    commands: [echo]\n    {prop}\n")
    )
    assert "is not supported here" in issue and DOCKER in issue


def test_docker_runner_loads() -> None:
    load_flow(
        _flow(
            f"    type: {PY}\n    script: print(1)\n    containerImage: python:3.13-slim\n"
            f"    taskRunner:\n      type: {DOCKER}\n      memory: {{memory: 512Mb}}\n"
            "      cpu: {cpus: 1}\n"
        )
    )


async def test_host_volumes_need_the_operator(ctx: FakeContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENGINE_DOCKER_VOLUMES", raising=False)
    props = {"commands": ["true"], "taskRunner": {"type": DOCKER, "volumes": ["/:/host"]}}
    with pytest.raises(TaskFailed, match=r"host volumes are disabled on this worker \(/:/host\)") as info:
        await run_task(SH, props, ctx)
    assert "ENGINE_DOCKER_VOLUMES=true" in str(info.value) and not info.value.retryable
    monkeypatch.setenv("ENGINE_DOCKER_VOLUMES", "true")
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{_free_port()}")
    with pytest.raises(TaskFailed, match="no Docker daemon reachable"):  # allowed: on to the daemon
        await run_task(SH, props, ctx)


@pytest.mark.parametrize(
    ("image", "registry"),
    [("ghcr.io/kestra-io/kestrapy:latest", "ghcr.io"), ("python:3.13-slim", "https://index.docker.io/v1/")],
)
def test_credentials_become_a_private_docker_config(image: str, registry: str) -> None:
    import base64
    import json
    import stat

    config = {"auths": {"other.io": {"auth": "x"}}, "credsStore": ""}
    where = _write_config(config, DockerCredentials(username="u", password="p:w"), image)
    assert where is not None
    try:
        path = Path(where) / "config.json"
        written = json.loads(path.read_text())
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert written["auths"]["other.io"] == {"auth": "x"}  # the given config is kept
        assert base64.b64decode(written["auths"][registry]["auth"]).decode() == "u:p:w"
    finally:
        shutil.rmtree(where)


def test_a_config_that_is_not_json_fails_the_task() -> None:
    with pytest.raises(TaskFailed, match="not a JSON docker config"):
        _write_config("{not json", None, "alpine")
    assert _write_config(None, None, "alpine") is None
