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
from engine.core.errors import EngineError, FlowValidationError

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
    from eventstore.cluster import register as register_cluster

    register_cluster(app)  # `engine cluster start|config`


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
    from engine.core.inputs import parse_cli_inputs
    from engine.flow import load_flow, load_flows_dir
    from engine.inputs import resolve_inputs

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


# ---- output: one code path for local and remote results ------------------------------------------
# Local results are first turned into the API's documents (execution_json, log items), so a
# command prints the same whether it read the local data directory or a server (--server).


def _log_item(line: Any) -> dict[str, Any]:
    """A stored LogLine as the API's log item."""
    return {
        "timestamp": line.date,
        "level": line.level,
        "taskId": line.task_id,
        "taskRunId": line.taskrun_id,
        "attemptNumber": line.attempt,
        "message": line.message,
    }


def _print_log_item(item: dict[str, Any], color: bool) -> None:
    raw = str(item.get("level") or "INFO")
    level = f"{_COLORS.get(raw, '')}{raw:<5}\x1b[0m" if color else raw
    stamp = str(item.get("timestamp") or "")[11:23]
    sys.stderr.write(f"{stamp} {level:<5} {item.get('taskId') or '-'} {item.get('message')}\n")


def _print_log(line: Any, color: bool) -> None:
    _print_log_item(_log_item(line), color)


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
    from engine.core import events as ev
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
    from engine.core.shape import execution_json

    return _report_doc(None if state is None else execution_json(state), output)


def _report_doc(doc: dict[str, Any] | None, output: str) -> int:
    """The end of an execution (an execution_json document): one line, or the JSON with --output json."""
    if doc is None:
        return 1
    current = doc["state"]["current"]
    if output == "json":
        sys.stdout.write(json.dumps(doc) + "\n")
    else:
        histories = doc["state"]["histories"]
        first, last = histories[0]["date"], histories[-1]["date"]
        sys.stderr.write(
            f"execution {doc['id']} {current} ({len(doc.get('taskRunList') or [])} taskruns, "
            f"{first[11:23]} → {last[11:23]})\n"
        )
        if doc.get("outputs"):
            sys.stderr.write("outputs: " + json.dumps(doc["outputs"]) + "\n")
    return 0 if current in ("SUCCESS", "WARNING") else 1


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
_SERVER = typer.Option(
    None,
    "--server",
    envvar="ENGINE_SERVER",
    help="Talk to the engine API at this URL (e.g. http://host:8080; user:password@ for basic auth) "
    "instead of the local data directory.",
    show_default=False,
)
_TOKEN = typer.Option(
    None,
    "--token",
    envvar="ENGINE_TOKEN",
    help="Bearer token for --server (one of the server's ENGINE_API_TOKENS).",
    show_default=False,
)


def _remote(server: str, token: str | None) -> Any:
    from engine.remote import RemoteEngine

    return RemoteEngine(server, token)


def _check_output(output: str) -> None:
    if output not in ("json", "pretty"):
        _fail(f"--output: expected json or pretty, got {output!r}")


async def _last_log_index(api: Any, execution_id: str) -> int:
    """The index of the execution's last log line so far (-1: none), to print only newer ones."""
    from urllib.parse import quote

    path = f"/logs/{quote(execution_id, safe='')}"
    total = int((await api.get_json(path, params={"size": 1}))["total"])
    if not total:
        return -1
    last = await api.get_json(path, params={"size": 1, "page": total})
    return int(last["results"][0]["index"]) if last["results"] else -1


async def _act_remote(
    server: str, token: str | None, execution_id: str, action: str, wait: bool, output: str, **kw: Any
) -> int:
    """kill/resume/restart/replay through the API; with --wait, its new log lines and its end."""
    async with _remote(server, token) as api:
        before = await api.execution(execution_id)
        seen = len(before["state"]["histories"])
        since = await _last_log_index(api, execution_id) if wait and action != "replay" else -1
        target = execution_id
        if action == "kill":
            await api.kill(execution_id)
        elif action == "resume":
            await api.resume(execution_id, kw.get("inputs") or {})
        elif action == "restart":
            await api.restart(execution_id)
        elif action == "replay":
            target = await api.replay(execution_id, kw.get("taskrun"), kw.get("revision"))
            seen = 0
            sys.stderr.write(f"execution {target} replays {execution_id}\n")
        if not wait:
            sys.stderr.write(f"{action}: sent for execution {target}\n")
            return 0
        await api.wait_change(target, seen)
        color = sys.stderr.isatty()
        async for item in api.follow_logs(target):
            if int(item.get("index", 0)) > since:
                _print_log_item(item, color)
        return _report_doc(await api.wait_terminal(target, timeout=60), output)


async def _act(
    execution_id: str,
    action: str,
    roles: bool | None,
    wait: bool,
    output: str,
    server: str | None = None,
    token: str | None = None,
    **kw: Any,
) -> int:
    _check_output(output)
    if server:
        if roles is not None:
            _fail("--roles/--no-roles apply to the local mode only, not with --server")
        return await _act_remote(server, token, execution_id, action, wait, output, **kw)
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
def kill(
    execution_id: str,
    roles: bool | None = _ROLES,
    wait: bool = _WAIT,
    output: str = _OUTPUT,
    server: str | None = _SERVER,
    token: str | None = _TOKEN,
) -> None:
    """Kill a running execution: its running processes stop, its subflows are killed too."""
    _command(_act(execution_id, "kill", roles, wait, output, server, token))


@app.command()
def resume(
    execution_id: str,
    input: Annotated[
        list[str] | None, typer.Option("--input", "-i", help="An onResume input, key=value.")
    ] = None,
    roles: bool | None = _ROLES,
    wait: bool = _WAIT,
    output: str = _OUTPUT,
    server: str | None = _SERVER,
    token: str | None = _TOKEN,
) -> None:
    """Resume a PAUSED execution (with the Pause task's onResume inputs)."""
    from engine.core.inputs import parse_cli_inputs

    try:
        inputs = parse_cli_inputs(input or [])
    except EngineError as exc:
        _fail(str(exc))
    _command(_act(execution_id, "resume", roles, wait, output, server, token, inputs=inputs))


@app.command()
def restart(
    execution_id: str,
    roles: bool | None = _ROLES,
    wait: bool = _WAIT,
    output: str = _OUTPUT,
    server: str | None = _SERVER,
    token: str | None = _TOKEN,
) -> None:
    """Run the failed taskruns of a finished execution again, as new attempts, in the same execution."""
    _command(_act(execution_id, "restart", roles, wait, output, server, token))


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
    server: str | None = _SERVER,
    token: str | None = _TOKEN,
) -> None:
    """Start a new execution that keeps what happened before --from and runs again from there."""
    _command(
        _act(execution_id, "replay", roles, wait, output, server, token, taskrun=from_, revision=revision)
    )


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
def executions_get(
    execution_id: str, output: str = _OUTPUT, server: str | None = _SERVER, token: str | None = _TOKEN
) -> None:
    """One execution: its state, taskruns and outputs (JSON in Kestra's API shape with --output json)."""
    _check_output(output)

    async def get() -> int:
        if server:
            async with _remote(server, token) as api:
                doc = await api.execution(execution_id)
        else:
            from engine.core.shape import execution_json

            async with _session(roles=False) as rt:
                doc = execution_json(await rt.get_execution(execution_id))
        if output == "json":
            sys.stdout.write(json.dumps(doc) + "\n")
        else:
            _print_execution(doc)
        return 0

    _command(get())


def _print_execution(doc: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{doc['namespace']}.{doc['flowId']} {doc['id']}: {doc['state']['current']}")
    for col in ("task", "value", "state", "attempts", "outputs"):
        table.add_column(col)
    for tr in doc.get("taskRunList") or []:
        outputs = json.dumps(tr.get("outputs") or {})
        attempts = str(len(tr.get("attempts") or []))
        table.add_row(tr["taskId"], tr.get("value") or "", tr["state"]["current"], attempts, outputs[:60])
    Console(stderr=False).print(table)


@executions_app.command("list")
def executions_list(
    namespace: Annotated[str | None, typer.Option(help="Only this namespace (prefix).")] = None,
    flow: Annotated[str | None, typer.Option(help="Only this flow id.")] = None,
    limit: Annotated[int, typer.Option(help="Show the N most recent.", min=1, max=1000)] = 20,
    output: str = _OUTPUT,
    server: str | None = _SERVER,
    token: str | None = _TOKEN,
) -> None:
    """The most recent executions, newest first."""
    _check_output(output)

    async def list_() -> int:
        if server:
            async with _remote(server, token) as api:
                docs = await api.executions(namespace, flow, limit)
        else:
            docs = await local_list()
        if output == "json":
            sys.stdout.write(json.dumps(docs) + "\n")
            return 0
        for d in docs:
            start = str(d["state"].get("startDate") or "")[:19]
            sys.stdout.write(
                f"{d['id']}  {start}  {d['state']['current']:<9} {d['namespace']}.{d['flowId']}\n"
            )
        return 0

    async def local_list() -> list[dict[str, Any]]:
        from engine.core.shape import execution_json
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
            return [execution_json(s) for s in states[:limit]]

    _command(list_())


@app.command()
def logs(
    execution_id: str,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing until the execution ends.")
    ] = False,
    server: str | None = _SERVER,
    token: str | None = _TOKEN,
) -> None:
    """The log lines of an execution."""

    async def show() -> int:
        if server:
            color = sys.stderr.isatty()
            async with _remote(server, token) as api:
                await api.execution(execution_id)  # not found: one clear line
                if follow:
                    async for item in api.follow_logs(execution_id):
                        _print_log_item(item, color)
                else:
                    for item in await api.logs(execution_id):
                        _print_log_item(item, color)
            return 0
        async with _session(roles=False) as rt:
            state = await rt.get_execution(execution_id)
            color = sys.stderr.isatty()
            for line in await rt.store.read_logs(execution_id):
                _print_log(line, color)
            if follow and not state.is_terminal:
                await _follow(rt, execution_id, None, None)
            return 0

    _command(show())


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
    from engine.flow import load_flow

    valid: list[tuple[Path, str, Any]] = []
    problems = 0
    seen: dict[tuple[str, str], Path] = {}
    for f in _flow_files(paths):
        source = f.read_text()
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
    _, problems = _check_flows(paths)
    if problems:
        _fail(_problems_line(problems, len(files)), 1)
    sys.stderr.write(f"{len(files)} flow(s) valid\n")


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
    server: str | None = _SERVER,
    token: str | None = _TOKEN,
) -> None:
    """Validate every flow (the problems of `engine flow validate`; any problem: nothing is deployed),
    then deploy each one whose source changed as a new revision. Prints one line per flow
    (created, updated, unchanged) on stdout and a summary on stderr."""
    files = _flow_files(paths)
    if not files:
        _fail(f"no *.yml or *.yaml flow file in {', '.join(str(p) for p in paths)}", 1)
    valid, problems = _check_flows(paths, namespace)
    if problems:
        _fail(_problems_line(problems, len(files)) + ": nothing deployed", 1)

    async def deploy() -> int:
        if server:
            async with _remote(server, token) as api:
                return await _deploy_all(valid, dry_run, api.flow_source, api.deploy_flow)
        async with _session(roles=False) as rt:

            async def current(ns: str, fid: str) -> str | None:
                rev = await rt.store.get_flow(ns, fid)
                return None if rev is None or rev.deleted else str(rev.source)

            async def save(source: str) -> int:
                return int((await rt.flows.deploy(source)).revision)

            return await _deploy_all(valid, dry_run, current, save)

    _command(deploy())


async def _deploy_all(valid: list[tuple[Path, str, Any]], dry_run: bool, current: Any, save: Any) -> int:
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    for path, source, flow in valid:
        deployed = await current(flow.namespace, flow.id)
        status = "created" if deployed is None else "unchanged" if deployed == source else "updated"
        counts[status] += 1
        revision = ""
        if status != "unchanged" and not dry_run:
            revision = f" revision {await save(source)}"
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
