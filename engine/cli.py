"""The ``engine`` command line."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import typer

from engine.aio import run_async, stop_tasks
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


def _register_triggers() -> None:
    from triggers.cli import register

    register(app)  # `engine backfill`, `engine triggers list|enable|disable`


_register_triggers()

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
        from engine.files import check_local_file_inputs

        check_local_file_inputs(flow, inputs)  # FILE inputs: uploaded when the execution is created
    except FlowValidationError as exc:
        _print_issues(exc)
        raise typer.Exit(2) from None
    except EngineError as exc:
        _fail(str(exc))
    del extra
    try:
        code = run_async(_run(file, flows, inputs, labels, output, timeout))
    except EngineError as exc:
        _fail(str(exc), 1)
    except (KeyboardInterrupt, asyncio.CancelledError):
        _fail("interrupted: the execution's history is kept; it resumes with the next engine process", 130)
    raise typer.Exit(code)


def _print_log(line: Any, color: bool) -> None:
    level = line.level
    if color:
        level = f"{_COLORS.get(line.level, '')}{line.level:<5}\x1b[0m"
    sys.stderr.write(f"{line.date[11:23]} {level:<5} {line.task_id or '-'} {line.message}\n")


@contextlib.asynccontextmanager
async def _session(roles: bool | None = None) -> AsyncIterator[Any]:
    """A Runtime, with the executor and a worker running in this process when ``roles`` (default: when
    the server is the embedded one, since nothing else could run them)."""
    from engine.runtime import Runtime

    main_task = asyncio.current_task()
    assert main_task is not None
    # SIGTERM stops like Ctrl-C: roles cancelled, the embedded server stopped (never orphaned).
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    async with Runtime() as rt:
        if roles is None:
            roles = rt.server is not None
        tasks = (
            [asyncio.create_task(rt.executor().run()), asyncio.create_task(rt.worker().run())]
            if roles
            else []
        )
        try:
            yield rt
        finally:
            await stop_tasks(tasks)


async def _follow(rt: Any, execution_id: str, start: Any, timeout: float | None) -> Any:
    """Print the live logs of the execution (and its subflows') until it ends; returns its final state."""
    from eventstore import events as ev
    from eventstore import subjects as S
    from eventstore.store import Store

    color = sys.stderr.isatty()
    mine = {execution_id}
    watched: list[Any] = []

    async def watch(eid: str) -> None:
        async def on_step(msg: Any) -> None:
            for event in ev.decode(msg.data):
                if isinstance(event, ev.SubflowStarted) and event.execution_id not in mine:
                    mine.add(event.execution_id)
                    await watch(event.execution_id)

        watched.append(await rt.store.nc.subscribe(S.events(eid), cb=on_step))

    async def on_log(msg: Any) -> None:
        if msg.subject[4:] in mine:
            _print_log(Store.decode_log(msg.data), color)

    await watch(execution_id)
    log_sub = await rt.store.nc.subscribe("log.>", cb=on_log)
    try:
        return await rt.wait_terminal(execution_id, on_start=start, timeout=timeout)
    except TimeoutError:
        sys.stderr.write(
            f"execution {execution_id} has not ended after {timeout:g}s (its history is kept "
            "in the data directory)\n"
        )
        return None
    finally:
        await rt.store.nc.flush()
        await log_sub.unsubscribe()
        for sub in watched:
            await sub.unsubscribe()


def _report(state: Any, output: str) -> int:
    from engine.shape import execution_json

    if state is None:
        return 1
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


async def _run(
    file: Path,
    flows_dir: Path | None,
    inputs: dict[str, Any],
    labels: dict[str, str],
    output: str,
    timeout: float | None,
) -> int:
    from engine.runtime import new_execution_id

    async with _session(roles=True) as rt:
        if flows_dir is not None:
            await rt.flows.deploy_dir(flows_dir)
        flow = await rt.flows.deploy(file.read_text(), file=str(file))
        execution_id = new_execution_id()
        sys.stderr.write(f"execution {execution_id} of {flow.namespace}.{flow.id} rev {flow.revision}\n")
        state = await _follow(
            rt,
            execution_id,
            lambda: rt.create_execution(flow, inputs, labels, execution_id=execution_id),
            timeout,
        )
        return _report(state, output)


def _command(coro: Any) -> None:
    """Run an async command: EngineError → one line and exit 1; Ctrl-C/SIGTERM → exit 130."""
    try:
        code = run_async(coro)
    except EngineError as exc:
        _fail(str(exc), 1)
    except (KeyboardInterrupt, asyncio.CancelledError):
        _fail("interrupted", 130)
    raise typer.Exit(code)


_ROLES = typer.Option(
    None,
    "--roles/--no-roles",
    help="Run the executor and a worker in this process (default: only on the embedded server).",
)
_WAIT = typer.Option(True, "--wait/--no-wait", help="Follow the execution's logs until it ends.")
_OUTPUT = typer.Option("pretty", help="json: print the final execution as JSON on stdout.")


async def _act(execution_id: str, action: str, roles: bool | None, wait: bool, output: str, **kw: Any) -> int:
    async with _session(roles) as rt:
        target = execution_id

        async def start() -> None:
            nonlocal target
            if action == "kill":
                await rt.kill(execution_id)
            elif action == "resume":
                await rt.resume(execution_id, kw.get("inputs"))
            elif action == "restart":
                await rt.restart(execution_id)
            elif action == "replay":
                target = await rt.replay(execution_id, kw.get("taskrun"), kw.get("revision"))
                sys.stderr.write(f"execution {target} replays {execution_id}\n")

        if action == "replay" or not wait:
            await start()
            if not wait:
                sys.stderr.write(f"{action}: sent for execution {target}\n")
                return 0
            return _report(await _follow(rt, target, None, None), output)
        return _report(await _follow(rt, target, start, None), output)


@app.command()
def kill(execution_id: str, roles: bool | None = _ROLES, wait: bool = _WAIT, output: str = _OUTPUT) -> None:
    """Kill a running execution: its running processes stop, its subflows are killed too."""
    _command(_act(execution_id, "kill", roles, wait, output))


@app.command()
def resume(
    execution_id: str,
    input: Annotated[
        list[str] | None, typer.Option("--input", "-i", help="An onResume input, key=value.")
    ] = None,
    roles: bool | None = _ROLES,
    wait: bool = _WAIT,
    output: str = _OUTPUT,
) -> None:
    """Resume a PAUSED execution (with the Pause task's onResume inputs)."""
    from engine.inputs import parse_cli_inputs

    try:
        inputs = parse_cli_inputs(input or [])
    except EngineError as exc:
        _fail(str(exc))
    _command(_act(execution_id, "resume", roles, wait, output, inputs=inputs))


@app.command()
def restart(
    execution_id: str, roles: bool | None = _ROLES, wait: bool = _WAIT, output: str = _OUTPUT
) -> None:
    """Run the failed taskruns of a finished execution again, as new attempts, in the same execution."""
    _command(_act(execution_id, "restart", roles, wait, output))


@app.command()
def replay(
    execution_id: str,
    from_: Annotated[
        str | None,
        typer.Option("--from", help="A taskrun id or task id to replay from (default: the start)."),
    ] = None,
    revision: Annotated[int | None, typer.Option(help="Run this flow revision instead.")] = None,
    roles: bool | None = _ROLES,
    wait: bool = _WAIT,
    output: str = _OUTPUT,
) -> None:
    """Start a new execution that keeps what happened before --from and runs again from there."""
    _command(_act(execution_id, "replay", roles, wait, output, taskrun=from_, revision=revision))


server_app = typer.Typer(no_args_is_help=True, help="Run the engine's roles as long-lived processes.")
app.add_typer(server_app, name="server")


async def _serve(
    roles: list[str],
    flows_dir: Path | None,
    group: str | None,
    concurrency: int,
    host: str = "127.0.0.1",
    port: int = 8080,
    watch: bool = False,
) -> int:
    """Run the given roles until SIGTERM/Ctrl-C; each role is an asyncio task of this process."""
    from engine.runtime import Runtime

    main_task = asyncio.current_task()
    assert main_task is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, main_task.cancel)
    async with Runtime() as rt:
        if flows_dir is not None:
            deployed = await rt.flows.deploy_dir(flows_dir)
            sys.stderr.write(f"deployed {len(deployed)} flow(s) from {flows_dir}\n")
        tasks = []
        if "executor" in roles:
            tasks.append(asyncio.create_task(rt.executor().run()))
        if "worker" in roles:
            tasks.append(asyncio.create_task(rt.worker(group=group, concurrency=concurrency).run()))
        if "triggers" in roles:
            from triggers.service import TriggerService

            tasks.append(asyncio.create_task(TriggerService(rt).run()))
        if watch and flows_dir is not None:
            tasks.append(asyncio.create_task(_watch_flows(rt, flows_dir)))
        if "webserver" in roles:
            from webserver.app import serve

            tasks.append(asyncio.create_task(serve(rt, host, port)))
            sys.stderr.write(f"API on http://{host}:{port}/api/v1 (OpenAPI: /api/v1/openapi.json)\n")
        where = "embedded server " + rt.server.url if rt.server else rt.nats_url
        sys.stderr.write(f"engine {', '.join(roles)} running on {where} (pid {os.getpid()}); Ctrl-C stops\n")
        try:
            await asyncio.gather(*tasks)
        finally:
            await stop_tasks(tasks)
    return 0


@server_app.command("nats")
def server_nats() -> None:
    """Only the embedded NATS server of this data directory; prints its URL for ENGINE_NATS_URL."""
    from engine.runtime import data_home
    from eventstore.server import EmbeddedServer

    server = EmbeddedServer(data_home() / "nats")
    try:
        server.start()
    except EngineError as exc:
        _fail(str(exc), 1)
    sys.stdout.write(server.client_url + "\n")
    sys.stdout.flush()
    sys.stderr.write(f"nats-server pid {server.pid} on {server.url}; Ctrl-C stops it\n")
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        server.stop()


async def _watch_flows(rt: Any, flows_dir: Path) -> None:
    """Re-deploy a flow file the moment it changes (a new revision when its source changed)."""
    from watchfiles import awatch

    async for changes in awatch(flows_dir):
        for _, changed in sorted(changes):
            path = Path(changed)
            if path.suffix not in (".yml", ".yaml") or not path.is_file():
                continue
            try:
                flow = await rt.flows.deploy(path.read_text(), file=str(path))
            except FlowValidationError as exc:
                _print_issues(exc)
                continue
            sys.stderr.write(f"deployed {flow.namespace}.{flow.id} revision {flow.revision} from {path}\n")


_FLOWS = typer.Option(None, "--flows", help="Deploy every flow in this directory first.")
_WATCH = typer.Option(False, "--watch", help="Re-deploy a flow of --flows the moment its file changes.")
_GROUP = typer.Option(None, "--group", help="Worker group (tasks with workerGroup.key go to that group).")
_CONC = typer.Option(16, "--concurrency", help="Tasks this worker runs at once.")


_HOST = typer.Option("127.0.0.1", help="API bind address; not loopback needs ENGINE_API_TOKENS or a user.")
_PORT = typer.Option(8080, help="API port.")


@server_app.command("local")
def server_local(
    flows: Path | None = _FLOWS,
    concurrency: int = _CONC,
    host: str = _HOST,
    port: int = _PORT,
    watch: bool = _WATCH,
) -> None:
    """Everything in one process on the embedded server (or ENGINE_NATS_URL): executor, worker,
    scheduler, indexer and the REST API."""
    roles = ["executor", "worker", "triggers", "webserver"]
    _command(_serve(roles, flows, None, concurrency, host, port, watch))


@server_app.command("webserver")
def server_webserver(host: str = _HOST, port: int = _PORT) -> None:
    """The indexer and the REST API only (/api/v1)."""
    _command(_serve(["webserver"], None, None, 0, host, port))


@server_app.command("executor")
def server_executor(flows: Path | None = _FLOWS) -> None:
    """The executor role only: folds executions, decides, dispatches."""
    _command(_serve(["executor"], flows, None, 0))


@server_app.command("scheduler")
def server_scheduler(flows: Path | None = _FLOWS) -> None:
    """The trigger role only: schedules, Flow triggers (executions started by other executions' ends)."""
    _command(_serve(["triggers"], flows, None, 0))


@server_app.command("worker")
def server_worker(group: str | None = _GROUP, concurrency: int = _CONC) -> None:
    """The worker role only: runs tasks."""
    _command(_serve(["worker"], None, group, concurrency))


executions_app = typer.Typer(no_args_is_help=True, help="Look at executions.")
app.add_typer(executions_app, name="executions")


@executions_app.command("get")
def executions_get(execution_id: str, output: str = _OUTPUT) -> None:
    """One execution: its state, taskruns and outputs (JSON in Kestra's API shape with --output json)."""

    async def get() -> int:
        async with _session(roles=False) as rt:
            state = await rt.get_execution(execution_id)
            if output == "json":
                from engine.shape import execution_json

                sys.stdout.write(json.dumps(execution_json(state)) + "\n")
                return 0
            _print_execution(state)
            return 0

    _command(get())


def _print_execution(state: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{state.namespace}.{state.flow_id} {state.id}: {state.state}")
    for col in ("task", "value", "state", "attempts", "outputs"):
        table.add_column(col)
    for tr in state.taskruns.values():
        outputs = json.dumps(tr.outputs)
        table.add_row(tr.task_id, tr.value or "", tr.state, str(len(tr.attempts)), outputs[:60])
    Console(stderr=False).print(table)


@executions_app.command("list")
def executions_list(
    namespace: Annotated[str | None, typer.Option(help="Only this namespace (prefix).")] = None,
    flow: Annotated[str | None, typer.Option(help="Only this flow id.")] = None,
    limit: Annotated[int, typer.Option(help="Show the N most recent.")] = 20,
    output: str = _OUTPUT,
) -> None:
    """The most recent executions, newest first."""

    async def list_() -> int:
        from eventstore import subjects as S

        async with _session(roles=False) as rt:
            ids: list[str] = []
            for k in range(S.SHARDS):
                info = await rt.store.js.stream_info(f"{S.EVENTS}_{k}", subjects_filter="ev.>")
                ids.extend(subject.split(".", 2)[2] for subject in info.state.subjects or {})
            states = [s for s in [await rt.load_execution(i) for i in ids] if s is not None]
            states = [
                s
                for s in states
                if (namespace is None or s.namespace.startswith(namespace))
                and (flow is None or s.flow_id == flow)
            ]
            states.sort(key=lambda s: s.start_date, reverse=True)
            states = states[:limit]
            if output == "json":
                from engine.shape import execution_json

                sys.stdout.write(json.dumps([execution_json(s) for s in states]) + "\n")
                return 0
            for s in states:
                sys.stdout.write(f"{s.id}  {s.start_date[:19]}  {s.state:<9} {s.namespace}.{s.flow_id}\n")
            return 0

    _command(list_())


@app.command()
def logs(
    execution_id: str,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing until the execution ends.")
    ] = False,
) -> None:
    """The log lines of an execution."""

    async def show() -> int:
        async with _session(roles=False) as rt:
            state = await rt.get_execution(execution_id)
            color = sys.stderr.isatty()
            for line in await rt.store.read_logs(execution_id):
                _print_log(line, color)
            if follow and not state.is_terminal:
                await _follow(rt, execution_id, None, None)
            return 0

    _command(show())


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
        async with _session(roles=False) as rt:
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
            for r in revisions:
                note = " (deleted)" if r.deleted else ""
                sys.stdout.write(f"{r.revision}\t{len(r.source.splitlines())} lines{note}\n")
            return 0

    _command(list_revisions())


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
