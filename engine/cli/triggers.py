"""``engine backfill`` and ``engine triggers list|enable|disable``.

``register(app)`` adds them to the main ``engine`` command; ``app`` is the ``triggers`` group.
Bad input (an unknown flow or trigger, an end before the start, a cron that does not parse, an
invalid --input) prints one line and exits 2 before anything is stored.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from engine.cli.common import fail, session

app = typer.Typer(no_args_is_help=True, help="Inspect and toggle flow triggers.")


def _fail(message: str, code: int = 2) -> NoReturn:
    fail(message.rstrip().splitlines()[0], code)


def _pairs(values: list[str] | None, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in values or []:
        k, sep, v = pair.partition("=")
        if not sep or not k.strip():
            _fail(f"{what} {pair!r}: expected key=value")
        out[k.strip()] = v
    return out


def _run(coro: Any) -> Any:
    from engine.core.errors import EngineError, InputError

    try:
        return asyncio.run(coro)
    except InputError as exc:
        _fail(f"invalid input: {' '.join(str(exc).split())}")
    except EngineError as exc:
        from engine.core.errors import ServerError

        _fail(" ".join(str(exc).split()), 1 if isinstance(exc, ServerError) else 2)
    except KeyboardInterrupt:
        _fail("interrupted", 130)


class _DefaultStart(TyperGroup):
    """``engine backfill NS FLOW ...`` is ``engine backfill start NS FLOW ...``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["start", *args]
        return super().parse_args(ctx, args)


backfill_app = typer.Typer(
    cls=_DefaultStart,
    no_args_is_help=True,
    help="Backfill a Schedule trigger: start (the default), status, pause, resume, cancel.",
)

_TRIGGER = typer.Option("--trigger", help="The Schedule trigger id (needed if the flow has several).")
_ROLES = typer.Option(
    "--roles/--no-roles",
    help="Run an executor and a worker in this process (default: only on the embedded server).",
)


@backfill_app.command("start")
def backfill_command(
    namespace: Annotated[str, typer.Argument(help="The flow's namespace.")],
    flow_id: Annotated[str, typer.Argument(help="The flow id.")],
    start: Annotated[str, typer.Option("--start", help="First moment, ISO (2024-01-01T00:00:00Z).")],
    end: Annotated[str, typer.Option("--end", help="Last moment, ISO; slots up to and including it.")],
    trigger: Annotated[str | None, _TRIGGER] = None,
    input: Annotated[
        list[str] | None, typer.Option("--input", "-i", help="An input, key=value (repeat).")
    ] = None,
    label: Annotated[
        list[str] | None, typer.Option("--label", "--labels", "-l", help="An execution label, key=value.")
    ] = None,
    max_inflight: Annotated[
        int | None,
        typer.Option(
            "--max-inflight",
            help="Executions of the backfill running at once (default: the flow's concurrency.limit or 10).",
        ),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Follow it to the end (default) or return once recorded.")
    ] = True,
    roles: Annotated[bool | None, _ROLES] = None,
) -> None:
    """Backfill every slot of a Schedule trigger between --start and --end (idempotent, durable).

    The backfill is recorded in the store and advanced as earlier executions end (never more than
    --max-inflight at once). Following it, the command advances it too and shows its progress;
    Ctrl-C leaves it RUNNING (a scheduler carries it on; the same command follows it again).
    Exit: 0 done, 1 cancelled, 3 paused, 2 bad input, 130 interrupted.
    """
    from triggers.backfill import BackfillError, parse_moment

    inputs = _pairs(input, "--input")
    labels = _pairs(label, "--label")
    try:
        first, last = parse_moment(start, None, "--start"), parse_moment(end, None, "--end")
    except BackfillError as exc:
        _fail(str(exc))
    if (first.tzinfo is None) == (last.tzinfo is None) and last < first:
        _fail(f"--end {end} is before --start {start}: nothing to backfill")
    if max_inflight is not None and max_inflight < 1:
        _fail(f"--max-inflight must be at least 1, got {max_inflight}")
    seen: dict[str, Any] = {}
    try:
        status, ids = _run(
            _backfill(
                namespace, flow_id, trigger, start, end, inputs, labels, max_inflight, wait, roles, seen
            )
        )
    except typer.Exit as exc:
        if exc.exit_code == 130 and seen.get("status") is not None:
            last_seen = seen["status"]
            sys.stderr.write(
                f"the backfill stays {last_seen.status} in the store ({last_seen.handled}/{last_seen.total} "
                f"slots): a scheduler (engine server local|scheduler) carries it on; run the same command to "
                f"follow it again; engine backfill pause|cancel {namespace} {flow_id} stops it\n"
            )
        raise
    sys.stderr.write(status.line() + "\n")
    for eid in ids:
        sys.stdout.write(eid + "\n")
    if status.status == "CANCELLED":
        raise typer.Exit(1)
    if status.status == "PAUSED":
        sys.stderr.write(f"paused: engine backfill resume {namespace} {flow_id} carries it on\n")
        raise typer.Exit(3)


async def _backfill(
    namespace: str,
    flow_id: str,
    trigger: str | None,
    start: str,
    end: str,
    inputs: dict[str, str],
    labels: dict[str, str],
    max_inflight: int | None,
    wait: bool,
    roles: bool | None,
    seen: dict[str, Any],
) -> tuple[Any, list[str]]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from triggers.backfill import backfill_execution_ids, follow_backfill, start_backfill

    console = Console(stderr=True)
    bar: Progress | None = None
    task: Any = None

    def progress(status: Any) -> None:
        nonlocal bar, task
        seen["status"] = status
        if bar is None:  # only once the window and inputs are known valid: errors stay one line
            bar = Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[running]} running"),
                TimeElapsedColumn(),
                console=console,
                transient=not console.is_terminal,
            )
            bar.start()
            task = bar.add_task(f"backfill {namespace}.{flow_id}", total=status.total, running=0)
        bar.update(task, completed=status.handled, total=status.total, running=status.running)

    async with session(roles if wait else False, sigterm=False) as rt:
        status = await start_backfill(
            rt, namespace, flow_id, trigger, start, end, inputs, labels, max_inflight
        )
        seen["status"] = status
        if not wait:
            return status, []
        try:
            progress(status)
            status = await follow_backfill(rt, status.namespace, status.flow_id, status.trigger_id, progress)
        finally:
            if bar is not None:
                bar.stop()
        flow = await rt.flows.get(status.namespace, status.flow_id)
        return status, backfill_execution_ids(flow, status)


def _control(action: str, namespace: str, flow_id: str, trigger: str | None) -> None:
    async def go() -> Any:
        from engine.runtime import Runtime
        from triggers import backfill as B

        fn = {
            "pause": B.pause_backfill,
            "resume": B.resume_backfill,
            "cancel": B.cancel_backfill,
            "status": B.backfill_status,
        }[action]
        async with Runtime() as rt:
            return await fn(rt.store, namespace, flow_id, trigger)

    status = _run(go())
    sys.stderr.write(status.line() + "\n")


@backfill_app.command("pause")
def backfill_pause(namespace: str, flow_id: str, trigger: Annotated[str | None, _TRIGGER] = None) -> None:
    """Create no new slot until resumed (running executions go on)."""
    _control("pause", namespace, flow_id, trigger)


@backfill_app.command("resume")
def backfill_resume(namespace: str, flow_id: str, trigger: Annotated[str | None, _TRIGGER] = None) -> None:
    """Carry a paused backfill on (a scheduler advances it; `engine backfill NS FLOW ...` follows it)."""
    _control("resume", namespace, flow_id, trigger)


@backfill_app.command("cancel")
def backfill_cancel(namespace: str, flow_id: str, trigger: Annotated[str | None, _TRIGGER] = None) -> None:
    """Create no new slot, ever (running executions go on: `engine kill` stops them)."""
    _control("cancel", namespace, flow_id, trigger)


@backfill_app.command("status")
def backfill_status_command(
    namespace: Annotated[str | None, typer.Argument(help="Only this namespace (and below).")] = None,
    flow_id: Annotated[str | None, typer.Argument(help="Only this flow.")] = None,
    trigger: Annotated[str | None, _TRIGGER] = None,
    output: Annotated[str, typer.Option(help="json: one JSON object per backfill.")] = "pretty",
) -> None:
    """Progress of the backfills (all, a namespace's, or one flow's)."""
    import json

    async def go() -> list[Any]:
        from engine.runtime import Runtime
        from triggers import backfill as B

        async with Runtime() as rt:
            if namespace and flow_id:
                return [await B.backfill_status(rt.store, namespace, flow_id, trigger)]
            return await B.list_backfills(rt.store, namespace)

    if output not in ("json", "pretty"):
        _fail(f"--output: expected json or pretty, got {output!r}")
    found = _run(go())
    if not found:
        sys.stderr.write("no backfills\n")
    for status in found:
        sys.stdout.write((json.dumps(status.to_dict()) if output == "json" else status.line()) + "\n")


@app.command("list")
def list_command(
    namespace: Annotated[str | None, typer.Option(help="Only flows of this namespace (and below).")] = None,
) -> None:
    """Every trigger of the deployed flows, with its schedule state."""
    for line in _run(_list(namespace)):
        sys.stdout.write(line + "\n")


async def _list(namespace: str | None) -> list[str]:
    from datetime import UTC, datetime

    from engine.loader.loader import load_flow_revision
    from engine.runtime import Runtime
    from eventstore.triggerstate import TriggerKV, schedule_key
    from triggers.polling import poll_key, polling_types
    from triggers.realtime import realtime_types
    from triggers.schedule import SCHEDULE_TYPES, ScheduleError, iso, schedule_spec

    lines: list[str] = []
    async with Runtime() as rt:
        kv = TriggerKV(rt.store)
        await kv.setup()
        now = datetime.now(UTC)
        for rev in await rt.store.list_flows():
            if namespace and not (rev.namespace == namespace or rev.namespace.startswith(namespace + ".")):
                continue
            try:
                flow = load_flow_revision(rev.source, rev.revision)
            except Exception:
                continue
            for t in flow.triggers:
                kind = t.type.rsplit(".", 1)[-1]
                status = "disabled" if (t.disabled or flow.disabled) else "enabled"
                detail = ""
                state, _ = await kv.get(schedule_key(flow.namespace, flow.id, t.id))
                state = state or {}
                if state.get("disabled"):
                    status = f"disabled ({state.get('disabled_reason') or 'by command'})"
                if t.type in SCHEDULE_TYPES:
                    try:
                        spec = schedule_spec(flow, t)
                        detail = f"cron={spec.cron!r} next={iso(spec.next_after(now), spec.tz)}"
                    except ScheduleError as exc:
                        detail = f"invalid: {exc}"
                    if state.get("last_slot"):
                        detail += f" last={state['last_slot']}"
                elif t.type in polling_types():
                    detail = f"interval={t.props.get('interval') or 'default'}"
                    polled, _ = await kv.get(poll_key(flow.namespace, flow.id, t.id))
                    if polled and polled.get("last_poll"):
                        detail += f" last_poll={polled['last_poll']}"
                elif t.type in realtime_types():
                    detail = "realtime"
                lines.append(f"{flow.namespace}\t{flow.id}\t{t.id}\t{kind}\t{status}\t{detail}".rstrip())
    if not lines:
        sys.stderr.write("no triggers in the deployed flows\n")
    return lines


def _toggle(namespace: str, flow_id: str, trigger_id: str, disabled: bool) -> None:
    async def go() -> None:
        from engine.runtime import Runtime
        from eventstore.triggerstate import TriggerKV, set_disabled
        from triggers.backfill import BackfillError

        async with Runtime() as rt:
            flow = await rt.flows.get(namespace, flow_id)
            if not any(t.id == trigger_id for t in flow.triggers):
                known = ", ".join(t.id for t in flow.triggers) or "none"
                raise BackfillError(f"flow {flow.key} has no trigger '{trigger_id}' (its triggers: {known})")
            kv = TriggerKV(rt.store)
            await kv.setup()
            await set_disabled(kv, namespace, flow_id, trigger_id, disabled)

    _run(go())
    sys.stderr.write(f"trigger {namespace}.{flow_id}.{trigger_id} {'disabled' if disabled else 'enabled'}\n")


@app.command("disable")
def disable_command(namespace: str, flow_id: str, trigger_id: str) -> None:
    """Stop a trigger: a schedule keeps its position, a realtime listener stops, polling stops."""
    _toggle(namespace, flow_id, trigger_id, True)


@app.command("enable")
def enable_command(namespace: str, flow_id: str, trigger_id: str) -> None:
    """Re-enable a trigger; a schedule's missed slots follow its recoverMissedSchedules."""
    _toggle(namespace, flow_id, trigger_id, False)


def register(main: typer.Typer) -> None:
    """Add ``backfill`` and the ``triggers`` group to the ``engine`` command."""
    main.add_typer(backfill_app, name="backfill")
    main.add_typer(app, name="triggers")
