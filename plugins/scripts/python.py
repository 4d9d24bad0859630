"""python.Script and python.Commands, with their ``dependencies`` in a cached virtual environment.

On the local Process runner a script runs with the engine's own interpreter (``sys.executable``,
not whatever ``python3`` is first on PATH), its directory first on PATH so ``python`` and ``pip``
in ``commands``/``beforeCommands`` resolve to it. With ``dependencies`` or ``pythonVersion`` it runs
in a virtual environment from ``plugins.scripts.pydeps`` instead (``$VIRTUAL_ENV`` set, its ``bin``
first on PATH). A ``$VIRTUAL_ENV`` set by ``beforeCommands`` wins, as in Kestra.

In a container (the Docker runner) the image's ``python`` runs the script and ``dependencies`` are
installed in the container first (the image is ``python:<pythonVersion>-slim`` when no
``containerImage`` is given).
"""

from __future__ import annotations

import os
import shlex
import sys
import uuid
from typing import Any

from plugins.api import RunContext, TaskResult, runnable
from plugins.scripts.common import ScriptProps, run_script, runner_for
from plugins.scripts.pydeps import prepare
from plugins.scripts.runners import Runner
from plugins.scripts.runtime import Localizer, work_variables

P = "io.kestra.plugin.scripts.python."
DEFAULT_IMAGE = "python:3.13-slim"  # Kestra's

# Kestra prepends this so Pebble-rendered true/false/null are valid Python.
_PRELUDE = "true = True\nfalse = False\nnull = None\n"


class _PythonProps(ScriptProps, frozen=True, kw_only=True):
    dependencies: list[str] | None = None
    packageManager: str | None = None  # PIP or UV (engine.loader.plugin_rules)
    pythonVersion: str | None = None
    dependencyCacheEnabled: bool = True


class Script(_PythonProps, frozen=True, kw_only=True):
    script: str


class Commands(_PythonProps, frozen=True, kw_only=True):
    commands: list[str]


def python_env() -> dict[str, str]:
    bindir = os.path.dirname(sys.executable)
    path = os.environ.get("PATH", "")
    return {
        "PYTHONUNBUFFERED": "true",
        "PIP_ROOT_USER_ACTION": "ignore",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PATH": bindir + (os.pathsep + path if path else ""),
    }


def run_command_for(script_path: str) -> str:
    quoted = shlex.quote(script_path)
    return (
        f'if [ -n "$VIRTUAL_ENV" ]; then "$VIRTUAL_ENV/bin/python" {quoted}; '
        f"else {shlex.quote(sys.executable)} {quoted}; fi"
    )


async def local_env(
    ctx: RunContext,
    dependencies: list[str] | None,
    *,
    python: str | None = None,
    manager: str | None = None,
    cached: bool = True,
) -> dict[str, str]:
    """The environment of a local Python run: the engine's interpreter, or a venv with ``dependencies``."""
    env = python_env()
    if dependencies or python is not None:
        venv = await prepare(ctx, dependencies or [], python_version=python, manager=manager, cached=cached)
        env.update(venv.env())
    return env


def _container_install(props: _PythonProps) -> list[str]:
    if not props.dependencies:
        return []
    packages = " ".join(shlex.quote(d) for d in props.dependencies)
    if (props.packageManager or "").upper() == "UV":
        return [f"uv pip install --system {packages}"]
    return [f"python -m pip install --quiet {packages}"]


async def _prepare(props: _PythonProps, ctx: RunContext) -> tuple[Runner, dict[str, str], list[str]]:
    """The runner, the extra environment and the commands to run first."""
    image = f"python:{props.pythonVersion}-slim" if props.pythonVersion else DEFAULT_IMAGE
    runner = runner_for(props, ctx, default_image=image)
    if not runner.local:
        env = {
            "PYTHONUNBUFFERED": "true",
            "PIP_ROOT_USER_ACTION": "ignore",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }
        return runner, env, _container_install(props)
    env = await local_env(
        ctx,
        props.dependencies,
        python=props.pythonVersion,
        manager=props.packageManager,
        cached=props.dependencyCacheEnabled,
    )
    return runner, env, []


async def run_python_script(props: Script, ctx: RunContext) -> TaskResult:
    runner, env, first = await _prepare(props, ctx)
    name = f"_script_{uuid.uuid4().hex[:12]}.py"
    files: dict[str, Any] = {name: _PRELUDE + await Localizer(ctx).text(props.script)}
    path = str(ctx.workdir / name)
    command = run_command_for(path) if runner.local else f"python {shlex.quote(path)}"
    return await run_script(
        props, ctx, [*first, command], extra_env=env, input_files=files, python=True, runner=runner
    )


async def run_python_commands(props: Commands, ctx: RunContext) -> TaskResult:
    runner, env, first = await _prepare(props, ctx)
    return await run_script(props, ctx, [*first, *props.commands], extra_env=env, python=True, runner=runner)


SPECS = [
    runnable(
        P + "Script",
        Script,
        run_python_script,
        "Run an inline Python `script` (its `dependencies` in a cached virtual environment).",
        extra={"render_variables": work_variables},
    ),
    runnable(
        P + "Commands",
        Commands,
        run_python_commands,
        "Run shell `commands`, Python first on PATH (`dependencies`: in a cached virtual environment).",
        extra={"render_variables": work_variables},
    ),
]
