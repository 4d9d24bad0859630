"""python.Script and python.Commands, run with the engine's own interpreter.

``sys.executable`` is used (not whatever ``python3`` is first on PATH) so scripts see the
same virtualenv as the engine; its directory is also put first on PATH so ``python`` and
``pip`` in ``commands``/``beforeCommands`` resolve to it. A ``$VIRTUAL_ENV`` set by
``beforeCommands`` wins, as in Kestra. ``dependencies``/``packageManager``/``pythonVersion``
are accepted but not installed (a warning says so).
"""

from __future__ import annotations

import os
import shlex
import sys
import uuid
from typing import Any

from plugins.api import RunContext, TaskResult, runnable
from plugins.scripts.common import ScriptProps, run_script
from plugins.scripts.runtime import Localizer, work_variables

P = "io.kestra.plugin.scripts.python."

# Kestra prepends this so Pebble-rendered true/false/null are valid Python.
_PRELUDE = "true = True\nfalse = False\nnull = None\n"


class _PythonProps(ScriptProps, frozen=True, kw_only=True):
    dependencies: list[str] | None = None
    packageManager: str | None = None
    pythonVersion: str | None = None
    dependencyCacheEnabled: bool | None = None


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


def _warn_dependencies(props: _PythonProps, ctx: RunContext) -> None:
    if props.dependencies:
        ctx.log(
            "WARN",
            "dependencies are not installed by this engine ("
            + ", ".join(props.dependencies)
            + "); install them in the engine's environment "
            "or with beforeCommands",
        )


def run_command_for(script_path: str) -> str:
    quoted = shlex.quote(script_path)
    return (
        f'if [ -n "$VIRTUAL_ENV" ]; then "$VIRTUAL_ENV/bin/python" {quoted}; '
        f"else {shlex.quote(sys.executable)} {quoted}; fi"
    )


async def run_python_script(props: Script, ctx: RunContext) -> TaskResult:
    _warn_dependencies(props, ctx)
    name = f"_script_{uuid.uuid4().hex[:12]}.py"
    files: dict[str, Any] = {name: _PRELUDE + await Localizer(ctx).text(props.script)}
    return await run_script(
        props,
        ctx,
        [run_command_for(str(ctx.workdir / name))],
        extra_env=python_env(),
        input_files=files,
        python=True,
    )


async def run_python_commands(props: Commands, ctx: RunContext) -> TaskResult:
    _warn_dependencies(props, ctx)
    return await run_script(props, ctx, props.commands, extra_env=python_env(), python=True)


SPECS = [
    runnable(
        P + "Script",
        Script,
        run_python_script,
        "Run an inline Python `script` with the engine's Python interpreter.",
        extra={"render_variables": work_variables},
    ),
    runnable(
        P + "Commands",
        Commands,
        run_python_commands,
        "Run shell `commands` with the engine's Python first on PATH.",
        extra={"render_variables": work_variables},
    ),
]
