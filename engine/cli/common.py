"""What the command groups share: failing in one line, running an async command, the local session,
the shared options, and printing logs and an execution's end."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import shlex
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any, NoReturn

import typer

from engine.aio import run_async, stop_tasks
from engine.core.errors import EngineError, FlowValidationError
from engine.settings import SERVER, TOKEN

_COLORS = {
    "ERROR": "\x1b[31m",
    "WARN": "\x1b[33m",
    "INFO": "\x1b[36m",
    "DEBUG": "\x1b[2m",
    "TRACE": "\x1b[2m",
}


# While a command starts, the collector's first generation fills every 700 new objects and it walks
# what survived, over and over: the modules, classes and plugin tables being built, that live as
# long as the process. A larger threshold during start-up, then those objects frozen out of every
# later collection, saved 25-50 ms of an `engine run` (GC callbacks: 65 ms before, 12 ms after).
_STARTUP_GC_THRESHOLD = 10_000
_default_gc: tuple[int, int, int] | None = None  # the thresholds to restore; None: not starting up


def gc_for_startup() -> None:
    """Collect less while the process starts (``python -m engine`` only; see ``gc_started``)."""
    global _default_gc
    if _default_gc is None:
        _default_gc = gc.get_threshold()
        gc.set_threshold(_STARTUP_GC_THRESHOLD, *_default_gc[1:])


# Once the roles run, the first generation fills every 50,000 new objects rather than 700. An
# executor holds thousands of open executions and the states of the steps in flight: with
# Python's 700, those were walked again and again as they aged through the generations (bench/
# recovery.py: 2.2 s of the surviving executor's 4.3 s of CPU were collections, 1,529 young, 138
# middle and 12 full ones; with 50,000: 0.23 s, 8 young ones). What a collection frees is the
# few cycles a step leaves (closures, futures): tens of MB at most wait for it.
SERVING_GC_THRESHOLD = 50_000


def gc_started() -> None:
    """The command's roles are up: what start-up built stays for the life of the process, so it is
    frozen out of the collections, which then run every ``SERVING_GC_THRESHOLD`` new objects (the
    older generations at Python's own pace)."""
    global _default_gc
    if _default_gc is not None:
        gc.freeze()
        gc.set_threshold(SERVING_GC_THRESHOLD, *_default_gc[1:])
        _default_gc = None


def fail(message: str, code: int = 2) -> NoReturn:
    sys.stderr.write(message.rstrip() + "\n")
    raise typer.Exit(code)


def print_issues(exc: FlowValidationError) -> None:
    n = len(exc.issues)
    sys.stderr.write(f"{n} problem{'s' if n != 1 else ''} found:\n")
    for issue in exc.issues:
        sys.stderr.write(f"  {issue}\n")


def command(coro: Any) -> None:
    """Run an async command: EngineError → one line and exit 1; Ctrl-C/SIGTERM → exit 130."""
    try:
        code = run_async(coro)
    except EngineError as exc:
        fail(str(exc), 1)
    except (KeyboardInterrupt, asyncio.CancelledError):
        fail("interrupted", 130)
    raise typer.Exit(code)


ROLES = typer.Option(
    None,
    "--roles/--no-roles",
    help="Run the executor and a worker in this process (default: only on the embedded server).",
)
WAIT = typer.Option(True, "--wait/--no-wait", help="Follow the execution's logs until it ends.")
OUTPUT = typer.Option("pretty", help="json: print the final execution as JSON on stdout.")
SERVER_URL = typer.Option(
    None,
    "--server",
    envvar=SERVER,
    help="Talk to the engine API at this URL (e.g. http://host:8080; user:password@ for basic auth) "
    "instead of the local data directory.",
    show_default=False,
)
BEARER = typer.Option(
    None,
    "--token",
    envvar=TOKEN,
    help="Bearer token for --server (one of the server's ENGINE_API_TOKENS).",
    show_default=False,
)


def check_output(output: str) -> None:
    if output not in ("json", "pretty"):
        fail(f"--output: expected json or pretty, got {output!r}")


def remote(server: str, token: str | None) -> Any:
    from engine.cli.remote import RemoteEngine

    return RemoteEngine(server, token)


def cancel_on_sigterm() -> None:
    """SIGTERM cancels the running command's task, as Ctrl-C does: its ``finally`` blocks still run."""
    main_task = asyncio.current_task()
    assert main_task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)


def spawn_early() -> Any:
    """The data directory's embedded server, spawned now (None when ENGINE_NATS_URL is set or another
    process owns the directory): it reads its store while this process imports the rest of the
    engine (``engine run`` of a warm data directory: the server takes 40-50 ms to listen). The
    caller hands it to ``session`` and stops it in a ``finally`` (a no-op once the session has)."""
    from engine.settings import data_home, settings
    from eventstore.server import EmbeddedServer, owner_endpoint

    if settings().nats_url or owner_endpoint(data_home() / "nats") is not None:
        return None
    server = EmbeddedServer(data_home() / "nats")
    server.spawn()
    return server


@contextlib.asynccontextmanager
async def session(
    roles: bool | None = None, *, sigterm: bool = True, spawned: Any = None
) -> AsyncIterator[Any]:
    """A Runtime, with the executor and a worker running in this process when ``roles`` (default: when
    the server is the embedded one, since nothing else could run them; on a data directory another
    process owns, the command talks to that process's server and uses its roles). ``sigterm``: SIGTERM stops
    like Ctrl-C: roles cancelled, the embedded server stopped (never orphaned). ``spawned``: the
    embedded server ``spawn_early`` launched."""
    from engine.runtime import Runtime

    if sigterm:
        cancel_on_sigterm()
    if spawned is not None:
        # This process runs the roles on the server it spawned: their modules load while it starts.
        import engine.executor  # noqa: F401
        import workers.worker  # noqa: F401
    async with Runtime(spawned=spawned) as rt:
        if roles is None:
            # The embedded server of this process, or of an owner that runs no executor: nothing
            # else would carry the command through. An owner with roles, or a cluster, does.
            roles = rt.server is not None or (rt.owner is not None and not rt.owner["roles"])
        if rt.server is not None and roles:
            rt.server.publish(roles=True)
        tasks = (
            [asyncio.create_task(rt.executor().run()), asyncio.create_task(rt.worker().run())]
            if roles
            else []
        )
        gc_started()
        main = asyncio.current_task()
        assert main is not None
        owner = int(rt.owner["owner_pid"]) if rt.owner else None
        watch = asyncio.create_task(_owner_gone(owner, main)) if owner is not None else None
        try:
            yield rt
        except asyncio.CancelledError:
            if watch is None or not watch.done() or watch.cancelled():
                raise
            main.uncancel()
            raise EngineError(
                f"the engine process (pid {owner}) that owned the data directory ended "
                "while this command used it: run the command again"
            ) from None
        finally:
            await stop_tasks([*tasks, *([watch] if watch else [])])


async def _owner_gone(pid: int, main: asyncio.Task[Any]) -> None:
    """Cancel ``main`` once the process that owns the server it talks to is gone (its server went
    with it: the connection would retry for ever)."""
    from eventstore.server import process_alive

    while process_alive(pid):
        await asyncio.sleep(0.5)
    main.cancel()


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


def print_log_item(item: dict[str, Any], color: bool) -> None:
    raw = str(item.get("level") or "INFO")
    level = f"{_COLORS.get(raw, '')}{raw:<5}\x1b[0m" if color else raw
    stamp = str(item.get("timestamp") or "")[11:23]
    sys.stderr.write(f"{stamp} {level:<5} {item.get('taskId') or '-'} {item.get('message')}\n")


def print_log(line: Any, color: bool) -> None:
    print_log_item(_log_item(line), color)


async def follow(rt: Any, execution_id: str, start: Any, timeout: float | None) -> Any:
    """Print the live logs of the execution (and its subflows') until it ends; returns its final state."""
    from engine.core import events as ev
    from eventstore.cli_ops import live_logs

    color = sys.stderr.isatty()
    notices: set[asyncio.Task[None]] = set()

    async def on_events(events: list[Any]) -> None:
        for event in events:
            if isinstance(event, ev.ExecutionStateChanged) and event.state == "PAUSED":
                task = asyncio.create_task(say_paused(rt, execution_id))
                notices.add(task)
                task.add_done_callback(notices.discard)

    paused = await rt.store.watch_events(execution_id, on_events)
    try:
        async with live_logs(rt.store, execution_id, lambda line: print_log(line, color)):
            if start is None:
                state = await rt.load_execution(execution_id)
                if state is not None and state.state == "PAUSED":
                    await say_paused(rt, execution_id)
            try:
                return await rt.wait_terminal(execution_id, on_start=start, timeout=timeout)
            except TimeoutError:
                sys.stderr.write(
                    f"execution {execution_id} has not ended after {timeout:g}s (its history is kept "
                    "in the data directory)\n"
                )
                return None
    finally:
        await paused.unsubscribe()
        await stop_tasks(list(notices))


async def say_paused(rt: Any, execution_id: str) -> None:
    """PAUSED, and the exact command that resumes it (with the onResume inputs the Pause declares)."""
    from engine.core.tree import index_tasks
    from engine.settings import settings

    names: list[str] = []
    try:
        state = await rt.load_execution(execution_id)
        if state is None or state.state != "PAUSED":
            return
        flow = await rt.flows.get(state.namespace, state.flow_id, state.flow_revision)
        tasks = index_tasks(flow)
        for tr in state.taskruns.values():
            task = tasks.get(tr.task_id)
            if tr.state == "PAUSED" and task is not None:
                for d in task.props.get("onResume") or ():
                    if isinstance(d, dict) and (d.get("id") or d.get("name")):
                        names.append(str(d.get("id") or d.get("name")))
    except EngineError:
        pass  # the notice still says how to resume; the inputs are only a help
    # Another terminal has its own environment: name the data directory when it is not the default.
    home = settings().home
    prefix = f"ENGINE_HOME={shlex.quote(str(home))} " if home and not settings().nats_url else ""
    given = "".join(f" --input {shlex.quote(n)}=VALUE" for n in dict.fromkeys(names))
    sys.stderr.write(
        f"execution {execution_id} PAUSED: waiting to be resumed; in another terminal:\n"
        f"  {prefix}engine resume {execution_id}{given}\n"
    )


def report(state: Any, output: str) -> int:
    from engine.core.shape import execution_json

    return report_doc(None if state is None else execution_json(state), output)


def report_doc(doc: dict[str, Any] | None, output: str) -> int:
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
