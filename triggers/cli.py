"""``engine backfill`` and ``engine triggers list|enable|disable``.

``register(app)`` adds them to the main ``engine`` command; ``app`` is the ``triggers`` group.
Bad input (an unknown flow or trigger, an end before the start, a cron that does not parse, an
invalid --input) prints one line and exits 2 before anything is stored.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated, Any

import typer

app = typer.Typer(no_args_is_help=True, help="Inspect and toggle flow triggers.")


def _fail(message: str, code: int = 2) -> None:
    sys.stderr.write(message.rstrip().splitlines()[0] + "\n")
    raise typer.Exit(code)


def _pairs(values: list[str] | None, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in values or []:
        k, sep, v = pair.partition("=")
        if not sep or not k.strip():
            _fail(f"{what} {pair!r}: expected key=value")
        out[k.strip()] = v
    return out


def _run(coro: Any) -> Any:
    from engine.errors import EngineError, InputError

    try:
        return asyncio.run(coro)
    except InputError as exc:
        _fail(f"invalid input: {' '.join(str(exc).split())}")
    except EngineError as exc:
        from engine.errors import ServerError

        _fail(" ".join(str(exc).split()), 1 if isinstance(exc, ServerError) else 2)
    except KeyboardInterrupt:
        _fail("interrupted: executions already created are kept; run the same backfill again to finish", 130)


def backfill_command(
    namespace: Annotated[str, typer.Argument(help="The flow's namespace.")],
    flow_id: Annotated[str, typer.Argument(help="The flow id.")],
    start: Annotated[str, typer.Option("--start", help="First moment, ISO (2024-01-01T00:00:00Z).")],
    end: Annotated[str, typer.Option("--end", help="Last moment, ISO; slots up to and including it.")],
    trigger: Annotated[
        str | None,
        typer.Option("--trigger", help="The Schedule trigger id (needed if the flow has several)."),
    ] = None,
    input: Annotated[
        list[str] | None, typer.Option("--input", "-i", help="An input, key=value (repeat).")
    ] = None,
    label: Annotated[
        list[str] | None, typer.Option("--label", "--labels", "-l", help="An execution label, key=value.")
    ] = None,
) -> None:
    """Create the execution of every slot of a Schedule trigger between --start and --end (idempotent)."""
    from triggers.backfill import BackfillError, parse_moment

    inputs = _pairs(input, "--input")
    labels = _pairs(label, "--label")
    try:
        first, last = parse_moment(start, None, "--start"), parse_moment(end, None, "--end")
    except BackfillError as exc:
        _fail(str(exc))
    if (first.tzinfo is None) == (last.tzinfo is None) and last < first:
        _fail(f"--end {end} is before --start {start}: nothing to backfill")
    result = _run(_backfill(namespace, flow_id, trigger, start, end, inputs, labels))
    skipped = f", {len(result.skipped)} refused by the trigger's conditions" if result.skipped else ""
    sys.stderr.write(
        f"backfill {namespace}.{flow_id}: {result.slots} slot(s), "
        f"{len(result.created)} execution(s){skipped}\n"
    )
    for eid in result.created:
        sys.stdout.write(eid + "\n")


async def _backfill(
    namespace: str,
    flow_id: str,
    trigger: str | None,
    start: str,
    end: str,
    inputs: dict[str, str],
    labels: dict[str, str],
) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from engine.runtime import Runtime
    from triggers.backfill import backfill

    console = Console(stderr=True)
    bar: Progress | None = None
    task: Any = None

    def progress(done: int, total: int) -> None:
        nonlocal bar, task
        if bar is None:  # only once the window and inputs are known valid: errors stay one line
            bar = Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=not console.is_terminal,
            )
            bar.start()
            task = bar.add_task(f"backfill {namespace}.{flow_id}", total=total)
        bar.update(task, completed=done, total=total)

    async with Runtime() as rt:
        try:
            return await backfill(
                rt, namespace, flow_id, trigger, start, end, inputs, labels, progress=progress
            )
        finally:
            if bar is not None:
                bar.stop()


@app.command("list")
def list_command(
    namespace: Annotated[str | None, typer.Option(help="Only flows of this namespace (and below).")] = None,
) -> None:
    """Every trigger of the deployed flows, with its schedule state."""
    for line in _run(_list(namespace)):
        sys.stdout.write(line + "\n")


async def _list(namespace: str | None) -> list[str]:
    from datetime import UTC, datetime

    from engine.runtime import Runtime
    from triggers.kv import TriggerKV
    from triggers.schedule import SCHEDULE_TYPES, ScheduleError, iso, schedule_spec
    from triggers.service import _parse_flow, schedule_key

    lines: list[str] = []
    async with Runtime() as rt:
        kv = TriggerKV(rt.store)
        await kv.setup()
        now = datetime.now(UTC)
        for rev in await rt.store.list_flows():
            if namespace and not (rev.namespace == namespace or rev.namespace.startswith(namespace + ".")):
                continue
            try:
                flow = _parse_flow(rev.source, rev.revision)
            except Exception:
                continue
            for t in flow.triggers:
                kind = t.type.rsplit(".", 1)[-1]
                status = "disabled" if (t.disabled or flow.disabled) else "enabled"
                detail = ""
                if t.type in SCHEDULE_TYPES:
                    state, _ = await kv.get(schedule_key(flow.namespace, flow.id, t.id))
                    state = state or {}
                    if state.get("disabled"):
                        status = f"disabled ({state.get('disabled_reason') or 'by command'})"
                    try:
                        spec = schedule_spec(flow, t)
                        detail = f"cron={spec.cron!r} next={iso(spec.next_after(now), spec.tz)}"
                    except ScheduleError as exc:
                        detail = f"invalid: {exc}"
                    if state.get("last_slot"):
                        detail += f" last={state['last_slot']}"
                lines.append(f"{flow.namespace}\t{flow.id}\t{t.id}\t{kind}\t{status}\t{detail}".rstrip())
    if not lines:
        sys.stderr.write("no triggers in the deployed flows\n")
    return lines


def _toggle(namespace: str, flow_id: str, trigger_id: str, disabled: bool) -> None:
    async def go() -> None:
        from engine.runtime import Runtime
        from triggers.backfill import BackfillError
        from triggers.kv import TriggerKV
        from triggers.schedule import SCHEDULE_TYPES
        from triggers.service import set_disabled

        async with Runtime() as rt:
            flow = await rt.flows.get(namespace, flow_id)
            if not any(t.id == trigger_id and t.type in SCHEDULE_TYPES for t in flow.triggers):
                raise BackfillError(f"flow {flow.key} has no Schedule trigger '{trigger_id}'")
            kv = TriggerKV(rt.store)
            await kv.setup()
            await set_disabled(kv, namespace, flow_id, trigger_id, disabled)

    _run(go())
    sys.stderr.write(f"trigger {namespace}.{flow_id}.{trigger_id} {'disabled' if disabled else 'enabled'}\n")


@app.command("disable")
def disable_command(namespace: str, flow_id: str, trigger_id: str) -> None:
    """Stop a Schedule trigger (its position is kept)."""
    _toggle(namespace, flow_id, trigger_id, True)


@app.command("enable")
def enable_command(namespace: str, flow_id: str, trigger_id: str) -> None:
    """Re-enable a Schedule trigger; missed slots follow its recoverMissedSchedules."""
    _toggle(namespace, flow_id, trigger_id, False)


def register(main: typer.Typer) -> None:
    """Add ``backfill`` and the ``triggers`` group to the ``engine`` command."""
    main.command("backfill")(backfill_command)
    main.add_typer(app, name="triggers")
