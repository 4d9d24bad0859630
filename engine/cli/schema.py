"""``engine schema export`` and ``engine plugins list``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

schema_app = typer.Typer(no_args_is_help=True, help="Export the flow JSON Schema.")
plugins_app = typer.Typer(no_args_is_help=True, help="List task types.")


@schema_app.command("export")
def schema_export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Write the flow JSON Schema (for editors)."""
    from engine.loader.schema import flow_json_schema

    text = json.dumps(flow_json_schema(), indent=2)
    if output is None:
        sys.stdout.write(text + "\n")
    else:
        output.write_text(text + "\n")


@plugins_app.command("list")
def plugins_list() -> None:
    """Every known task type, with its aliases."""
    from plugins.registry import default_registry

    for spec in default_registry().specs():
        aliases = f" (aliases: {', '.join(spec.aliases)})" if spec.aliases else ""
        sys.stdout.write(f"{spec.type} [{spec.kind}]{aliases}\n")


def register(app: typer.Typer) -> None:
    app.add_typer(schema_app, name="schema")
    app.add_typer(plugins_app, name="plugins")
