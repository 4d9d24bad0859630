"""shell.Commands and shell.Script (local /bin/sh)."""

from __future__ import annotations

from plugins.api import RunContext, TaskResult, runnable
from plugins.scripts.common import ScriptProps, run_script
from plugins.scripts.runtime import work_variables

P = "io.kestra.plugin.scripts.shell."


class Commands(ScriptProps, frozen=True, kw_only=True):
    commands: list[str]


class Script(ScriptProps, frozen=True, kw_only=True):
    script: str


async def run_commands(props: Commands, ctx: RunContext) -> TaskResult:
    return await run_script(props, ctx, props.commands)


async def run_shell_script(props: Script, ctx: RunContext) -> TaskResult:
    return await run_script(props, ctx, [props.script])


SPECS = [
    runnable(
        P + "Commands",
        Commands,
        run_commands,
        "Run shell `commands` (joined, `set -e` when failFast) as a local process.",
        extra={"render_variables": work_variables},
    ),
    runnable(
        P + "Script",
        Script,
        run_shell_script,
        "Run an inline shell `script` as a local process.",
        extra={"render_variables": work_variables},
    ),
]
