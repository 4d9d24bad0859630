"""Python ``dependencies``: real installs from PyPI into cached virtual environments."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from plugin_harness import FakeContext, run_task

from engine.core.errors import FlowValidationError, TaskFailed
from engine.loader.loader import load_flow
from engine.testing.run import MemoryEngine
from plugins.scripts import pydeps

pytestmark = pytest.mark.anyio

PY = "io.kestra.plugin.scripts.python.Script"
PY_CMD = "io.kestra.plugin.scripts.python.Commands"
OLD_PY = "io.kestra.core.tasks.scripts.Python"
TABULATE = "tabulate==0.9.0"
IMPORT_TABULATE = (
    "import sys, tabulate\n"
    "print(tabulate.tabulate([[1, 2]], headers=['a', 'b']))\n"
    'print(\'::{"outputs": {"version": "%s", "python": "%s"}}::\' % (tabulate.__version__, sys.executable))\n'
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    where = tmp_path / "home"
    monkeypatch.setenv("ENGINE_HOME", str(where))
    return where


def _cache(home: Path) -> Path:
    return home / "cache" / "python"


def _builds(home: Path) -> list[Path]:
    return sorted(p for p in _cache(home).glob("*.build-*") if p.is_dir())


def _flow(flow_id: str) -> str:
    return textwrap.dedent(
        f"""\
        id: {flow_id}
        namespace: company.team
        tasks:
          - id: py
            type: {PY}
            dependencies:
              - {TABULATE}
            script: |
        """
    ) + textwrap.indent(IMPORT_TABULATE, " " * 6)


async def test_a_script_imports_its_dependency(home: Path) -> None:
    """The acceptance test: a flow's Python Script with dependencies [tabulate==0.9.0] imports it."""
    async with MemoryEngine() as eng:
        flow = await eng.deploy(_flow("deps"))
        execution = await eng.run(flow, timeout=180)
        lines = [line.message for line in await eng.store.read_logs(execution.id)]
    assert execution.state == "SUCCESS", lines
    (taskrun,) = execution.taskruns.values()
    assert taskrun.outputs["vars"]["version"] == "0.9.0"
    assert taskrun.outputs["vars"]["python"].startswith(str(_cache(home)))  # the venv's, not the engine's
    assert "  a    b" in lines
    assert any("tabulate==0.9.0" in line and "+" in line for line in lines) or any(
        "Successfully installed tabulate-0.9.0" in line for line in lines
    )  # the installer's own output is in the task's log


async def test_two_executions_installing_the_same_set_at_once_both_succeed(home: Path) -> None:
    async with MemoryEngine() as eng:
        flow = await eng.deploy(_flow("twice"))
        first, second = await asyncio.gather(eng.run(flow, timeout=180), eng.run(flow, timeout=180))
        logs = [line.message for e in (first, second) for line in await eng.store.read_logs(e.id)]
    assert (first.state, second.state) == ("SUCCESS", "SUCCESS"), logs
    pythons = {e.taskruns[next(iter(e.taskruns))].outputs["vars"]["python"] for e in (first, second)}
    assert len(pythons) == 1  # one venv, built once
    assert len(_builds(home)) == 1
    assert sum("ready and cached" in line for line in logs) == 1
    assert any("built by another task" in line for line in logs)


async def test_the_second_run_uses_the_cache(ctx: FakeContext, home: Path) -> None:
    first = await run_task(PY, {"script": IMPORT_TABULATE, "dependencies": [TABULATE]}, ctx)
    ctx.logs.clear()
    second = await run_task(PY, {"script": IMPORT_TABULATE, "dependencies": [TABULATE]}, ctx)
    assert first.outputs["vars"] == second.outputs["vars"]
    assert any("from the cache" in m for _, m in ctx.logs)
    assert not any("creating a Python environment" in m for _, m in ctx.logs)


async def test_the_same_set_in_another_order_is_the_same_venv(home: Path) -> None:
    assert pydeps.cache_key(("b", "a"), None) != pydeps.cache_key(("a", "b"), "3.12")
    ctx_a, ctx_b = FakeContext(home.parent), FakeContext(home.parent)
    env_a = await pydeps.prepare(ctx_a, ["tabulate==0.9.0", "six==1.16.0"])
    env_b = await pydeps.prepare(ctx_b, ["six==1.16.0", " tabulate==0.9.0", "six==1.16.0"])
    assert env_a.path == env_b.path


async def test_a_crashed_build_is_never_used(home: Path) -> None:
    key = pydeps.cache_key((TABULATE,), None)
    cache = _cache(home)
    cache.mkdir(parents=True)
    # a builder killed mid-install: a directory with a python but no completion mark, published or not
    crashed = cache / f"{key}.build-crashed"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(crashed)], check=True)
    os.symlink(crashed.name, cache / key)
    ctx = FakeContext(home.parent)
    env = await pydeps.prepare(ctx, [TABULATE])
    assert env.path != crashed and not crashed.exists()
    assert (env.path / pydeps.COMPLETE).is_file()
    assert os.readlink(cache / key) == env.path.name
    check = subprocess.run([str(env.python), "-c", "import tabulate"], check=False)
    assert check.returncode == 0


async def test_a_builder_in_another_process_is_waited_for(home: Path) -> None:
    key = pydeps.cache_key((TABULATE,), None)
    cache = _cache(home)
    cache.mkdir(parents=True)
    with subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time\n"
            "f = open(sys.argv[1], 'w'); fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True)\n"
            "time.sleep(1.5)\n",
            str(cache / f"{key}.lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        ctx = FakeContext(home.parent)
        env = await pydeps.prepare(ctx, [TABULATE])
    assert any("waiting for another task" in m for _, m in ctx.logs)
    assert (env.path / pydeps.COMPLETE).is_file()


async def test_a_failing_install_fails_the_task_with_the_installer_message(
    ctx: FakeContext, home: Path
) -> None:
    props = {"script": "print(1)", "dependencies": ["tabulate==0.0.0.404"]}
    with pytest.raises(TaskFailed) as info:
        await run_task(PY, props, ctx)
    message = str(info.value)
    assert message.startswith("installing dependencies with uv failed: ")
    assert "tabulate==0.0.0.404" in message  # uv's own explanation
    assert _builds(home) == []  # nothing half-built left behind
    assert not (_cache(home) / pydeps.cache_key(("tabulate==0.0.0.404",), None)).exists()


async def test_a_failing_pip_install_says_why(ctx: FakeContext, home: Path) -> None:
    props = {"script": "print(1)", "dependencies": ["tabulate==0.0.0.404"], "packageManager": "PIP"}
    with pytest.raises(TaskFailed) as info:
        await run_task(PY, props, ctx)
    message = str(info.value)
    assert message.startswith("installing dependencies with pip failed: ")
    assert "No matching distribution found for tabulate==0.0.0.404" in message
    assert any("No matching distribution" in m for _, m in ctx.logs)  # and the log has it too
    assert _builds(home) == []


async def test_pip_is_the_fallback(ctx: FakeContext, home: Path) -> None:
    props = {"script": IMPORT_TABULATE, "dependencies": [TABULATE], "packageManager": "PIP"}
    result = await run_task(PY, props, ctx)
    assert result.outputs["vars"]["version"] == "0.9.0"
    assert any("creating a Python environment with pip" in m for _, m in ctx.logs)


async def test_uv_missing_falls_back_to_pip_unless_uv_is_asked_for(
    ctx: FakeContext, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pydeps, "find_uv", lambda: None)
    with pytest.raises(TaskFailed, match="packageManager UV: the uv binary is not installed"):
        await run_task(PY, {"script": "1", "dependencies": [TABULATE], "packageManager": "UV"}, ctx)
    await run_task(PY, {"script": IMPORT_TABULATE, "dependencies": [TABULATE]}, ctx)
    assert any("creating a Python environment with pip" in m for _, m in ctx.logs)


async def test_commands_run_in_the_venv(ctx: FakeContext, home: Path) -> None:
    props = {
        "commands": ["python -c 'import tabulate; print(tabulate.__version__)'"],
        "dependencies": [TABULATE],
    }
    result = await run_task(PY_CMD, props, ctx)
    assert result.state == "SUCCESS" and ctx.messages("INFO")[-1] == "0.9.0"


async def test_no_cache_builds_in_the_working_directory(ctx: FakeContext, home: Path) -> None:
    props = {"script": IMPORT_TABULATE, "dependencies": [TABULATE], "dependencyCacheEnabled": False}
    result = await run_task(PY, props, ctx)
    assert result.outputs["vars"]["python"].startswith(str(ctx.workdir))
    assert not _cache(home).exists() or _builds(home) == []


async def test_python_version_of_this_interpreter(ctx: FakeContext, home: Path) -> None:
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    props = {"script": "import sys; print(sys.version_info[:2])", "pythonVersion": version}
    await run_task(PY, props, ctx)
    assert ctx.messages("INFO")[-1] == str((sys.version_info.major, sys.version_info.minor))


async def test_a_python_version_not_found_fails_with_the_reason(ctx: FakeContext, home: Path) -> None:
    props = {"script": "1", "pythonVersion": "2.1", "packageManager": "PIP"}
    with pytest.raises(TaskFailed, match=r"pythonVersion 2\.1: no python2\.1 on the worker's PATH"):
        await run_task(PY, props, ctx)


@pytest.mark.parametrize(
    "requirement", ["--index-url=https://example.invalid/simple", "-r requirements.txt", "a\nb"]
)
async def test_options_are_not_requirements(ctx: FakeContext, home: Path, requirement: str) -> None:
    with pytest.raises(TaskFailed, match="dependencies: "):
        await run_task(PY, {"script": "1", "dependencies": [requirement]}, ctx)


async def test_old_python_task_installs_its_requirements(ctx: FakeContext, home: Path) -> None:
    props = {"inputFiles": {"main.py": IMPORT_TABULATE}, "requirements": [TABULATE]}
    result = await run_task(OLD_PY, props, ctx)
    assert result.outputs["vars"]["version"] == "0.9.0"


def test_validation() -> None:
    def issues(extra: str) -> list[str]:
        source = (
            f"id: f\nnamespace: company.team\ntasks:\n  - id: py\n    type: {PY}\n    script: '1'\n{extra}"
        )
        try:
            load_flow(source)
        except FlowValidationError as exc:
            return [f"{i.path}: {i.message}" for i in exc.issues]
        return []

    assert issues("    dependencies: [tabulate]\n    packageManager: uv\n    pythonVersion: '3.11'\n") == []
    (issue,) = issues("    pythonVersion: latest\n")
    assert issue.startswith('tasks[0].pythonVersion: invalid pythonVersion "latest" — write a version like')
    (issue,) = issues("    packageManager: NPM\n")
    assert issue.startswith("tasks[0].packageManager: invalid packageManager")
    old = "  - id: old\n    type: io.kestra.core.tasks.scripts.Python\n    requirements: [x]\n"
    old += "    virtualEnv: false\n"
    (issue,) = issues(old)
    assert issue.startswith("tasks[1].virtualEnv: virtualEnv false with requirements is not supported")


async def test_old_python_task_builds_from_its_python_path(ctx: FakeContext, home: Path) -> None:
    props = {
        "inputFiles": {"main.py": IMPORT_TABULATE},
        "requirements": [TABULATE],
        "pythonPath": os.path.basename(sys.executable),  # a name found on PATH
    }
    result = await run_task(OLD_PY, props, ctx)
    assert result.outputs["vars"]["python"].startswith(str(_cache(home)))


def _fake_published(cache: Path, key: str, used: float) -> Path:
    """A published venv as the builder leaves it (the eviction reads only the layout and the times)."""
    target = cache / f"{key}.build-x"
    (target / "bin").mkdir(parents=True)
    (target / "bin" / "python").write_text("")
    (target / pydeps.COMPLETE).write_text("{}")
    os.utime(target / pydeps.COMPLETE, (used, used))
    os.symlink(target.name, cache / key)
    return target


def test_the_least_recently_used_venvs_beyond_the_limit_are_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fcntl

    monkeypatch.setattr(pydeps, "MAX_VENVS", 1)
    now = 1_000_000.0
    idle = now - pydeps.EVICT_IDLE_S - 1
    old = _fake_published(tmp_path, "a" * 32, idle - 100)
    locked = _fake_published(tmp_path, "b" * 32, idle - 50)
    recent = _fake_published(tmp_path, "c" * 32, now - 1)
    newest = _fake_published(tmp_path, "d" * 32, now)
    with open(tmp_path / f"{'b' * 32}.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # being rebuilt elsewhere
        removed = pydeps._evict(tmp_path, keep="d" * 32, now=now)
    # 4 published, limit 1: all but the new one are over; the locked one is skipped, the recently
    # used one stays (a task may be running in it)
    assert removed == ["a" * 32]
    assert not old.exists() and not (tmp_path / ("a" * 32)).is_symlink()
    assert locked.exists() and recent.exists() and newest.exists()


async def test_an_unwritable_cache_says_so(
    ctx: FakeContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("ENGINE_HOME", str(blocker))  # a file: nothing can be made under it
    with pytest.raises(
        TaskFailed, match=r"the Python environment cache .* is not usable: .* writable ENGINE_HOME"
    ):
        await run_task(PY, {"script": "1", "dependencies": [TABULATE]}, ctx)
