"""``engine kill|resume|restart|replay``, ``engine logs`` and ``engine executions get|list``: on the
local data directory, or on a server's API with ``--server``."""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from engine.cli.common import (
    BEARER,
    OUTPUT,
    ROLES,
    SERVER_URL,
    WAIT,
    check_output,
    command,
    fail,
    follow,
    print_log,
    print_log_item,
    remote,
    report,
    report_doc,
    session,
)
from engine.core.errors import EngineError


async def _last_log_line(api: Any, execution_id: str) -> tuple[str, int]:
    """(date to the millisecond, index) of the execution's newest log line so far, to print only
    newer ones: ("", -1) when it has none."""
    newest = await api.get_json(
        "/logs/search", params={"filters[executionId][EQUALS]": execution_id, "size": 1}
    )  # newest first
    return _log_position(newest["results"][0]) if newest["results"] else ("", -1)


def _log_position(item: dict[str, Any]) -> tuple[str, int]:
    # By date first: a short attempt's lines are numbered after the stream's (``workers.lines``).
    # The search answers with milliseconds, the live tail with microseconds.
    return str(item.get("timestamp") or "")[:23], int(item.get("index", 0))


async def _act_remote(
    server: str, token: str | None, execution_id: str, action: str, wait: bool, output: str, **kw: Any
) -> int:
    """kill/resume/restart/replay through the API; with --wait, its new log lines and its end."""
    async with remote(server, token) as api:
        before = await api.execution(execution_id)
        seen = len(before["state"]["histories"])
        since = await _last_log_line(api, execution_id) if wait and action != "replay" else ("", -1)
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
            if _log_position(item) > since:
                print_log_item(item, color)
        doc = await api.wait_terminal(target, timeout=60)
        return _exit(action, report_doc(doc, output), doc["state"]["current"])


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
    check_output(output)
    if server:
        if roles is not None:
            fail("--roles/--no-roles apply to the local mode only, not with --server")
        return await _act_remote(server, token, execution_id, action, wait, output, **kw)
    async with session(roles) as rt:
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
            return report(await follow(rt, target, None, None), output)
        state = await follow(rt, target, start, None)
        return _exit(action, report(state, output), None if state is None else state.state)


def _exit(action: str, code: int, state: str | None) -> int:
    """A kill that worked (the execution ended KILLED) exits 0; otherwise the end's own code."""
    return 0 if action == "kill" and state == "KILLED" else code


# ---- the four actions: EXECUTION_ID, the action's own options, then the shared ones ------------------
# Typer reads a command's options from its function's signature; the shared ones are appended to each
# action's signature here rather than written out in four of them.

_SHARED = [
    inspect.Parameter("roles", inspect.Parameter.KEYWORD_ONLY, default=ROLES, annotation=bool | None),
    inspect.Parameter("wait", inspect.Parameter.KEYWORD_ONLY, default=WAIT, annotation=bool),
    inspect.Parameter("output", inspect.Parameter.KEYWORD_ONLY, default=OUTPUT, annotation=str),
    inspect.Parameter("server", inspect.Parameter.KEYWORD_ONLY, default=SERVER_URL, annotation=str | None),
    inspect.Parameter("token", inspect.Parameter.KEYWORD_ONLY, default=BEARER, annotation=str | None),
]


def _action(name: str, options: Callable[..., dict[str, Any]]) -> Callable[..., None]:
    """The command ``engine NAME EXECUTION_ID``: ``options`` declares the action's own options (typer
    reads its signature and its docstring is the help) and turns them into the action's keywords."""
    own = inspect.signature(options, eval_str=True).parameters.values()
    target = inspect.Parameter("execution_id", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=str)
    keyword = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]

    def act(execution_id: str, **given: Any) -> None:
        shared = {p.name: given.pop(p.name) for p in _SHARED}
        command(_act(execution_id, name, **shared, **options(**given)))

    act.__signature__ = inspect.Signature([target, *keyword, *_SHARED])  # type: ignore[attr-defined]
    act.__doc__ = options.__doc__
    act.__name__ = name
    return act


def _kill() -> dict[str, Any]:
    """Kill a running execution: its running processes stop, its subflows are killed too."""
    return {}


def _resume(
    input: Annotated[
        list[str] | None, typer.Option("--input", "-i", help="An onResume input, key=value.")
    ] = None,
) -> dict[str, Any]:
    """Resume a PAUSED execution (with the Pause task's onResume inputs)."""
    from engine.core.inputs import parse_cli_inputs

    try:
        return {"inputs": parse_cli_inputs(input or [])}
    except EngineError as exc:
        fail(str(exc))


def _restart() -> dict[str, Any]:
    """Run the failed taskruns of a finished execution again, as new attempts, in the same execution."""
    return {}


def _replay(
    from_: Annotated[
        str | None,
        typer.Option("--from", help="A taskrun id or task id to replay from (default: the start)."),
    ] = None,
    revision: Annotated[int | None, typer.Option(help="Run this flow revision instead.")] = None,
) -> dict[str, Any]:
    """Start a new execution that keeps what happened before --from and runs again from there."""
    return {"taskrun": from_, "revision": revision}


def logs(
    execution_id: str,
    follow_: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing until the execution ends.")
    ] = False,
    server: str | None = SERVER_URL,
    token: str | None = BEARER,
) -> None:
    """The log lines of an execution."""

    async def show() -> int:
        if server:
            color = sys.stderr.isatty()
            async with remote(server, token) as api:
                await api.execution(execution_id)  # not found: one clear line
                if follow_:
                    async for item in api.follow_logs(execution_id):
                        print_log_item(item, color)
                else:
                    for item in await api.logs(execution_id):
                        print_log_item(item, color)
            return 0
        async with session(roles=False) as rt:
            state = await rt.get_execution(execution_id)
            color = sys.stderr.isatty()
            for line in await rt.store.read_logs(execution_id):
                print_log(line, color)
            if follow_ and not state.is_terminal:
                await follow(rt, execution_id, None, None)
            return 0

    command(show())


executions_app = typer.Typer(no_args_is_help=True, help="Look at executions.")


@executions_app.command("get")
def executions_get(
    execution_id: str,
    output: str = OUTPUT,
    server: str | None = SERVER_URL,
    token: str | None = BEARER,
    max_: Annotated[
        int | None,
        typer.Option("--max", min=1, help="Cut each taskrun's outputs to N characters (default: whole)."),
    ] = None,
) -> None:
    """One execution: its state, taskruns and outputs (JSON in Kestra's API shape with --output json)."""
    check_output(output)

    async def get() -> int:
        if server:
            async with remote(server, token) as api:
                doc = await api.execution(execution_id)
        else:
            from engine.core.shape import execution_json

            async with session(roles=False) as rt:
                doc = execution_json(await rt.get_execution(execution_id))
        if output == "json":
            sys.stdout.write(json.dumps(doc) + "\n")
        else:
            _print_execution(doc, max_)
        return 0

    command(get())


def _print_execution(doc: dict[str, Any], max_chars: int | None = None) -> None:
    """The taskruns as a table, then each one's outputs whole (on its own line: a table cell would
    cut or fold it), ``max_chars`` cutting them when asked."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{doc['namespace']}.{doc['flowId']} {doc['id']}: {doc['state']['current']}")
    for col in ("task", "value", "state", "attempts"):
        table.add_column(col)
    lines = []
    for tr in doc.get("taskRunList") or []:
        attempts = str(len(tr.get("attempts") or []))
        table.add_row(tr["taskId"], tr.get("value") or "", tr["state"]["current"], attempts)
        if tr.get("outputs"):
            name = tr["taskId"] + (f"[{tr['value']}]" if tr.get("value") is not None else "")
            lines.append(f"outputs of {name}: {_cut(json.dumps(tr['outputs']), max_chars)}")
    Console(stderr=False).print(table)
    if doc.get("outputs"):
        lines.append(f"flow outputs: {_cut(json.dumps(doc['outputs']), max_chars)}")
    for line in lines:
        sys.stdout.write(line + "\n")


def _cut(text: str, max_chars: int | None) -> str:
    if max_chars is None or len(text) <= max_chars:
        return text
    return text[:max_chars] + f"… ({len(text)} characters; a larger --max shows more)"


@executions_app.command("list")
def executions_list(
    namespace: Annotated[str | None, typer.Option(help="Only this namespace (prefix).")] = None,
    flow: Annotated[str | None, typer.Option(help="Only this flow id.")] = None,
    limit: Annotated[int, typer.Option(help="Show the N most recent.", min=1, max=1000)] = 20,
    output: str = OUTPUT,
    server: str | None = SERVER_URL,
    token: str | None = BEARER,
) -> None:
    """The most recent executions, newest first."""
    check_output(output)

    async def list_() -> int:
        if server:
            async with remote(server, token) as api:
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
        from eventstore.cli_ops import execution_ids

        async with session(roles=False) as rt:
            ids = await execution_ids(rt.store)
            states = [s for s in [await rt.load_execution(i) for i in ids] if s is not None]
            states = [
                s
                for s in states
                if (namespace is None or s.namespace.startswith(namespace))
                and (flow is None or s.flow_id == flow)
            ]
            states.sort(key=lambda s: s.start_date, reverse=True)
            return [execution_json(s) for s in states[:limit]]

    command(list_())


def register_commands(app: typer.Typer) -> None:
    """``kill``, ``resume``, ``restart``, ``replay`` and ``logs``."""
    for name, options in (("kill", _kill), ("resume", _resume), ("restart", _restart), ("replay", _replay)):
        app.command(name)(_action(name, options))
    app.command("logs")(logs)


def register_group(app: typer.Typer) -> None:
    """``executions get|list``."""
    app.add_typer(executions_app, name="executions")
