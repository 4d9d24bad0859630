"""The ``engine`` command line: one module per command group, assembled here.

The CLI sits on top of everything (it may import any package; nothing imports it). Commands are
listed in ``--help`` in the order they are registered below, the groups after them.
"""

from __future__ import annotations

import gc
import os

import typer

from engine.cli import blueprints, cluster, common, executions, flow, run, schema, server, triggers
from engine.cli import test as test_cmd

# A crash's traceback never shows local variables: they can hold secrets, tokens and task outputs.
app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    help="Run Kestra flows on an event-sourced core.",
)
# Long-lived roles log for an operator; every other command is a person's terminal.
_SERVICES = ("server", "cluster")


@app.callback()
def _entry(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand not in _SERVICES:
        from engine.logs import for_a_person

        for_a_person()


run.register(app)  # `engine run`
executions.register_commands(app)  # `engine kill|resume|restart|replay|logs`
flow.register(app)  # `engine flow validate|deploy|revisions`
schema.register(app)  # `engine schema export`, `engine plugins list`
triggers.register(app)  # `engine backfill`, `engine triggers list|enable|disable`
cluster.register(app)  # `engine cluster start|config`
server.register(app)  # `engine server local|webserver|executor|scheduler|worker|nats`
executions.register_group(app)  # `engine executions get|list`
test_cmd.register(app)  # `engine test DIR`
blueprints.register(app)  # `engine blueprints list|show|use`


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    common.gc_for_startup()
    try:
        app()
    finally:
        # At exit the interpreter's last collections walk the whole heap for nothing (60-80 ms
        # after an `engine run`): the process is ending, its memory goes back with it. Files and
        # connections are closed by the commands themselves, and stdout/stderr are flushed.
        gc.freeze()
