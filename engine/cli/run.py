"""``engine run``: deploy a flow and run one execution to its end, with live logs."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from engine.aio import run_async
from engine.cli.common import check_output, fail, follow, print_issues, report, session, spawn_early
from engine.core.errors import EngineError, FlowValidationError


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
    from engine.core.inputs import parse_cli_inputs
    from engine.inputs import check_known_inputs, resolve_inputs
    from engine.loader.loader import load_flow, load_flows_dir

    check_output(output)
    try:
        flow = load_flow(file.read_text(), file=str(file), strict_expressions=True)
        extra = load_flows_dir(flows) if flows else []
        given = parse_cli_inputs(input or [])
        labels = parse_cli_inputs(label or [])
        from engine.expressions import Expressions

        check_known_inputs(flow, given)
        inputs = resolve_inputs(flow, given, Expressions().render)
        from engine.files import check_local_file_inputs

        check_local_file_inputs(flow, inputs)  # FILE inputs: uploaded when the execution is created
    except FlowValidationError as exc:
        print_issues(exc)
        raise typer.Exit(2) from None
    except EngineError as exc:
        fail(str(exc))
    del extra
    spawned = None
    # Until the session's own handler is in place, SIGTERM interrupts as Ctrl-C does, so that the
    # server spawned below is stopped in the `finally`, never orphaned.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        spawned = spawn_early()  # the server reads its store while the rest is imported
        code = run_async(_run(file, flows, inputs, labels, output, timeout, spawned))
    except EngineError as exc:
        fail(str(exc), 1)
    except (KeyboardInterrupt, asyncio.CancelledError):
        fail("interrupted: the execution's history is kept; it resumes with the next engine process", 130)
    finally:
        if spawned is not None:
            spawned.stop()  # a no-op once the session has stopped it
        signal.signal(signal.SIGTERM, previous)
    raise typer.Exit(code)


async def _run(
    file: Path,
    flows_dir: Path | None,
    inputs: dict[str, Any],
    labels: dict[str, str],
    output: str,
    timeout: float | None,
    spawned: Any = None,
) -> int:
    from engine.ids import new_execution_id
    from engine.settings import settings

    # On a cluster (ENGINE_NATS_URL) `engine run` brings its own executor and worker; on a data
    # directory another process owns, that process's roles run it.
    async with session(roles=True if settings().nats_url else None, spawned=spawned) as rt:
        if flows_dir is not None:
            await rt.flows.deploy_dir(flows_dir)
        flow = await rt.flows.deploy(file.read_text(), file=str(file))
        execution_id = new_execution_id()
        sys.stderr.write(f"execution {execution_id} of {flow.namespace}.{flow.id} rev {flow.revision}\n")
        state = await follow(
            rt,
            execution_id,
            lambda: rt.create_execution(flow, inputs, labels, execution_id=execution_id, fresh=True),
            timeout,
        )
        while state is not None and state.state == "RETRIED":
            # retry behavior CREATE_NEW_EXECUTION: the next try is another execution; the run is the last
            from engine.core.factory import retry_id

            next_id = retry_id(state.id)
            sys.stderr.write(f"execution {state.id} RETRIED: next try {next_id}\n")
            state = await follow(rt, next_id, None, timeout)
        return report(state, output)


def register(app: typer.Typer) -> None:
    app.command()(run)
