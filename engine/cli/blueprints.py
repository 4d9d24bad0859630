"""``engine blueprints list|show|use``: the ready flows shipped with the engine."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from engine.cli.common import check_output, fail

blueprints_app = typer.Typer(no_args_is_help=True, help="Ready flows to start from.")


@blueprints_app.command("list")
def blueprints_list(
    output: Annotated[str, typer.Option("--output", help="pretty or json (the API's documents).")] = "pretty",
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="Only those with this tag (repeatable).")
    ] = None,
    q: Annotated[str | None, typer.Option("--q", help="Only those whose id, title or text has this.")] = None,
) -> None:
    """Every blueprint: id, title and tags (``--output json``: the API's documents)."""
    from engine.blueprints import search

    check_output(output)
    found = search(q, tag)
    if output == "json":
        sys.stdout.write(json.dumps([b.summary() for b in found], indent=2) + "\n")
        return
    width = max((len(b.id) for b in found), default=0)
    for b in found:
        sys.stdout.write(f"{b.id:<{width}}  {b.title}  [{', '.join(b.tags)}]\n")


@blueprints_app.command("show")
def blueprints_show(blueprint_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """A blueprint's description and flow."""
    from engine.blueprints import BlueprintNotFound, blueprint

    try:
        found = blueprint(blueprint_id)
    except BlueprintNotFound as exc:
        fail(str(exc), 1)
    sys.stdout.write(f"{found.title}\n{found.description}\ntags: {', '.join(found.tags)}\n\n{found.source}")


@blueprints_app.command("use")
def blueprints_use(
    blueprint_id: Annotated[str, typer.Argument(metavar="ID")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the flow to this file (else stdout).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Copy a blueprint's flow to start from it: ``engine blueprints use hello-world -o flows/hello.yaml``."""
    from engine.blueprints import BlueprintNotFound, blueprint

    try:
        found = blueprint(blueprint_id)
    except BlueprintNotFound as exc:
        fail(str(exc), 1)
    if output is None:
        sys.stdout.write(found.source)
        return
    if output.exists() and not force:
        fail(f"{output} exists: choose another file or pass --force", 1)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(found.source)
    sys.stderr.write(f"wrote {output} (flow {found.namespace}.{found.id}); run it: engine run {output}\n")


def register(app: typer.Typer) -> None:
    app.add_typer(blueprints_app, name="blueprints")
