"""The ``engine`` command line."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from engine.errors import EngineError, FlowValidationError

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Run Kestra flows on an event-sourced core."
)
flow_app = typer.Typer(no_args_is_help=True, help="Validate and inspect flows.")
schema_app = typer.Typer(no_args_is_help=True, help="Export the flow JSON Schema.")
plugins_app = typer.Typer(no_args_is_help=True, help="List task types.")
app.add_typer(flow_app, name="flow")
app.add_typer(schema_app, name="schema")
app.add_typer(plugins_app, name="plugins")

_COLORS = {
    "ERROR": "\x1b[31m",
    "WARN": "\x1b[33m",
    "INFO": "\x1b[36m",
    "DEBUG": "\x1b[2m",
    "TRACE": "\x1b[2m",
}


def _fail(message: str, code: int = 2) -> None:
    sys.stderr.write(message.rstrip() + "\n")
    raise typer.Exit(code)


def _print_issues(exc: FlowValidationError) -> None:
    n = len(exc.issues)
    sys.stderr.write(f"{n} problem{'s' if n != 1 else ''} found:\n")
    for issue in exc.issues:
        sys.stderr.write(f"  {issue}\n")


@app.command()
def run(
    file: Annotated[Path, typer.Argument(help="The flow YAML to run.", exists=True, dir_okay=False)],
    input: Annotated[
        list[str] | None, typer.Option("--input", "-i", help="An input, as key=value (repeat).")
    ] = None,
    flows: Annotated[
        Path | None, typer.Option(help="Also deploy every flow in this directory (subflows).")
    ] = None,
    output: Annotated[
        str, typer.Option(help="json: print the final execution as JSON on stdout.")
    ] = "pretty",
    label: Annotated[
        list[str] | None, typer.Option("--label", "-l", help="An execution label, key=value.")
    ] = None,
    timeout: Annotated[float | None, typer.Option(help="Give up waiting after this many seconds.")] = None,
) -> None:
    """Deploy FILE (and --flows), run one execution to its end with live logs, exit 0 on SUCCESS/WARNING."""
    from engine.flow import load_flow, load_flows_dir
    from engine.inputs import parse_cli_inputs, resolve_inputs

    if output not in ("json", "pretty"):
        _fail(f"--output: expected json or pretty, got {output!r}")
    try:
        flow = load_flow(file.read_text(), file=str(file), strict_expressions=True)
        extra = load_flows_dir(flows) if flows else []
        given = parse_cli_inputs(input or [])
        labels = parse_cli_inputs(label or [])
        from engine.expressions import Expressions

        inputs = resolve_inputs(flow, given, Expressions().render)
    except FlowValidationError as exc:
        _print_issues(exc)
        raise typer.Exit(2) from None
    except EngineError as exc:
        _fail(str(exc))
    del extra
    try:
        code = asyncio.run(_run(file, flows, inputs, labels, output, timeout))
    except EngineError as exc:
        _fail(str(exc), 1)
    except (KeyboardInterrupt, asyncio.CancelledError):
        _fail("interrupted: the execution's history is kept; it resumes with the next engine process", 130)
    raise typer.Exit(code)


async def _run(
    file: Path,
    flows_dir: Path | None,
    inputs: dict[str, Any],
    labels: dict[str, str],
    output: str,
    timeout: float | None,
) -> int:
    from engine.runtime import Runtime, new_execution_id
    from engine.shape import execution_json
    from eventstore import events as ev
    from eventstore import subjects as S
    from eventstore.store import Store

    color = sys.stderr.isatty()
    main_task = asyncio.current_task()
    assert main_task is not None
    # SIGTERM stops like Ctrl-C: roles cancelled, the embedded server stopped (never orphaned).
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    async with Runtime() as rt:
        if flows_dir is not None:
            await rt.flows.deploy_dir(flows_dir)
        flow = await rt.flows.deploy(file.read_text(), file=str(file))
        executor = rt.executor()
        worker = rt.worker()
        roles = [asyncio.create_task(executor.run()), asyncio.create_task(worker.run())]

        mine = {execution_id := new_execution_id()}  # this execution and its subflows' executions
        watched: list[Any] = []

        async def watch(eid: str) -> None:
            async def on_step(msg: Any) -> None:
                for event in ev.decode(msg.data):
                    if isinstance(event, ev.SubflowStarted) and event.execution_id not in mine:
                        mine.add(event.execution_id)
                        await watch(event.execution_id)

            watched.append(await rt.store.nc.subscribe(S.events(eid), cb=on_step))

        await watch(execution_id)

        async def on_log(msg: Any) -> None:
            if msg.subject[4:] not in mine:
                return
            line = Store.decode_log(msg.data)
            time_ = line.date[11:23]
            level = line.level
            if color:
                level = f"{_COLORS.get(line.level, '')}{line.level:<5}\x1b[0m"
            sys.stderr.write(f"{time_} {level:<5} {line.task_id or '-'} {line.message}\n")

        log_sub = await rt.store.nc.subscribe("log.>", cb=on_log)
        sys.stderr.write(f"execution {execution_id} of {flow.namespace}.{flow.id} rev {flow.revision}\n")
        try:
            state = await rt.wait_terminal(
                execution_id,
                on_start=lambda: rt.create_execution(flow, inputs, labels, execution_id=execution_id),
                timeout=timeout,
            )
        except TimeoutError:
            sys.stderr.write(
                f"execution {execution_id} has not ended after {timeout:g}s (its history is kept "
                "in the data directory)\n"
            )
            return 1
        finally:
            await rt.store.nc.flush()
            await log_sub.unsubscribe()
            for sub in watched:
                await sub.unsubscribe()
            for task in roles:
                task.cancel()
            await asyncio.gather(*roles, return_exceptions=True)
        if output == "json":
            sys.stdout.write(json.dumps(execution_json(state)) + "\n")
        else:
            first, last = state.histories[0].date, state.histories[-1].date
            sys.stderr.write(
                f"execution {state.id} {state.state} ({len(state.taskruns)} taskruns, "
                f"{first[11:23]} → {last[11:23]})\n"
            )
            if state.outputs:
                sys.stderr.write("outputs: " + json.dumps(state.outputs) + "\n")
        return 0 if state.state in ("SUCCESS", "WARNING") else 1


@flow_app.command("validate")
def flow_validate(
    paths: Annotated[list[Path], typer.Argument(help="Flow files or directories.", exists=True)],
) -> None:
    """Check flows without running them; exit 1 and list every problem if any is invalid."""
    from engine.flow import load_flow

    files: list[Path] = []
    for p in paths:
        files.extend(sorted(f for f in p.rglob("*") if f.suffix in (".yml", ".yaml")) if p.is_dir() else [p])
    problems = 0
    for f in files:
        try:
            load_flow(f.read_text(), file=str(f), strict_expressions=True)
        except FlowValidationError as exc:
            problems += len(exc.issues)
            for issue in exc.issues:
                sys.stderr.write(f"{issue}\n")
    if problems:
        _fail(f"{problems} problem{'s' if problems != 1 else ''} in {len(files)} file(s)", 1)
    sys.stderr.write(f"{len(files)} flow(s) valid\n")


@schema_app.command("export")
def schema_export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Write the flow JSON Schema (for editors)."""
    from engine.schema import flow_json_schema

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


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()
