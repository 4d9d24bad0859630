"""The pre-0.10 script tasks ``io.kestra.core.tasks.scripts.Bash`` and ``...scripts.Python``.

Their properties differ from the current ones (``interpreter`` is a string plus
``interpreterArgs``, ``exitOnFailed`` instead of ``failFast``); they map onto the same runner.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from typing import Any

import msgspec

from plugins.api import RunContext, TaskResult, runnable
from plugins.scripts.common import ScriptProps, run_script
from plugins.scripts.python import local_env
from plugins.scripts.runtime import work_variables, write_kestra_module

P = "io.kestra.core.tasks.scripts."


class _Legacy(msgspec.Struct, frozen=True, kw_only=True):
    interpreter: str = "/bin/sh"
    interpreterArgs: list[str] = msgspec.field(default_factory=lambda: ["-c"])
    exitOnFailed: bool = True
    env: dict[str, Any] | None = None
    warningOnStdErr: bool = True
    inputFiles: dict[str, Any] | str | None = None
    files: list[str] | None = None
    outputFiles: list[str] | None = None
    outputsFiles: list[str] | None = None
    outputDirs: list[str] | None = None
    dockerOptions: dict[str, Any] | None = None
    runner: str | None = None

    def common(self) -> ScriptProps:
        outputs = [*(self.outputFiles or []), *(self.outputsFiles or []), *(self.files or [])]
        return ScriptProps(
            env=self.env,
            interpreter=[self.interpreter, *self.interpreterArgs],
            failFast=self.exitOnFailed,
            warningOnStdErr=self.warningOnStdErr,
            inputFiles=self.inputFiles,
            outputFiles=outputs or None,
            # runner DOCKER and dockerOptions are refused at validation (engine.loader.plugin_rules)
        )


class Bash(_Legacy, frozen=True, kw_only=True):
    commands: list[str]


class Python(_Legacy, frozen=True, kw_only=True):
    commands: list[str] | None = None
    pythonPath: str | None = None
    requirements: list[str] | None = None
    args: list[str] | None = None
    virtualEnv: bool | None = None


async def run_bash(props: Bash, ctx: RunContext) -> TaskResult:
    return await run_script(props.common(), ctx, props.commands, output_dirs=props.outputDirs or ())


async def run_python(props: Python, ctx: RunContext) -> TaskResult:
    # requirements go to a cached virtual environment built from pythonPath (virtualEnv: false, an
    # install into that interpreter itself, is refused at validation)
    base = None
    if props.requirements and props.pythonPath:
        base = shutil.which(props.pythonPath) or props.pythonPath  # a name on PATH or a path
    env = await local_env(ctx, props.requirements, python=base)
    commands = props.commands
    if commands is None:
        python = "python" if props.requirements else shlex.quote(props.pythonPath or sys.executable)
        commands = [" ".join([python, "main.py", *(shlex.quote(a) for a in props.args or [])])]
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    write_kestra_module(ctx.workdir)  # beside main.py, as Kestra's older Python task wrote it
    return await run_script(
        props.common(), ctx, commands, extra_env=env, python=True, output_dirs=props.outputDirs or ()
    )


def legacy_variables(ctx: RunContext, props: dict[str, Any]) -> dict[str, Any]:
    return work_variables(ctx, props, legacy=True)


SPECS = [
    runnable(
        P + "Bash",
        Bash,
        run_bash,
        "Deprecated: run shell `commands`; use io.kestra.plugin.scripts.shell.Commands.",
        extra={"render_variables": legacy_variables},
    ),
    runnable(
        P + "Python",
        Python,
        run_python,
        "Deprecated: run `main.py` from `inputFiles`; use python.Script.",
        extra={"render_variables": legacy_variables},
    ),
]
