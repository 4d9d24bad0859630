"""The engine end to end, in process: Runtime + executor + worker as asyncio tasks on the session server.

And the CLI's contract (exit codes, live logs, ``--output json``) as a subprocess.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from integration_helpers import (
    CliResult,
    Engine,
    alive,
    by_task,
    states,
    taskruns,
    wait_file,
    wait_gone,
)

from engine.clock import utcnow
from engine.core import events as ev

pytestmark = pytest.mark.anyio

Cli = Callable[..., CliResult]
ID = re.compile(r"^[0-9A-Za-z]{22}$")


def ns() -> str:
    """A namespace of its own per test (flows and kv keys live on the shared server)."""
    return f"it.t{uuid.uuid4().hex[:10]}"


def when(date: str) -> datetime:
    return datetime.fromisoformat(date.replace("Z", "+00:00"))


def attempt_states(tr: Any) -> list[str]:
    return [a.state for a in tr.attempts]


# ---- waiting ----------------------------------------------------------------------------------


async def test_wait_terminal_returns_the_terminal_state(eng: Engine) -> None:
    from engine.ids import new_execution_id

    rt = eng.rt
    flow = await eng.deploy(f"""
id: quick
namespace: {ns()}
tasks:
  - id: a
    type: io.kestra.plugin.core.debug.Return
    format: x
""")
    seen = []
    for _ in range(60):
        eid = new_execution_id()
        st = await rt.wait_terminal(
            eid, on_start=lambda eid=eid: rt.create_execution(flow, {}, execution_id=eid), timeout=10
        )
        seen.append(st.state)
    assert seen == ["SUCCESS"] * 60, f"{sum(s != 'SUCCESS' for s in seen)} of 60 returned early"


# ---- retry ------------------------------------------------------------------------------------


async def test_retry_constant_counts_total_attempts(eng: Engine) -> None:
    st = await eng.run(f"""
id: retry-always
namespace: {ns()}
tasks:
  - id: broken
    type: io.kestra.plugin.scripts.shell.Commands
    retry:
      type: constant
      interval: PT0.2S
      maxAttempt: 3
    commands:
      - echo "attempt {{{{ taskrun.attemptsCount }}}}"
      - exit 7
  - id: never
    type: io.kestra.plugin.core.log.Log
    message: not reached
""")
    assert st.state == "FAILED"
    trs = by_task(st)
    assert set(trs) == {"broken"}
    broken = trs["broken"]
    assert broken.state == "FAILED"
    assert [a.number for a in broken.attempts] == [1, 2, 3]
    assert attempt_states(broken) == ["FAILED", "FAILED", "FAILED"]
    # The constant interval separates attempts.
    for prev, nxt in zip(broken.attempts, broken.attempts[1:], strict=False):
        gap = (when(nxt.histories[0].date) - when(prev.histories[-1].date)).total_seconds()
        assert gap >= 0.18, gap


async def test_retry_until_success(eng: Engine) -> None:
    st = await eng.run(f"""
id: retry-flaky
namespace: {ns()}
tasks:
  - id: flaky
    type: io.kestra.plugin.scripts.shell.Commands
    retry:
      type: constant
      interval: PT0.05S
      maxAttempt: 5
    commands:
      - test {{{{ taskrun.attemptsCount }}}} -ge 2
      - 'echo "::{{\\"outputs\\": {{\\"attempt\\": {{{{ taskrun.attemptsCount }}}}}}}}::"'
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ outputs.flaky.vars.attempt }}}}"
""")
    assert st.state == "SUCCESS"
    trs = by_task(st)
    assert attempt_states(trs["flaky"]) == ["FAILED", "FAILED", "SUCCESS"]
    assert trs["flaky"].state == "SUCCESS"
    assert trs["after"].outputs == {"value": "2"}


async def test_retry_not_on_invalid_properties(eng: Engine) -> None:
    """A task whose properties cannot render is not retried: it fails on its first attempt.

    The bad state comes from an expression: written literally, the loader refuses it."""
    st = await eng.run(f"""
id: retry-bad-props
namespace: {ns()}
tasks:
  - id: bad
    type: io.kestra.plugin.core.execution.Exit
    state: "{{{{ 'NOT_A_STATE' }}}}"
    retry:
      type: constant
      interval: PT0.05S
      maxAttempt: 3
""")
    assert st.state == "FAILED"
    assert attempt_states(by_task(st)["bad"]) == ["FAILED"]


# ---- timeout and kill -------------------------------------------------------------------------


def sleeper(pidfile: Path, seconds: int = 30) -> list[str]:
    """Shell commands: record the shell PID, start a sleep in the background, record its PID, wait."""
    return [f"echo $$ > {pidfile}", f"sleep {seconds} &", f"echo $! > {pidfile}.child", "wait"]


def commands_yaml(commands: list[str], indent: int = 6) -> str:
    pad = " " * indent
    return "\n".join(f"{pad}- {json.dumps(c)}" for c in commands)


async def test_task_timeout_kills_the_process(eng: Engine, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    t0 = time.monotonic()
    st = await eng.run(f"""
id: timeout
namespace: {ns()}
tasks:
  - id: slow
    type: io.kestra.plugin.scripts.shell.Commands
    timeout: PT0.5S
    commands:
{commands_yaml(sleeper(pidfile))}
  - id: never
    type: io.kestra.plugin.core.log.Log
    message: not reached
""")
    elapsed = time.monotonic() - t0
    assert st.state == "FAILED"
    trs = by_task(st)
    assert set(trs) == {"slow"}
    assert trs["slow"].state == "FAILED"
    assert attempt_states(trs["slow"]) == ["FAILED"]
    assert elapsed < 10
    shell, child = int(pidfile.read_text()), int(Path(f"{pidfile}.child").read_text())
    assert await gone(shell), f"shell {shell} still alive after the timeout"
    assert await gone(child), f"sleep {child} still alive after the timeout"


async def test_kill_running_execution(eng: Engine, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    eid = await eng.start(f"""
id: kill-me
namespace: {ns()}
tasks:
  - id: long
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
{commands_yaml(sleeper(pidfile))}
  - id: never
    type: io.kestra.plugin.core.log.Log
    message: not reached
""")
    child = int(await wait_file(Path(f"{pidfile}.child")))
    shell = int(pidfile.read_text())
    assert alive(shell) and alive(child)
    running = await eng.load(eid)
    assert running.state == "RUNNING"
    await eng.rt.store.send_input(eid, ev.KillRequested(date=utcnow(), reason="test"))
    st = await eng.wait(eid)
    assert st.state == "KILLED"
    assert [h.state for h in st.histories][-2:] == ["KILLING", "KILLED"]
    trs = by_task(st)
    assert set(trs) == {"long"}
    assert trs["long"].state == "KILLED"
    assert await gone(shell), f"shell {shell} still alive after the kill"
    assert await gone(child), f"sleep {child} still alive after the kill"


# ---- subflows -----------------------------------------------------------------------------------


async def gone(pid: int) -> bool:
    """wait_gone off the event loop: the in-process worker kills the process on this loop."""
    return await asyncio.to_thread(wait_gone, pid)


def child_flow(namespace: str, fail: bool = False, sleep: float = 0) -> str:
    extra = ""
    if sleep:
        extra += f"""
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT{sleep}S"""
    if fail:
        extra += """
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: child failed"""
    return f"""
id: child
namespace: {namespace}
inputs:
  - id: n
    type: INT
tasks:
  - id: double
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ inputs.n * 2 }}}}"{extra}
outputs:
  - id: doubled
    type: STRING
    value: "{{{{ outputs.double.value }}}}"
"""


def parent_flow(namespace: str, *, wait: bool = True, transmit: bool = True) -> str:
    return f"""
id: parent
namespace: {namespace}
tasks:
  - id: call
    type: io.kestra.plugin.core.flow.Subflow
    namespace: {namespace}
    flowId: child
    inputs:
      n: 21
    wait: {str(wait).lower()}
    transmitFailed: {str(transmit).lower()}
  - id: next
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ outputs.call.outputs.doubled ?? 'no outputs' }}}}"
"""


async def test_subflow_wait_outputs(eng: Engine) -> None:
    space = ns()
    await eng.deploy(child_flow(space))
    st = await eng.run(parent_flow(space))
    assert st.state == "SUCCESS"
    trs = by_task(st)
    call = trs["call"]
    assert call.state == "SUCCESS"
    child_id = call.outputs["executionId"]
    assert ID.match(child_id)
    assert call.outputs["state"] == "SUCCESS"
    assert call.outputs["outputs"] == {"doubled": "42"}
    assert trs["next"].outputs == {"value": "42"}
    child = await eng.load(child_id)
    assert child.state == "SUCCESS"
    assert child.inputs == {"n": 21}
    assert child.parent is not None and child.parent["execution_id"] == st.id
    assert child.parent["taskrun_id"] == call.id


async def test_subflow_transmit_failed(eng: Engine) -> None:
    space = ns()
    await eng.deploy(child_flow(space, fail=True))
    st = await eng.run(parent_flow(space, transmit=True))
    assert st.state == "FAILED"
    trs = by_task(st)
    assert trs["call"].state == "FAILED"
    assert "next" not in trs
    child = await eng.load(trs["call"].outputs["executionId"])
    assert child.state == "FAILED"


async def test_subflow_failure_not_transmitted(eng: Engine) -> None:
    space = ns()
    await eng.deploy(child_flow(space, fail=True))
    st = await eng.run(parent_flow(space, transmit=False))
    assert st.state == "SUCCESS"
    trs = by_task(st)
    assert trs["call"].state == "SUCCESS"
    assert trs["call"].outputs["state"] == "FAILED"
    child = await eng.load(trs["call"].outputs["executionId"])
    assert child.state == "FAILED"


async def test_subflow_no_wait(eng: Engine) -> None:
    space = ns()
    await eng.deploy(child_flow(space, sleep=1))
    st = await eng.run(parent_flow(space, wait=False))
    assert st.state == "SUCCESS"
    trs = by_task(st)
    child_id = trs["call"].outputs["executionId"]
    assert trs["next"].outputs == {"value": "no outputs"}
    child = await eng.wait(child_id)
    assert child.state == "SUCCESS"
    # The parent did not wait for the child's 1 s sleep.
    assert when(st.end_date) < when(child.end_date)


async def test_subflow_missing_flow_fails_the_task(eng: Engine) -> None:
    space = ns()
    st = await eng.run(parent_flow(space))
    assert st.state == "FAILED"
    assert by_task(st)["call"].state == "FAILED"


# ---- ForEach ------------------------------------------------------------------------------------


async def test_foreach_concurrency_limit(eng: Engine) -> None:
    st = await eng.run(
        f"""
id: foreach-limit
namespace: {ns()}
tasks:
  - id: loop
    type: io.kestra.plugin.core.flow.ForEach
    values: ["a", "b", "c", "d", "e"]
    concurrencyLimit: 2
    tasks:
      - id: work
        type: io.kestra.plugin.scripts.shell.Commands
        commands:
          - sleep 0.3
          - 'echo "::{{\\"outputs\\": {{\\"v\\": \\"{{{{ taskrun.value }}}}\\"}}}}::"'
""",
        timeout=20,
    )
    assert st.state == "SUCCESS"
    trs = by_task(st)
    values = ["a", "b", "c", "d", "e"]
    spans = []
    for v in values:
        tr = trs[f"work[{v}]"]
        assert tr.state == "SUCCESS"
        assert tr.outputs["vars"] == {"v": v}
        assert len(tr.attempts) == 1
        spans.append((when(tr.attempts[0].histories[0].date), when(tr.attempts[0].histories[-1].date)))
    overlap = max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)
    assert overlap == 2, spans  # never more than the limit, and the limit is actually used


# ---- Exit, Labels, afterExecution, flow outputs -------------------------------------------------


async def test_exit_ends_the_execution(eng: Engine) -> None:
    st = await eng.run(f"""
id: exit
namespace: {ns()}
tasks:
  - id: first
    type: io.kestra.plugin.core.debug.Return
    format: one
  - id: leave
    type: io.kestra.plugin.core.execution.Exit
    state: WARNING
  - id: never
    type: io.kestra.plugin.core.debug.Return
    format: two
""")
    assert st.state == "WARNING"
    trs = by_task(st)
    assert "never" not in trs
    assert trs["first"].state == "SUCCESS"
    assert trs["leave"].state == "SUCCESS"


async def test_exit_killed_stops_a_running_sibling(eng: Engine, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    st = await eng.run(f"""
id: exit-killed
namespace: {ns()}
tasks:
  - id: both
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - id: long
        type: io.kestra.plugin.scripts.shell.Commands
        commands:
{commands_yaml(sleeper(pidfile), indent=10)}
      - id: stopper
        type: io.kestra.plugin.core.flow.Sequential
        tasks:
          - id: nap
            type: io.kestra.plugin.core.flow.Sleep
            duration: PT0.5S
          - id: leave
            type: io.kestra.plugin.core.execution.Exit
            state: KILLED
""")
    assert st.state == "KILLED"
    trs = by_task(st)
    assert trs["long"].state == "KILLED"
    assert await gone(int(pidfile.read_text()))
    assert await gone(int(Path(f"{pidfile}.child").read_text()))


async def test_labels_task(eng: Engine) -> None:
    st = await eng.run(f"""
id: labels
namespace: {ns()}
labels:
  team: data
inputs:
  - id: env
    type: STRING
    defaults: prod
tasks:
  - id: tag
    type: io.kestra.plugin.core.execution.Labels
    labels:
      env: "{{{{ inputs.env }}}}"
      team: platform
  - id: read
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ labels.env }}}}/{{{{ labels.team }}}}"
""")
    assert st.state == "SUCCESS"
    assert st.labels == {"team": "platform", "env": "prod", "system.correlationId": st.id}
    assert by_task(st)["read"].outputs == {"value": "prod/platform"}


async def test_after_execution_runs_after_the_end(eng: Engine) -> None:
    st = await eng.run(f"""
id: after
namespace: {ns()}
tasks:
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
afterExecution:
  - id: notify
    type: io.kestra.plugin.core.debug.Return
    format: "done"
""")
    assert st.state == "FAILED"
    trs = by_task(st)
    assert trs["notify"].state == "SUCCESS"
    assert trs["notify"].outputs == {"value": "done"}
    assert trs["notify"].histories[0].date >= trs["boom"].histories[-1].date


async def test_after_execution_sees_the_final_state(eng: Engine) -> None:
    st = await eng.run(f"""
id: after-state
namespace: {ns()}
tasks:
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
afterExecution:
  - id: notify
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ execution.state }}}}"
""")
    assert st.state == "FAILED"
    assert by_task(st)["notify"].outputs == {"value": "FAILED"}


async def test_flow_outputs(eng: Engine) -> None:
    st = await eng.run(f"""
id: outputs
namespace: {ns()}
inputs:
  - id: who
    type: STRING
    defaults: Ada
tasks:
  - id: a
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ inputs.who | lower }}}}"
  - id: b
    type: io.kestra.plugin.core.output.OutputValues
    values:
      pair: "{{{{ outputs.a.value }}}}-{{{{ outputs.a.value | upper }}}}"
outputs:
  - id: name
    type: STRING
    value: "{{{{ outputs.a.value }}}}"
  - id: pair
    type: STRING
    value: "{{{{ outputs.b.values.pair }}}}"
""")
    assert st.state == "SUCCESS"
    assert st.outputs == {"name": "ada", "pair": "ada-ADA"}


async def test_flow_output_error_fails_the_execution(eng: Engine) -> None:
    st = await eng.run(f"""
id: outputs-bad
namespace: {ns()}
tasks:
  - id: a
    type: io.kestra.plugin.core.debug.Return
    format: x
outputs:
  - id: missing
    type: STRING
    value: "{{{{ outputs.nope.value }}}}"
""")
    assert st.state == "FAILED"
    assert by_task(st)["a"].state == "SUCCESS"


# ---- secrets and kv ---------------------------------------------------------------------------


async def test_secret_from_env(eng: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SECRET_DB_PASSWORD", base64.b64encode(b"s3cr3t!").decode())
    envfile = tmp_path / "env"
    st = await eng.run(f"""
id: secret
namespace: {ns()}
tasks:
  - id: read
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ secret('DB_PASSWORD') | length }}}}"
  - id: shell
    type: io.kestra.plugin.scripts.shell.Commands
    env:
      PASSWORD: "{{{{ secret('DB_PASSWORD') }}}}"
    commands:
      - printf '%s' "$PASSWORD" > {envfile}
      - printf '|%s' "${{SECRET_DB_PASSWORD:-absent}}" >> {envfile}
""")
    assert st.state == "SUCCESS"
    assert by_task(st)["read"].outputs == {"value": "7"}
    # The decoded value reaches the script through `env`; the raw SECRET_ variable does not.
    assert envfile.read_text() == "s3cr3t!|absent"


async def test_missing_secret_fails_the_task(eng: Engine) -> None:
    st = await eng.run(f"""
id: secret-missing
namespace: {ns()}
tasks:
  - id: read
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ secret('NO_SUCH_SECRET_{uuid.uuid4().hex}') }}}}"
""")
    assert st.state == "FAILED"
    assert by_task(st)["read"].state == "FAILED"


async def test_kv_function_across_tasks(eng: Engine) -> None:
    space = ns()
    st = await eng.run(f"""
id: kv
namespace: {space}
tasks:
  - id: put
    type: io.kestra.plugin.core.kv.Set
    key: counter
    value: "41"
    kvType: NUMBER
  - id: bump
    type: io.kestra.plugin.core.kv.Set
    key: counter
    value: "{{{{ kv('counter') + 1 }}}}"
    kvType: NUMBER
  - id: read
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ kv('counter') }}}}|{{{{ kv('missing', errorOnMissing=false) ?? 'none' }}}}"
  - id: other
    type: io.kestra.plugin.core.kv.Set
    namespace: {space}.other
    key: counter
    value: "7"
  - id: read_other
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ kv('counter', '{space}.other') }}}}"
""")
    assert st.state == "SUCCESS", [(t.task_id, t.state) for t in st.taskruns.values()]
    trs = by_task(st)
    assert trs["read"].outputs == {"value": "42|none"}
    assert trs["read_other"].outputs == {"value": "7"}


async def test_kv_function_missing_key_is_null_unless_error_on_missing(eng: Engine) -> None:
    # Kestra's KvFunction: a missing key is null; errorOnMissing=true makes it an error
    st = await eng.run(f"""
id: kv-missing
namespace: {ns()}
tasks:
  - id: read
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ kv('absent') ?? 'none' }}}}"
  - id: strict
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ kv('absent', errorOnMissing=true) }}}}"
""")
    assert st.state == "FAILED"
    read, strict = st.taskruns.values()
    assert read.state == "SUCCESS" and read.outputs == {"value": "none"}
    assert strict.state == "FAILED"


# ---- CLI ----------------------------------------------------------------------------------------


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_cli_invalid_flow_exits_2(cli: Cli, tmp_path: Path) -> None:
    flow = write(
        tmp_path,
        "bad.yaml",
        """
id: bad
namespace: it.cli
tasks:
  - id: x
    type: io.kestra.plugin.core.log.NoSuchTask
    message: hi
""",
    )
    res = cli("run", str(flow), "--output", "json")
    assert res.code == 2, res.diag
    assert res.stdout == ""
    assert "NoSuchTask" in res.stderr and "line" in res.stderr


def test_cli_yaml_error_exits_2(cli: Cli, tmp_path: Path) -> None:
    flow = write(tmp_path, "broken.yaml", "id: broken\nnamespace: it.cli\ntasks: [\n")
    res = cli("run", str(flow))
    assert res.code == 2, res.diag
    assert "broken.yaml" in res.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["--input", "count=abc"], "count"), ([], "count"), (["--input", "nokeyvalue"], "nokeyvalue")],
)
def test_cli_bad_input_exits_2(cli: Cli, tmp_path: Path, args: list[str], needle: str) -> None:
    flow = write(
        tmp_path,
        "typed.yaml",
        """
id: typed
namespace: it.cli
inputs:
  - id: count
    type: INT
tasks:
  - id: x
    type: io.kestra.plugin.core.log.Log
    message: "{{ inputs.count }}"
""",
    )
    res = cli("run", str(flow), *args, "--output", "json")
    assert res.code == 2, res.diag
    assert needle in res.stderr
    assert res.stdout == ""


def test_cli_failing_flow_exits_1(cli: Cli, tmp_path: Path) -> None:
    flow = write(
        tmp_path,
        "fail.yaml",
        """
id: fail
namespace: it.cli
tasks:
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: broken on purpose
""",
    )
    res = cli("run", str(flow), "--output", "json")
    assert res.code == 1, res.diag
    doc = res.json
    assert doc["state"]["current"] == "FAILED"
    assert states(doc) == {"boom": "FAILED"}
    assert "broken on purpose" in res.stderr


def test_cli_warning_exits_0(cli: Cli, tmp_path: Path) -> None:
    flow = write(
        tmp_path,
        "warn.yaml",
        """
id: warn
namespace: it.cli
tasks:
  - id: soft
    type: io.kestra.plugin.core.execution.Fail
    allowFailure: true
""",
    )
    res = cli("run", str(flow), "--output", "json")
    assert res.code == 0, res.diag
    assert res.json["state"]["current"] == "WARNING"


def test_cli_live_logs_on_stderr(cli: Cli, tmp_path: Path) -> None:
    flow = write(
        tmp_path,
        "logs.yaml",
        """
id: logs
namespace: it.cli
tasks:
  - id: first
    type: io.kestra.plugin.core.log.Log
    message: "first message {{ 20 + 22 }}"
  - id: second
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - echo "from the shell"
  - id: third
    type: io.kestra.plugin.core.log.Log
    level: WARN
    message: "careful"
""",
    )
    res = cli("run", str(flow))
    assert res.code == 0, res.diag
    assert res.stdout == ""  # pretty output goes to stderr; stdout stays clean
    lines = res.stderr.splitlines()
    line_re = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} (\w+)\s+(\S+) (.*)$")

    def find(text: str) -> tuple[int, re.Match[str]]:
        for i, line in enumerate(lines):
            m = line_re.match(line)
            if m and m.group(3) == text:
                return i, m
        raise AssertionError(f"no log line {text!r} in:\n{res.stderr}")

    i1, m1 = find("first message 42")
    i2, m2 = find("from the shell")
    i3, m3 = find("careful")
    assert (m1.group(1), m1.group(2)) == ("INFO", "first")
    assert (m2.group(1), m2.group(2)) == ("INFO", "second")
    assert (m3.group(1), m3.group(2)) == ("WARN", "third")
    assert i1 < i2 < i3
    assert re.search(r"^execution [0-9A-Za-z]{22} SUCCESS \(3 taskruns", res.stderr, re.M)


def test_cli_json_shape(cli: Cli, tmp_path: Path) -> None:
    flow = write(
        tmp_path,
        "shape.yaml",
        """
id: shape
namespace: it.cli
labels:
  team: data
inputs:
  - id: n
    type: INT
    defaults: 2
tasks:
  - id: ret
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.n * 3 }}"
  - id: group
    type: io.kestra.plugin.core.flow.Sequential
    tasks:
      - id: inner
        type: io.kestra.plugin.core.log.Log
        message: hi
outputs:
  - id: six
    type: STRING
    value: "{{ outputs.ret.value }}"
""",
    )
    res = cli("run", str(flow), "--input", "n=2", "--label", "run=ci", "--output", "json")
    assert res.code == 0, res.diag
    doc = res.json
    assert ID.match(doc["id"])
    assert doc["originalId"] == doc["id"]
    assert (doc["namespace"], doc["flowId"]) == ("it.cli", "shape")
    assert isinstance(doc["flowRevision"], int) and doc["flowRevision"] >= 1
    assert doc["inputs"] == {"n": 2}
    assert {"key": "team", "value": "data"} in doc["labels"]
    assert {"key": "run", "value": "ci"} in doc["labels"]
    assert doc["outputs"] == {"six": "6"}
    assert doc["parentId"] is None
    state = doc["state"]
    assert state["current"] == "SUCCESS"
    assert [h["state"] for h in state["histories"]] == ["CREATED", "RUNNING", "SUCCESS"]
    assert state["startDate"] == state["histories"][0]["date"]
    assert state["endDate"] == state["histories"][-1]["date"]
    dates = [h["date"] for h in state["histories"]]
    assert dates == sorted(dates)
    trs = taskruns(doc)
    assert list(trs) == ["ret", "group", "inner"]
    for tr in doc["taskRunList"]:
        assert ID.match(tr["id"])
        assert tr["executionId"] == doc["id"]
        assert tr["state"]["current"] == "SUCCESS"
        assert [h["state"] for h in tr["state"]["histories"]] == ["CREATED", "RUNNING", "SUCCESS"]
    assert trs["inner"]["parentTaskRunId"] == trs["group"]["id"]
    assert trs["ret"]["parentTaskRunId"] is None
    assert trs["group"]["attempts"] == []  # a flowable runs no attempt
    (attempt,) = trs["ret"]["attempts"]
    assert attempt["state"]["current"] == "SUCCESS"
    assert [h["state"] for h in attempt["state"]["histories"]] == ["RUNNING", "SUCCESS"]
    assert trs["ret"]["outputs"] == {"value": "6"}


def test_cli_secret_env(cli: Cli, tmp_path: Path) -> None:
    flow = write(
        tmp_path,
        "secret.yaml",
        """
id: secret
namespace: it.cli
tasks:
  - id: read
    type: io.kestra.plugin.core.debug.Return
    format: "{{ secret('API_TOKEN') | upper }}"
""",
    )
    res = cli(
        "run", str(flow), "--output", "json", env={"SECRET_API_TOKEN": base64.b64encode(b"tok-123").decode()}
    )
    assert res.code == 0, res.diag
    assert taskruns(res.json)["read"]["outputs"] == {"value": "TOK-123"}


async def test_execution_count_counts_per_flow(eng: Engine) -> None:
    space = ns()
    for _ in range(2):
        await eng.run(
            f"id: counted\nnamespace: {space}\n"
            "tasks:\n  - {id: a, type: io.kestra.plugin.core.log.Log, message: x}\n"
        )
    st = await eng.run(f"""
id: counter
namespace: {space}
tasks:
  - id: count
    type: io.kestra.plugin.core.execution.Count
    flows:
      - {{namespace: {space}, flowId: counted}}
      - {{namespace: {space}, flowId: absent}}
    states: [SUCCESS]
    expression: "{{{{ count > 0 }}}}"
""")
    assert st.state == "SUCCESS"
    assert by_task(st)["count"].outputs == {
        "results": [{"namespace": space, "flowId": "counted", "count": 2}],
        "total": 1,
    }


async def test_trigger_toggle_task_enables_a_stored_trigger(eng: Engine) -> None:
    from eventstore.triggerstate import TriggerKV, schedule_key, set_disabled

    space = ns()
    kv = TriggerKV(eng.rt.store)
    await kv.setup()
    await set_disabled(kv, space, "toggler", "every", True)
    st = await eng.run(f"""
id: toggler
namespace: {space}
tasks:
  - id: on
    type: io.kestra.core.tasks.trigger.Toggle
    trigger: every
    enabled: true
triggers:
  - id: every
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 0 1 1 *"
""")
    assert st.state == "SUCCESS"
    state, _ = await kv.get(schedule_key(space, "toggler", "every"))
    assert state["disabled"] is False
