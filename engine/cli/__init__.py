"""The ``engine`` command line: one module per command group, assembled here.

The CLI sits on top of everything (it may import any package; nothing imports it). Commands are
listed in ``--help`` in the order they are registered below, the groups after them.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable

import typer

from engine.cli import blueprints, cluster, common, executions, flow, run, schema, server, triggers
from engine.cli import test as test_cmd

# Long-lived roles log for an operator; every other command is a person's terminal.
_SERVICES = ("server", "cluster")


def _entry(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand not in _SERVICES:
        from engine.logs import for_a_person

        for_a_person()


def _new_app() -> typer.Typer:
    # A crash's traceback never shows local variables: they can hold secrets, tokens and task outputs.
    new = typer.Typer(
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_show_locals=False,
        help="Run Kestra flows on an event-sourced core.",
    )
    new.callback()(_entry)
    return new


# Each registration with the command names it adds, in the order of --help.
_REGISTRATIONS: tuple[tuple[Callable[[typer.Typer], None], tuple[str, ...]], ...] = (
    (run.register, ("run",)),
    (executions.register_commands, ("kill", "resume", "restart", "replay", "logs")),
    (flow.register, ("flow",)),  # validate|deploy|revisions
    (schema.register, ("schema", "plugins")),
    (triggers.register, ("backfill", "triggers")),
    (cluster.register, ("cluster",)),  # start|config
    (server.register, ("server",)),  # local|webserver|executor|scheduler|worker|nats
    (executions.register_group, ("executions",)),  # get|list
    (test_cmd.register, ("test",)),
    (blueprints.register, ("blueprints",)),  # list|show|use
)

app = _new_app()
for _register, _ in _REGISTRATIONS:
    _register(app)


def _app_for(args: list[str]) -> typer.Typer:
    """The command line for these arguments: when they name a command, an app with only that
    command's registration (same usage, help and errors), since typer builds every registered
    command's parameters before it parses (15 ms of each start for the 34 commands)."""
    for register, names in _REGISTRATIONS:
        if args and args[0] in names:
            one = _new_app()
            register(one)
            return one
    return app


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    common.gc_for_startup()
    try:
        _app_for(sys.argv[1:])()
    finally:
        # At exit the interpreter's last collections walk the whole heap for nothing (60-80 ms
        # after an `engine run`): the process is ending, its memory goes back with it. Files and
        # connections are closed by the commands themselves, and stdout/stderr are flushed.
        gc.freeze()
