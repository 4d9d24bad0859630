"""engine restart / replay / resume / kill / executions / logs through the real CLI.

With ENGINE_NATS_URL set these commands only send the command; `--roles` runs an executor and a
worker in the same process so they can be followed to the end here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from integration_helpers import CliResult

FLAKY = """
id: flaky-{n}
namespace: t.commands
tasks:
  - id: a
    type: io.kestra.plugin.core.log.Log
    message: first
  - id: b
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - test -f {marker}
  - id: c
    type: io.kestra.plugin.core.debug.Return
    format: done
"""


def _flow(tmp_path: Path, n: str) -> tuple[Path, Path]:
    marker = tmp_path / f"ok-{n}"
    path = tmp_path / f"flaky-{n}.yaml"
    path.write_text(FLAKY.format(n=n, marker=marker))
    return path, marker


def test_restart_reruns_the_failed_taskrun_in_the_same_execution(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    path, marker = _flow(tmp_path, "restart")
    first = cli("run", str(path), "--output", "json")
    assert first.code == 1 and first.json["state"]["current"] == "FAILED", first.diag
    eid = first.json["id"]
    marker.touch()
    again = cli("restart", eid, "--roles", "--output", "json")
    assert again.code == 0, again.diag
    ex = again.json
    assert ex["id"] == eid and ex["state"]["current"] == "SUCCESS"
    assert [h["state"] for h in ex["state"]["histories"]][2:4] == ["FAILED", "RESTARTED"]
    b = next(t for t in ex["taskRunList"] if t["taskId"] == "b")
    assert [a["state"]["current"] for a in b["attempts"]] == ["FAILED", "SUCCESS"]
    a = next(t for t in ex["taskRunList"] if t["taskId"] == "a")
    assert len(a["attempts"]) == 1
    # A finished, successful execution has nothing to restart: one clear line, exit 1.
    refused = cli("restart", eid, "--roles")
    assert refused.code == 1 and "no failed or paused taskrun" in refused.stderr


def test_replay_from_a_task_is_a_new_execution(tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    path, marker = _flow(tmp_path, "replay")
    first = cli("run", str(path), "--output", "json")
    eid = first.json["id"]
    marker.touch()
    replayed = cli("replay", eid, "--from", "b", "--roles", "--output", "json")
    assert replayed.code == 0, replayed.diag
    ex = replayed.json
    assert ex["id"] != eid and ex["originalId"] == eid and ex["parentId"] == eid
    assert [t["taskId"] for t in ex["taskRunList"]] == ["a", "b", "c"]
    assert {t["id"] for t in ex["taskRunList"]}.isdisjoint({t["id"] for t in first.json["taskRunList"]})
    original = cli("executions", "get", eid, "--output", "json")
    assert original.json["state"]["current"] == "FAILED"  # the source is never edited
    unknown = cli("replay", eid, "--from", "nope", "--roles")
    assert unknown.code == 1 and "no taskrun or task 'nope'" in unknown.stderr


def test_unknown_execution_ids_get_one_line(cli: Callable[..., CliResult]) -> None:
    for command in ("restart", "kill", "resume", "replay"):
        res = cli(command, "does-not-exist", "--no-roles")
        assert res.code == 1
        assert res.stderr.strip() == "no execution 'does-not-exist' in this store"
    res = cli("executions", "get", "does-not-exist")
    assert res.code == 1 and "no execution" in res.stderr


def test_resume_a_paused_execution(tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    path = tmp_path / "pause.yaml"
    path.write_text(
        "id: paused\nnamespace: t.commands\ntasks:\n"
        "  - id: wait\n    type: io.kestra.plugin.core.flow.Pause\n"
        "    onResume:\n      - {id: answer, type: STRING}\n"
        "  - id: use\n    type: io.kestra.plugin.core.debug.Return\n"
        '    format: "{{ outputs.wait.onResume.answer }}"\n'
    )
    first = cli("run", str(path), "--output", "json", "--timeout", "3")
    assert first.code == 1 and "has not ended" in first.stderr
    listed = cli("executions", "list", "--flow", "paused", "--output", "json")
    eid = listed.json[0]["id"] if isinstance(listed.json, list) else listed.json["id"]
    assert cli("executions", "get", eid, "--output", "json").json["state"]["current"] == "PAUSED"
    resumed = cli("resume", eid, "--input", "answer=yes", "--roles", "--output", "json")
    assert resumed.code == 0, resumed.diag
    use = next(t for t in resumed.json["taskRunList"] if t["taskId"] == "use")
    assert use["outputs"] == {"value": "yes"}
    logs = cli("logs", eid)
    assert logs.code == 0


def test_flow_revisions_lists_every_deployed_change(tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    ns = f"t.rev{tmp_path.name[-6:].replace('_', '')}"
    path = tmp_path / "f.yaml"
    for message in ("one", "two", "two"):  # the same source twice makes no new revision
        path.write_text(
            f"id: r\nnamespace: {ns}\ntasks:\n"
            f"  - {{id: a, type: io.kestra.plugin.core.log.Log, message: {message}}}\n"
        )
        assert cli("run", str(path)).code == 0
    listed = cli("flow", "revisions", ns, "r")
    assert [line.split()[0] for line in listed.stdout.splitlines()[1:]] == ["1", "2"]  # under a header
    assert "message: one" in cli("flow", "revisions", ns, "r", "--show", "1").stdout
    missing = cli("flow", "revisions", ns, "r", "--show", "9")
    assert missing.code == 1 and "no revision 9 (revisions: 1, 2)" in missing.stderr


def test_server_local_watch_redeploys_a_changed_flow(tmp_path: Path, nats_url: str) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from integration_helpers import engine_env, run_cli

    flows = tmp_path / "flows"
    flows.mkdir()
    ns = f"t.watch{tmp_path.name[-6:].replace('_', '')}"
    source = (
        "id: w\nnamespace: {ns}\ntasks:\n  - {{id: a, type: io.kestra.plugin.core.log.Log, message: {m}}}\n"
    )
    (flows / "w.yaml").write_text(source.format(ns=ns, m="one"))
    home = tmp_path / "home"
    env = engine_env(home, nats_url)
    port = 20000 + os.getpid() % 20000
    cmd = [
        sys.executable,
        "-m",
        "engine",
        "server",
        "local",
        "--flows",
        str(flows),
        "--watch",
        "--port",
        str(port),
    ]
    server = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        assert server.stderr is not None
        while "running on" not in server.stderr.readline():
            assert time.monotonic() < deadline, "server local did not start"
        time.sleep(1.0)  # the watcher starts after the roles announce themselves
        (flows / "w.yaml").write_text(source.format(ns=ns, m="two"))
        revisions: list[str] = []
        while time.monotonic() < deadline:
            listed = run_cli("flow", "revisions", ns, "w", home=home, nats_url=nats_url)
            revisions = [line.split()[0] for line in listed.stdout.splitlines()[1:]]
            if revisions == ["1", "2"]:
                break
            time.sleep(0.2)
        assert revisions == ["1", "2"]
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(15)
        finally:  # a server that ignored SIGTERM still fails the test, but leaks no process or pipe
            if server.poll() is None:
                server.kill()
                server.wait()
            if server.stderr is not None:
                server.stderr.close()


def test_run_follows_a_retry_by_new_executions_to_the_last_try(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    path = tmp_path / "cne.yaml"
    path.write_text(
        "id: cne\nnamespace: t.commands\n"
        "retry: {behavior: CREATE_NEW_EXECUTION, type: constant, interval: PT1S, maxAttempt: 2}\n"
        "tasks:\n  - {id: fail, type: io.kestra.plugin.core.execution.Fail}\n"
    )
    done = cli("run", str(path), "--output", "json")
    assert done.code == 1, done.diag
    last = done.json
    assert last["state"]["current"] == "FAILED"
    assert last["metadata"]["attemptNumber"] == 2
    assert f"RETRIED: next try {last['id']}" in done.stderr
    first = cli("executions", "get", last["originalId"], "--output", "json")
    assert first.json["state"]["current"] == "RETRIED", first.diag
    assert first.json["metadata"]["attemptNumber"] == 1
