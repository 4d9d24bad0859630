"""``engine schema export`` and ``engine plugins list``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

schema_app = typer.Typer(no_args_is_help=True, help="Export the flow JSON Schema.")
plugins_app = typer.Typer(no_args_is_help=True, help="List and document task types.")


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
        versions = default_registry().versions(spec.type)
        shown = f" (versions: {', '.join(versions)})" if len(versions) > 1 else ""
        sys.stdout.write(f"{spec.type} [{spec.kind}]{aliases}{shown}\n")


@plugins_app.command("doc")
def plugins_doc(
    type_name: Annotated[str, typer.Argument(metavar="TYPE", help="A task type (or an alias).")],
    version: Annotated[
        str | None, typer.Option(help="One of the installed versions (default latest).")
    ] = None,
    output: Annotated[str, typer.Option("--output", help="pretty or json.")] = "pretty",
) -> None:
    """A plugin's properties (types, defaults), outputs, versions and an example."""
    from engine.cli.common import check_output, fail
    from engine.core.errors import PluginNotFound
    from engine.loader.plugindoc import plugin_doc, render_doc
    from plugins.registry import default_registry

    check_output(output)
    registry = default_registry()
    try:
        spec = registry.resolve(type_name, version)
    except PluginNotFound as exc:
        fail(str(exc), 1)
    doc = plugin_doc(spec, registry)
    sys.stdout.write(json.dumps(doc, indent=2) + "\n" if output == "json" else render_doc(doc))


def register(app: typer.Typer) -> None:
    app.add_typer(schema_app, name="schema")
    app.add_typer(plugins_app, name="plugins")
