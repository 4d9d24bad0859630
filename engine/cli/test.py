"""``engine test DIR``: run the flow unit tests (Kestra's UnitTest YAML) found in a directory."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from engine.cli.common import command, fail


def test(
    directory: Annotated[Path, typer.Argument(help="Directory (or one file) with flows and their tests.")],
    junit: Annotated[
        Path | None, typer.Option("--junit", help="Also write the results as JUnit XML to this file.")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds one test case's execution may take.")] = 60.0,
) -> None:
    """Run the flow unit tests found in DIR.

    Every test suite runs on the in-memory engine: exit 0 when all pass, 1 otherwise, 2 when a flow or
    test file is invalid (nothing runs then)."""
    from engine.testing.flowtests import discover, junit_xml, report, run_suites

    if not directory.exists():
        fail(f"{directory}: no such file or directory")
    found = discover(directory)
    if found.issues:
        n = len(found.issues)
        sys.stderr.write(f"{n} problem{'s' if n != 1 else ''} found:\n")
        for issue in found.issues:
            sys.stderr.write(f"  {issue}\n")
        raise typer.Exit(2)
    if not found.suites:
        fail(f"{directory}: no test suite (a YAML file with flowId and testCases)")

    async def main() -> int:
        results = await run_suites(found.suites, found.flows, timeout)
        sys.stdout.write(report(results))
        if junit is not None:
            junit.write_text(junit_xml(results))
        return 0 if all(r.ok for r in results) else 1

    command(main())


def register(app: typer.Typer) -> None:
    app.command("test")(test)
