"""The CLI as a client of a real API (``--server`` / ENGINE_SERVER, ``--token`` / ENGINE_TOKEN).

The API runs in this process (``webserver.app.serve`` on a free 127.0.0.1 port, with an executor
and a worker on the session nats-server, tokens required); the CLI runs as a real subprocess
with an empty ENGINE_HOME and no ENGINE_NATS_URL, so everything it shows came over HTTP.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from integration_helpers import ROOT, CliResult, Engine, engine_env, engine_roles

pytestmark = pytest.mark.anyio
TOKEN = "remote-cli-token"


@dataclass
class Served:
    eng: Engine
    url: str
    http: httpx.AsyncClient
    home: Path
    ns: str
    nats_url: str

    async def cli(self, *args: str, env: Mapping[str, str] | None = None, timeout: float = 60) -> CliResult:
        """``python -m engine <args>`` against the API (the event loop keeps serving meanwhile)."""
        extra = {"ENGINE_SERVER": self.url, "ENGINE_TOKEN": TOKEN, **(env or {})}
        return await run_cli(*args, env=engine_env(self.home, None, extra), timeout=timeout)

    async def local(self, *args: str) -> CliResult:
        """The same command on the local mode (the session server's log, not the API)."""
        env = engine_env(self.home.parent / "local-home", self.nats_url)
        return await run_cli(*args, env=env, timeout=60)

    async def start(self, flow_id: str, wait: bool = False) -> dict[str, Any]:
        r = await self.http.post(f"/api/v1/executions/{self.ns}/{flow_id}", params={"wait": wait}, timeout=60)
        assert r.status_code == 200, r.text
        doc: dict[str, Any] = r.json()
        return doc

    async def wait_state(self, execution_id: str, *states: str, timeout: float = 20) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            r = await self.http.get(f"/api/v1/executions/{execution_id}")
            if r.status_code == 200 and r.json()["state"]["current"] in states:
                doc: dict[str, Any] = r.json()
                return doc
            assert loop.time() < deadline, f"{execution_id} never reached {states}: {r.text[:300]}"
            await asyncio.sleep(0.05)


async def run_cli(*args: str, env: Mapping[str, str], timeout: float) -> CliResult:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "engine",
        *args,
        cwd=ROOT,
        env=dict(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return CliResult(int(proc.returncode or 0), out.decode(), err.decode())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def served(nats_url: str, tmp_path: Path) -> AsyncIterator[Served]:
    from webserver.app import Auth, serve

    async with engine_roles(nats_url, tmp_path / "engine") as eng:
        port = free_port()
        started = asyncio.Event()
        task = asyncio.create_task(
            serve(
                eng.rt,
                "127.0.0.1",
                port,
                auth=Auth(tokens=frozenset({TOKEN})),
                index_path=tmp_path / "index.duckdb",
                started=started,
            )
        )
        try:
            await asyncio.wait_for(started.wait(), 15)
            url = f"http://127.0.0.1:{port}"
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as http:
                home = tmp_path / "cli-home"
                yield Served(eng, url, http, home, f"remote.t{uuid.uuid4().hex[:10]}", nats_url)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def flows_dir(path: Path, ns: str) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "hello.yaml").write_text(
        f"id: hello\nnamespace: {ns}\ntasks:\n"
        "  - id: greet\n    type: io.kestra.plugin.core.log.Log\n    message: hello from {{ flow.id }}\n"
        "  - id: out\n    type: io.kestra.plugin.core.debug.Return\n    format: done\n"
    )
    (path / "sub").mkdir(exist_ok=True)
    (path / "sub" / "fails.yml").write_text(
        f"id: fails\nnamespace: {ns}.sub\ntasks:\n"
        "  - id: boom\n    type: io.kestra.plugin.core.execution.Fail\n    errorMessage: no luck\n"
    )
    (path / "pause.yaml").write_text(
        f"id: pause\nnamespace: {ns}\ntasks:\n"
        "  - id: wait\n    type: io.kestra.plugin.core.flow.Pause\n"
        "  - id: after\n    type: io.kestra.plugin.core.log.Log\n    message: resumed\n"
    )
    (path / "slow.yaml").write_text(
        f"id: slow\nnamespace: {ns}\ntasks:\n"
        "  - id: nap\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT60S\n"
    )
    return path


async def revision(s: Served, ns: str, fid: str) -> int:
    r = await s.http.get(f"/api/v1/flows/{ns}/{fid}")
    return int(r.json()["revision"]) if r.status_code == 200 else 0


async def test_flow_deploy_validates_then_deploys_only_what_changed(served: Served, tmp_path: Path) -> None:
    s, ns = served, served.ns
    d = flows_dir(tmp_path / "flows", ns)
    r = await s.cli("flow", "deploy", str(d), "--dry-run")
    assert r.code == 0, r.stderr
    assert r.stdout.count("would be created") == 4 and "dry run: 4 flow(s): 4 created" in r.stderr
    assert await revision(s, ns, "hello") == 0  # nothing deployed

    r = await s.cli("flow", "deploy", str(d), "--namespace", ns)
    assert r.code == 0, r.stderr
    lines = sorted(r.stdout.splitlines())
    assert lines[0].startswith(f"{ns}.hello\tcreated revision 1\t")
    assert "4 flow(s): 4 created, 0 updated, 0 unchanged" in r.stderr
    assert await revision(s, ns + ".sub", "fails") == 1

    (d / "hello.yaml").write_text((d / "hello.yaml").read_text().replace("format: done", "format: again"))
    r = await s.cli("flow", "deploy", str(d))
    assert r.code == 0 and "0 created, 1 updated, 3 unchanged" in r.stderr, r.stderr
    assert f"{ns}.hello\tupdated revision 2" in r.stdout
    assert await revision(s, ns, "hello") == 2
    assert await revision(s, ns, "pause") == 1  # unchanged: no new revision

    # an invalid file: the problems of `engine flow validate`, exit 1, nothing deployed
    (d / "hello.yaml").write_text((d / "hello.yaml").read_text().replace("format: again", "format: three"))
    (d / "broken.yaml").write_text(f"id: broken\nnamespace: {ns}\ntasks:\n  - id: a\n    type: nope.Nope\n")
    r = await s.cli("flow", "deploy", str(d))
    validate = await s.local("flow", "validate", str(d))
    assert r.code == 1 and validate.code == 1
    problems = [x for x in r.stderr.splitlines() if "broken.yaml" in x]
    assert problems and problems == [x for x in validate.stderr.splitlines() if "broken.yaml" in x]
    assert "nothing deployed" in r.stderr.splitlines()[-1]
    assert await revision(s, ns, "hello") == 2
    (d / "broken.yaml").unlink()

    r = await s.cli("flow", "deploy", str(d), "--namespace", "elsewhere")
    assert r.code == 1 and "is not in elsewhere" in r.stderr
    assert await revision(s, ns, "hello") == 2
    assert not (s.home / "nats").exists()  # the remote mode never started a local server


async def test_get_list_logs_print_the_same_as_the_local_mode(served: Served, tmp_path: Path) -> None:
    s, ns = served, served.ns
    r = await s.cli("flow", "deploy", str(flows_dir(tmp_path / "flows", ns)))
    assert r.code == 0, r.stderr
    doc = await s.start("hello", wait=True)
    eid = doc["id"]
    assert doc["state"]["current"] == "SUCCESS"

    remote = await s.cli("executions", "get", eid, "--output", "json")
    local = await s.local("executions", "get", eid, "--output", "json")
    assert remote.code == 0 and local.code == 0, remote.stderr + local.stderr
    assert json.loads(remote.stdout) == json.loads(local.stdout)
    assert json.loads(remote.stdout) == (await s.http.get(f"/api/v1/executions/{eid}")).json()
    remote = await s.cli("executions", "get", eid)
    local = await s.local("executions", "get", eid)
    assert remote.stdout == local.stdout and "greet" in remote.stdout

    remote = await s.cli("executions", "list", "--namespace", ns, "--flow", "hello")
    local = await s.local("executions", "list", "--namespace", ns, "--flow", "hello")
    assert remote.code == 0 and remote.stdout == local.stdout and eid in remote.stdout
    r = await s.cli("executions", "list", "--namespace", ns, "--output", "json", "--limit", "5")
    assert [x["id"] for x in json.loads(r.stdout)] == [eid]

    remote = await s.cli("logs", eid)
    local = await s.local("logs", eid)
    assert remote.code == 0 and remote.stderr == local.stderr and "hello from hello" in remote.stderr
    followed = await s.cli("logs", eid, "-f")
    assert followed.code == 0 and followed.stderr == remote.stderr


async def test_kill_resume_restart_replay_through_the_api(served: Served, tmp_path: Path) -> None:
    s, ns = served, served.ns
    assert (await s.cli("flow", "deploy", str(flows_dir(tmp_path / "flows", ns)))).code == 0

    paused = (await s.start("pause"))["id"]
    await s.wait_state(paused, "PAUSED")
    r = await s.cli("resume", paused, "--output", "json")
    assert r.code == 0, r.stderr
    assert r.json["state"]["current"] == "SUCCESS" and "resumed" in r.stderr  # its new log line

    slow = (await s.start("slow"))["id"]
    await s.wait_state(slow, "RUNNING")
    r = await s.cli("kill", slow, "--output", "json")
    assert r.code == 0 and r.json["state"]["current"] == "KILLED", r.stderr  # the kill worked

    r0 = await s.http.post(f"/api/v1/executions/{ns}.sub/fails", params={"wait": True}, timeout=60)
    fid = r0.json()["id"]
    assert r0.json()["state"]["current"] == "FAILED"
    r = await s.cli("restart", fid, "--output", "json")
    assert r.code == 1 and r.json["id"] == fid, r.stderr
    [boom] = r.json["taskRunList"]
    assert len(boom["attempts"]) == 2  # the failed task ran again, in the same execution

    r = await s.cli("replay", fid, "--output", "json")
    assert r.code == 1 and r.json["originalId"] == fid and r.json["id"] != fid, r.stderr
    assert f"replays {fid}" in r.stderr
    r = await s.cli("restart", fid, "--no-wait")
    assert r.code == 0 and "restart: sent" in r.stderr


async def test_errors_are_one_line_and_a_non_zero_exit(served: Served) -> None:
    s = served
    r = await s.cli("executions", "get", "nope")
    assert r.code == 1 and len(r.stderr.strip().splitlines()) == 1
    assert "not found" in r.stderr and "HTTP 404" in r.stderr
    for args in (("logs", "nope"), ("kill", "nope"), ("restart", "nope"), ("replay", "nope")):
        r = await s.cli(*args)
        assert r.code == 1 and "HTTP 404" in r.stderr and len(r.stderr.strip().splitlines()) == 1, args

    r = await s.cli("executions", "list", env={"ENGINE_TOKEN": ""})
    assert r.code == 1 and "HTTP 401" in r.stderr and "--token" in r.stderr
    r = await s.cli("executions", "list", "--token", "wrong")
    assert r.code == 1 and "HTTP 401" in r.stderr
    r = await s.cli("executions", "list", "--token", TOKEN, env={"ENGINE_TOKEN": ""})
    assert r.code == 0, r.stderr

    r = await s.cli("executions", "list", "--server", f"http://127.0.0.1:{free_port()}")
    assert r.code == 1 and "cannot reach the engine API" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = await s.cli("executions", "list", "--server", "ftp://x")
    assert r.code == 1 and "http(s) URL" in r.stderr
    r = await s.cli("kill", "x", "--roles")
    assert r.code == 2 and "--roles" in r.stderr


async def test_help_documents_the_remote_options() -> None:
    for cmd in (
        ["executions", "list"],
        ["executions", "get"],
        ["logs"],
        ["kill"],
        ["resume"],
        ["restart"],
        ["replay"],
        ["flow", "deploy"],
    ):
        r = await run_cli(
            *cmd, "--help", env={**engine_env(Path("/nonexistent"), None), "COLUMNS": "200"}, timeout=30
        )
        assert r.code == 0 and "--server" in r.stdout and "ENGINE_SERVER" in r.stdout, cmd
        assert "--token" in r.stdout and "ENGINE_TOKEN" in r.stdout, cmd
