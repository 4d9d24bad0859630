"""The runtime Kestra gives scripts: the ``kestra`` module, the execution context, working-directory
variables, and ``kestra://`` URIs in commands fetched into the working directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from plugin_harness import FakeContext, run_task

from eventstore.storage import StorageError
from plugins.scripts.pythonlib import DIRECTORY
from plugins.scripts.runtime import work_variables

pytestmark = pytest.mark.anyio

PY = "io.kestra.plugin.scripts.python.Script"
PY_CMD = "io.kestra.plugin.scripts.python.Commands"
SH = "io.kestra.plugin.scripts.shell.Commands"
OLD_PY = "io.kestra.core.tasks.scripts.Python"
BASH = "io.kestra.core.tasks.scripts.Bash"

SCRIPT = """
from kestra import Kestra, context
Kestra.outputs({"rows": 3, "flow": context.flow.id, "input": context.inputs["name"]})
Kestra.counter("rows", 10, {"table": "orders"})
Kestra.counter("rows", 5, {"table": "orders"})
Kestra.timer("took", 0.25)
Kestra.timer("slept", lambda: None)
log = Kestra.logger()
log.info("hello from the logger")
log.warning("careful")
"""


async def test_python_script_imports_kestra_and_reads_the_context(ctx: FakeContext) -> None:
    ctx.variables = {"flow": {"id": "f1", "namespace": "ns"}, "inputs": {"name": "Ada"}, "envs": {"x": "1"}}
    result = await run_task(PY, {"script": SCRIPT, "warningOnStdErr": False}, ctx)
    assert result.state == "SUCCESS", ctx.logs
    assert result.outputs["vars"] == {"rows": 3, "flow": "f1", "input": "Ada"}
    metrics = {(m.type, m.name): m for m in ctx.metrics.snapshot()}
    assert metrics[("counter", "rows")].value == 15 and metrics[("counter", "rows")].tags == {
        "table": "orders"
    }
    assert metrics[("timer", "took")].value == 0.25
    assert 0 <= metrics[("timer", "slept")].value < 1
    info = [m for lvl, m in ctx.logs if lvl == "INFO" and m.endswith(" - hello from the logger")]
    assert info and any(lvl == "WARN" and m.endswith(" - careful") for lvl, m in ctx.logs)
    # the context file is private: not in the working directory unless executionContext asks for it
    assert not (ctx.workdir / ".kestra-execution-context.json").exists()


async def test_execution_context_in_the_working_directory(ctx: FakeContext) -> None:
    ctx.variables = {"flow": {"id": "f1"}, "envs": {"secretish": "x"}}
    script = "import json; print(json.load(open('.kestra-execution-context.json'))['flow']['id'])"
    result = await run_task(
        SH, {"commands": [f'python3 -c "{script}"'], "executionContext": True, "outputFiles": ["*.json"]}, ctx
    )
    assert result.state == "SUCCESS", ctx.logs
    assert ("INFO", "f1") in ctx.logs
    written = json.loads((ctx.workdir / ".kestra-execution-context.json").read_text())
    assert "envs" not in written
    assert list(result.outputs["outputFiles"]) == [".kestra-execution-context.json"]  # as Kestra: in the dir


async def test_a_flow_pythonpath_comes_first(ctx: FakeContext, tmp_path: Path) -> None:
    own = tmp_path / "own"
    own.mkdir()
    (own / "mylib.py").write_text("VALUE = 42\n")
    result = await run_task(
        PY,
        {
            "script": "import mylib, kestra; kestra.Kestra.outputs({'v': mylib.VALUE})",
            "env": {"PYTHONPATH": str(own)},
        },
        ctx,
    )
    assert result.outputs["vars"] == {"v": 42}, ctx.logs


async def test_commands_get_kestra_too(ctx: FakeContext) -> None:
    result = await run_task(
        PY_CMD, {"commands": ["python -c 'from kestra import Kestra; Kestra.outputs({\"a\": 1})'"]}, ctx
    )
    assert result.outputs["vars"] == {"a": 1}, ctx.logs


async def test_older_python_task_has_kestra_py_beside_its_script(ctx: FakeContext) -> None:
    main = (
        "import os\nfrom kestra import Kestra\n"
        "Kestra.outputs({'somekey': 'some value', 'here': os.path.exists('kestra.py')})\n"
    )
    result = await run_task(OLD_PY, {"inputFiles": {"main.py": main}}, ctx)
    assert result.state == "SUCCESS", ctx.logs
    assert result.outputs["vars"] == {"somekey": "some value", "here": True}


async def test_kestra_uris_in_commands_are_fetched_into_the_working_directory(ctx: FakeContext) -> None:
    uri = await ctx.files.put("kestra:///ns/f/executions/e/tasks/t/r/data.csv", b"a,b\n1,2\n")
    result = await run_task(SH, {"commands": [f"wc -l < {uri}", f"cat '{uri}' | tail -1"]}, ctx)
    assert result.state == "SUCCESS", ctx.logs
    assert ctx.messages("INFO") == ["2", "1,2"]
    fetched = [p for p in ctx.workdir.iterdir() if p.suffix == ".tmp"]
    assert len(fetched) == 1 and fetched[0].read_bytes() == b"a,b\n1,2\n"  # fetched once
    script = f"print(open('{uri}').read().splitlines()[0])"
    result = await run_task(PY, {"script": script}, ctx)
    assert ("INFO", "a,b") in ctx.logs


async def test_a_missing_kestra_file_fails_the_task(ctx: FakeContext) -> None:
    with pytest.raises(StorageError, match=r"kestra:///ns/missing\.txt"):
        await run_task(SH, {"commands": ["cat kestra:///ns/missing.txt"]}, ctx)


async def test_older_variables_output_files_and_dirs(ctx: FakeContext) -> None:
    props = {
        "commands": ["echo x > {{ outputFiles.first }}", "echo y > {{ outputDirs.out }}/y.txt"],
        "outputFiles": ["first"],
        "outputDirs": ["out"],
    }
    variables = work_variables(ctx, props, legacy=True)
    assert variables["outputFiles"] == {"first": str(ctx.workdir / "first")}
    assert variables["workingDir"] == str(ctx.workdir) and variables["outputDir"] == str(
        ctx.workdir / "_output"
    )
    rendered = {
        **props,
        "commands": [
            f"echo x > {variables['outputFiles']['first']}",
            f"echo y > {variables['outputDirs']['out']}/y.txt",
        ],
    }
    result = await run_task(BASH, rendered, ctx)
    assert result.state == "SUCCESS", ctx.logs
    assert sorted(result.outputs["outputFiles"]) == ["first", "out/y.txt"]


def test_the_module_has_the_published_public_api() -> None:
    names = [
        "Kestra",
        "Flow",
        "FlowExecution",
        "ExecutionContext",
        "load_execution_context",
        "CONTEXT_FILE",
        "JsonFormatter",
        "LogFormatter",
    ]
    code = f"import kestra; missing = [n for n in {names!r} if not hasattr(kestra, n)]; print(missing)"
    done = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(DIRECTORY)!r}); {code}"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "[]"
    outside = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            f"import sys; sys.path.insert(0, {str(DIRECTORY)!r}); from kestra import context",
        ],
        capture_output=True,
        text=True,
        cwd=DIRECTORY.parent,
    )
    assert outside.returncode == 1 and "no Kestra execution context" in outside.stderr
