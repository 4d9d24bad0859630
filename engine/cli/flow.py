"""``engine flow validate|deploy|revisions``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from engine.cli.common import BEARER, SERVER_URL, command, fail, remote, session
from engine.core.errors import EngineError, FlowValidationError

flow_app = typer.Typer(no_args_is_help=True, help="Validate and inspect flows.")


def _flow_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        files.extend(sorted(f for f in p.rglob("*") if f.suffix in (".yml", ".yaml")) if p.is_dir() else [p])
    return files


def _check_flows(paths: list[Path], namespace: str | None = None) -> tuple[list[tuple[Path, str, Any]], int]:
    """Validate every flow file (printing each problem on stderr as ``engine flow validate`` does).

    Returns the valid (path, source, flow) and the number of problems; ``namespace``: every flow
    must be in it or below it, and no two files may hold the same flow.
    """
    from engine.loader.loader import is_test_suite, load_flow

    valid: list[tuple[Path, str, Any]] = []
    problems = 0
    seen: dict[tuple[str, str], Path] = {}
    for f in _flow_files(paths):
        source = f.read_text()
        if is_test_suite(source):  # a flow unit test beside the flows (engine test)
            continue
        try:
            flow = load_flow(source, file=str(f), strict_expressions=True)
        except FlowValidationError as exc:
            problems += len(exc.issues)
            for issue in exc.issues:
                sys.stderr.write(f"{issue}\n")
            continue
        if namespace and flow.namespace != namespace and not flow.namespace.startswith(namespace + "."):
            problems += 1
            sys.stderr.write(f"{f}: namespace: {flow.namespace} is not in {namespace} (--namespace)\n")
            continue
        key = (flow.namespace, flow.id)
        if key in seen:
            problems += 1
            sys.stderr.write(f"{f}: id: flow {flow.namespace}.{flow.id} is also defined in {seen[key]}\n")
            continue
        seen[key] = f
        valid.append((f, source, flow))
    return valid, problems


def _problems_line(problems: int, files: int) -> str:
    return f"{problems} problem{'s' if problems != 1 else ''} in {files} file(s)"


@flow_app.command("validate")
def flow_validate(
    paths: Annotated[list[Path], typer.Argument(help="Flow files or directories.", exists=True)],
) -> None:
    """Check flows without running them; exit 1 and list every problem if any is invalid."""
    files = _flow_files(paths)
    valid, problems = _check_flows(paths)
    if problems:
        fail(_problems_line(problems, len(files)), 1)
    sys.stderr.write(f"{len(valid)} flow(s) valid\n")  # flow unit tests beside them are skipped


@flow_app.command("deploy")
def flow_deploy(
    paths: Annotated[
        list[Path], typer.Argument(help="Directories (every *.yml/*.yaml below) or flow files.", exists=True)
    ],
    namespace: Annotated[
        str | None,
        typer.Option("--namespace", help="Refuse any flow outside this namespace (and its children)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and show what would change; deploy nothing.")
    ] = False,
    server: str | None = SERVER_URL,
    token: str | None = BEARER,
) -> None:
    """Validate every flow (the problems of `engine flow validate`; any problem: nothing is deployed),
    then deploy each one whose source changed as a new revision. Prints one line per flow
    (created, updated, unchanged) on stdout and a summary on stderr."""
    files = _flow_files(paths)
    if not files:
        fail(f"no *.yml or *.yaml flow file in {', '.join(str(p) for p in paths)}", 1)
    valid, problems = _check_flows(paths, namespace)
    if problems:
        fail(_problems_line(problems, len(files)) + ": nothing deployed", 1)

    async def deploy() -> int:
        if server:
            async with remote(server, token) as api:

                async def put(source: str, flow: Any, exists: bool) -> int:
                    return int(await api.deploy_flow(source, flow.namespace, flow.id, exists))

                return await _deploy_all(valid, dry_run, api.flow_source, put)
        async with session(roles=False) as rt:

            async def current(ns: str, fid: str) -> str | None:
                rev = await rt.store.get_flow(ns, fid)
                return None if rev is None or rev.deleted else str(rev.source)

            async def save(source: str, flow: Any, exists: bool) -> int:
                return int((await rt.flows.deploy(source)).revision)

            return await _deploy_all(valid, dry_run, current, save)

    command(deploy())


async def _deploy_all(valid: list[tuple[Path, str, Any]], dry_run: bool, current: Any, save: Any) -> int:
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    for path, source, flow in valid:
        deployed = await current(flow.namespace, flow.id)
        status = "created" if deployed is None else "unchanged" if deployed == source else "updated"
        counts[status] += 1
        revision = ""
        if status != "unchanged" and not dry_run:
            revision = f" revision {await save(source, flow, deployed is not None)}"
        verb = status if not dry_run or status == "unchanged" else f"would be {status}"
        sys.stdout.write(f"{flow.namespace}.{flow.id}\t{verb}{revision}\t{path}\n")
    summary = ", ".join(f"{n} {what}" for what, n in counts.items())
    sys.stderr.write(f"{'dry run: ' if dry_run else ''}{len(valid)} flow(s): {summary}\n")
    return 0


@flow_app.command("revisions")
def flow_revisions(
    namespace: str,
    flow_id: str,
    show: Annotated[
        int | None, typer.Option("--show", help="Print the YAML source of this revision.")
    ] = None,
) -> None:
    """Every revision of a deployed flow (each deploy that changed the source is a new one)."""

    async def list_revisions() -> int:
        async with session(roles=False) as rt:
            revisions = await rt.store.flow_revisions(namespace, flow_id)
            if not revisions:
                raise EngineError(f"flow {namespace}.{flow_id} is not deployed")
            if show is not None:
                match = [r for r in revisions if r.revision == show]
                if not match:
                    known = ", ".join(str(r.revision) for r in revisions)
                    raise EngineError(
                        f"flow {namespace}.{flow_id} has no revision {show} (revisions: {known})"
                    )
                sys.stdout.write(match[0].source)
                return 0
            sys.stdout.write(f"{'revision':<9} {'date':<24} {'deleted':<8} summary\n")
            previous = ""
            for r in revisions:
                date = (r.date or "").replace("T", " ")[:23]
                sys.stdout.write(
                    f"{r.revision:<9} {date:<24} {'yes' if r.deleted else 'no':<8} {_summary(r, previous)}\n"
                )
                previous = r.source if not r.deleted else previous
            return 0

    command(list_revisions())


def _summary(revision: Any, previous: str) -> str:
    """What a revision is: its tasks and triggers, and the lines it changed from the one before."""
    import difflib

    import yaml

    from engine.yamlpos import safe_load  # bounded: aliases and depth are limited

    if revision.deleted:
        return "flow deleted"
    try:
        doc = safe_load(revision.source)
    except (EngineError, yaml.YAMLError):
        doc = None
    parts = []
    if isinstance(doc, dict):
        for key, noun in (("tasks", "task"), ("triggers", "trigger"), ("inputs", "input")):
            n = len(doc.get(key) or []) if isinstance(doc.get(key) or [], list) else 0
            if n or key == "tasks":
                parts.append(f"{n} {noun}{'s' if n != 1 else ''}")
    what = ", ".join(parts) or f"{len(revision.source.splitlines())} lines"
    if not previous:
        return f"{what}; created"
    added = removed = 0
    for line in difflib.unified_diff(previous.splitlines(), revision.source.splitlines(), lineterm="", n=0):
        if line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            removed += 1
    return f"{what}; +{added} -{removed} lines"


def register(app: typer.Typer) -> None:
    app.add_typer(flow_app, name="flow")
