"""Script tasks run as real local processes."""

from __future__ import annotations

import os
import sys
import time

import anyio
import pytest
from plugin_harness import FakeContext, registry, run_task

from engine.core.errors import TaskFailed
from plugins.scripts.process import MAX_LINE

pytestmark = pytest.mark.anyio

SH = "io.kestra.plugin.scripts.shell.Commands"
SH_SCRIPT = "io.kestra.plugin.scripts.shell.Script"
PY = "io.kestra.plugin.scripts.python.Script"
PY_CMD = "io.kestra.plugin.scripts.python.Commands"
BASH = "io.kestra.core.tasks.scripts.Bash"
OLD_PY = "io.kestra.core.tasks.scripts.Python"


@pytest.mark.parametrize("name", [SH, SH_SCRIPT, PY, PY_CMD, BASH, OLD_PY])
def test_registered(name: str) -> None:
    assert registry().resolve(name).type == name


async def test_commands_stdout_and_outputs(ctx: FakeContext) -> None:
    result = await run_task(SH, {"commands": ["echo hello", "echo world"]}, ctx)
    assert result.state == "SUCCESS"
    assert result.outputs == {"exitCode": 0, "vars": {}, "outputFiles": {}}
    assert ctx.messages("INFO") == ["hello", "world"]


async def test_protocol_outputs_logs_and_metrics(ctx: FakeContext) -> None:
    commands = [
        """echo '::{"outputs": {"a": 1, "nested": {"k": "v"}}}::'""",
        """echo '::{"outputs": {"b": "two", "a": 3}}::'""",
        """echo '::{"metrics": [{"name": "n", "type": "counter", "value": 1}]}::'""",
        """echo '::{"logs": [{"level": "WARN", "message": "careful"}, {"message": "plain"}]}::'""",
        "echo '::{not json}::'",
        'echo \'not ::{"outputs": {"x": 1}}:: a protocol line\'',
    ]
    result = await run_task(SH, {"commands": commands}, ctx)
    assert result.outputs["vars"] == {"a": 3, "nested": {"k": "v"}, "b": "two"}
    assert ("WARN", "careful") in ctx.logs and ("INFO", "plain") in ctx.logs
    assert any(level == "WARN" and m.startswith("Invalid outputs") for level, m in ctx.logs)
    assert ctx.messages("INFO")[-1] == 'not ::{"outputs": {"x": 1}}:: a protocol line'
    assert not any("::{" in m and "outputs" in m for m in ctx.messages("INFO")[:-1])


async def test_stderr_logs_error_and_warning_state(ctx: FakeContext) -> None:
    result = await run_task(SH, {"commands": ["echo out", "echo err >&2"]}, ctx)
    assert result.state == "WARNING"
    assert ("ERROR", "err") in ctx.logs and ("INFO", "out") in ctx.logs


async def test_warning_on_stderr_disabled(ctx: FakeContext) -> None:
    result = await run_task(SH, {"commands": ["echo err >&2"], "warningOnStdErr": False}, ctx)
    assert result.state == "SUCCESS"


async def test_nonzero_exit_fails_with_outputs(ctx: FakeContext) -> None:
    commands = [
        """echo '::{"outputs": {"before": true}}::'""",
        "echo first problem >&2",
        "echo 'last problem' >&2",
        "exit 7",
    ]
    with pytest.raises(TaskFailed) as info:
        await run_task(SH, {"commands": commands}, ctx)
    assert str(info.value) == "Command failed with exit code 7: last problem"
    assert info.value.outputs["exitCode"] == 7
    assert info.value.outputs["vars"] == {"before": True}


async def test_fail_fast_stops_at_first_error(ctx: FakeContext) -> None:
    with pytest.raises(TaskFailed, match="exit code 3"):
        await run_task(SH, {"commands": ["echo a", "(exit 3)", "echo never"]}, ctx)
    assert "never" not in ctx.messages()


async def test_fail_fast_false_runs_everything(ctx: FakeContext) -> None:
    result = await run_task(SH, {"commands": ["false", "echo still"], "failFast": False}, ctx)
    assert result.outputs["exitCode"] == 0
    assert "still" in ctx.messages("INFO")


async def test_before_commands_env_and_workdir(ctx: FakeContext) -> None:
    props = {
        "beforeCommands": ["export GREETING=hi"],
        "commands": [
            'echo "$GREETING $NAME $NUM $FLAG"',
            "pwd",
            'echo "$WORKING_DIR"',
            'test -d "$OUTPUT_DIR"',
        ],
        "env": {"NAME": "bob", "NUM": 5, "FLAG": True},
    }
    result = await run_task(SH, props, ctx)
    assert result.state == "SUCCESS"
    workdir = str(ctx.workdir)
    assert ctx.messages("INFO") == ["hi bob 5 true", workdir, workdir]


async def test_secret_env_not_leaked(ctx: FakeContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_TOKEN", "c2VjcmV0")
    await run_task(SH, {"commands": ['echo "[${SECRET_TOKEN:-}]"']}, ctx)
    assert ctx.messages("INFO") == ["[]"]


async def test_input_and_output_files(ctx: FakeContext) -> None:
    props = {
        "inputFiles": {"data.txt": "abc\n", "sub/dir/conf.json": {"k": 1}},
        "commands": [
            "cat data.txt",
            "cat sub/dir/conf.json",
            "echo",
            "cp data.txt out.csv",
            "echo x > other.csv",
            'echo y > "$OUTPUT_DIR/report.txt"',
        ],
        "outputFiles": ["*.csv"],
    }
    result = await run_task(SH, props, ctx)
    assert ctx.messages("INFO") == ["abc", '{"k": 1}']
    files = result.outputs["outputFiles"]
    assert set(files) == {"out.csv", "other.csv", "report.txt"}
    assert await ctx.files.get(files["out.csv"]) == b"abc\n"
    assert all(
        u.startswith("kestra:///company/team/flow1/executions/exec1/tasks/task1/tr1/") for u in files.values()
    )


async def test_input_files_as_json_string(ctx: FakeContext) -> None:
    await run_task(SH, {"inputFiles": '{"a.txt": "A"}', "commands": ["cat a.txt; echo"]}, ctx)
    assert ctx.messages("INFO") == ["A"]


async def test_input_files_cannot_escape_workdir(ctx: FakeContext) -> None:
    with pytest.raises(TaskFailed, match="outside the working directory"):
        await run_task(SH, {"inputFiles": {"../evil.txt": "x"}, "commands": ["true"]}, ctx)


async def test_custom_interpreter(ctx: FakeContext) -> None:
    props = {"interpreter": ["/bin/bash", "-c"], "commands": ['echo "${BASH_VERSION:+bash}"']}
    result = await run_task(SH, props, ctx)
    assert result.state == "SUCCESS" and ctx.messages("INFO") == ["bash"]


async def test_missing_interpreter(ctx: FakeContext) -> None:
    with pytest.raises(TaskFailed, match="cannot start interpreter") as info:
        await run_task(SH, {"interpreter": ["/no/such/shell", "-c"], "commands": ["true"]}, ctx)
    assert not info.value.retryable


async def test_shell_script(ctx: FakeContext) -> None:
    script = 'for i in 1 2; do\n  echo "n=$i"\ndone\necho \'::{"outputs": {"done": "yes"}}::\'\n'
    result = await run_task(SH_SCRIPT, {"script": script}, ctx)
    assert ctx.messages("INFO") == ["n=1", "n=2"]
    assert result.outputs["vars"] == {"done": "yes"}


async def test_live_streaming_order(ctx: FakeContext) -> None:
    start = time.monotonic()
    await run_task(SH, {"commands": ["echo first", "sleep 0.6", "echo second"]}, ctx)
    assert ctx.messages("INFO") == ["first", "second"]
    times = [t - start for (lvl, _), t in zip(ctx.logs, ctx.log_times, strict=True) if lvl == "INFO"]
    first_at, second_at = times
    assert second_at - first_at > 0.4  # 'first' was logged while the process was still running


async def test_timeout_kills_script(ctx: FakeContext) -> None:
    pidfile = ctx.workdir / "pid"
    start = time.monotonic()
    with anyio.move_on_after(0.5) as scope:
        await run_task(SH, {"commands": [f"echo $$ > {pidfile}", "sleep 30 & wait"]}, ctx)
    assert scope.cancelled_caught
    assert time.monotonic() - start < 5
    pid = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_python_script(ctx: FakeContext) -> None:
    script = (
        "import json, sys\n"
        "flag = true\n"
        "print('running', sys.version_info[0])\n"
        "print('::' + json.dumps({'outputs': {'sum': 1 + 2, 'flag': flag, 'none': null}}) + '::')\n"
        "print('to stderr', file=sys.stderr)\n"
    )
    result = await run_task(PY, {"script": script}, ctx)
    assert result.state == "WARNING"  # stderr output with warningOnStdErr (Kestra default true)
    assert result.outputs["vars"] == {"sum": 3, "flag": True, "none": None}
    assert ctx.messages("INFO") == ["running 3"]
    assert ctx.messages("ERROR") == ["to stderr"]


async def test_python_uses_engine_interpreter(ctx: FakeContext) -> None:
    await run_task(PY, {"script": "import sys\nprint(sys.executable)"}, ctx)
    assert os.path.realpath(ctx.messages("INFO")[0]) == os.path.realpath(sys.executable)


async def test_python_script_failure(ctx: FakeContext) -> None:
    with pytest.raises(TaskFailed, match=r"exit code 1: ZeroDivisionError: division by zero") as info:
        await run_task(PY, {"script": "print('x')\n1/0\n"}, ctx)
    assert info.value.outputs["exitCode"] == 1


async def test_python_commands(ctx: FakeContext) -> None:
    props = {
        "inputFiles": {"main.py": "import os\nprint('main', os.environ['X'])\n"},
        "commands": ["python main.py"],
        "env": {"X": "1"},
    }
    result = await run_task(PY_CMD, props, ctx)
    assert result.state == "SUCCESS"
    assert ctx.messages("INFO") == ["main 1"]


async def test_legacy_bash(ctx: FakeContext) -> None:
    props = {
        "commands": ["cat in.txt", 'echo \'::{"outputs": {"v": 1}}::\'', "echo r > r.txt"],
        "inputFiles": {"in.txt": "legacy\n"},
        "outputFiles": ["r.txt"],
    }
    result = await run_task(BASH, props, ctx)
    assert result.outputs["vars"] == {"v": 1}
    assert set(result.outputs["outputFiles"]) == {"r.txt"}
    assert ctx.messages("INFO") == ["legacy"]
    with pytest.raises(TaskFailed, match="exit code 4"):
        await run_task(BASH, {"commands": ["exit 4"]}, ctx)


async def test_legacy_python(ctx: FakeContext) -> None:
    props = {"inputFiles": {"main.py": "import sys\nprint('args', sys.argv[1:])\n"}, "args": ["a b", "c"]}
    await run_task(OLD_PY, props, ctx)
    assert ctx.messages("INFO") == ["args ['a b', 'c']"]


async def test_a_script_sees_no_engine_setting_and_no_secret(
    ctx: FakeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scripts get a documented part of the worker's environment and what the flow gives them."""
    monkeypatch.setenv("ENGINE_API_PASSWORD", "api-pass-1")
    monkeypatch.setenv("ENGINE_API_TOKENS", "tok-2")
    monkeypatch.setenv("ENGINE_HOME", "/somewhere/engine")
    monkeypatch.setenv("SECRET_DB", "c2VjcmV0")
    monkeypatch.setenv("SOME_OTHER_VARIABLE", "x")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    result = await run_task(SH, {"commands": ["env"], "env": {"GIVEN": "by-the-flow"}}, ctx)
    assert result.state == "SUCCESS"
    names = {line.split("=", 1)[0] for line in ctx.messages("INFO") if "=" in line}
    assert not {n for n in names if n.startswith(("ENGINE_", "SECRET_"))}, names
    assert "SOME_OTHER_VARIABLE" not in names
    assert {"PATH", "LC_ALL", "GIVEN", "WORKING_DIR", "OUTPUT_DIR"} <= names


ENVELOPE = len('::{"outputs": {"big": ""}}::')


def _outputs_line(value_bytes: int) -> str:
    """A Python script printing one ``::{"outputs": {"big": "xxx..."}}::`` line."""
    return (
        "import sys\n"
        + f"sys.stdout.write('::{{\"outputs\": {{\"big\": \"' + 'x' * {value_bytes} + '\"}}}}::\\n')\n"
    )


async def test_an_outputs_line_over_1_mib_is_read_whole(ctx: FakeContext) -> None:
    result = await run_task(PY, {"script": _outputs_line(3 << 19)}, ctx)
    assert result.state == "SUCCESS"
    assert len(result.outputs["vars"]["big"]) == 3 << 19
    assert not any(len(message) > 1000 for _, message in ctx.logs)  # nothing of it logged as text


async def test_an_outputs_line_over_the_limit_fails_the_task_naming_its_size(ctx: FakeContext) -> None:
    with pytest.raises(TaskFailed) as failed:
        await run_task(PY, {"script": _outputs_line(MAX_LINE + 10)}, ctx)
    message = str(failed.value)
    assert f"of {MAX_LINE + 10 + ENVELOPE} bytes" in message
    assert f"limit of {MAX_LINE} bytes" in message
    assert not failed.value.retryable


async def test_a_text_line_over_1_mib_is_logged_in_pieces(ctx: FakeContext) -> None:
    script = "import sys\nsys.stdout.write('y' * (5 << 19) + '\\n')\n"
    result = await run_task(PY, {"script": script}, ctx)
    assert result.state == "SUCCESS"
    assert [len(m) for m in ctx.messages("INFO")] == [1 << 20, 1 << 20, 1 << 19]
