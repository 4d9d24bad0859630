"""What the embedded databases (DuckDB, SQLite) share: the working directory, ``outputFiles`` made before
the SQL is rendered, the rendering itself (``{{ workingDir }}``, ``{{ outputFiles.NAME }}``), and the
files uploaded after the query.

These tasks are registered with ``render=False``: the worker cannot render ``{{ workingDir }}`` or
``{{ outputFiles.out }}``, which exist only once the task has made them. So the task renders its
properties itself: every text property first, then ``sql`` and ``afterSQL`` with those two variables.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from engine.core.errors import TaskFailed
from plugins.api import RunContext
from plugins.files import inside, put_task_file

S = TypeVar("S", bound=msgspec.Struct)

_LATE = ("sql", "afterSQL")  # rendered with workingDir and outputFiles


async def render_props(props: S, ctx: RunContext) -> S:
    """``props`` with every property but ``sql``/``afterSQL`` rendered."""
    raw = msgspec.structs.asdict(props)
    early = await ctx.render({k: v for k, v in raw.items() if k not in _LATE and v is not None})
    try:
        return msgspec.convert({**raw, **early}, type(props), strict=False)
    except msgspec.ValidationError as exc:
        raise TaskFailed(f"invalid properties after rendering: {exc}", retryable=False) from None


def make_output_files(workdir: Path, names: list[str] | None) -> dict[str, Path]:
    """Kestra's ``createOutputFiles``: an empty file per name, its path given to the SQL."""
    made: dict[str, Path] = {}
    for name in names or ():
        target = inside(workdir, f"{name}_{uuid.uuid4().hex[:12]}", "outputFiles")
        target.touch()
        made[name] = target
    return made


async def render_sql(
    ctx: RunContext, template: str | None, workdir: Path, output_files: dict[str, Path]
) -> str | None:
    if template is None:
        return None
    added = {"workingDir": str(workdir), "outputFiles": {k: str(v) for k, v in output_files.items()}}
    saved = {k: ctx.variables[k] for k in added if k in ctx.variables}
    ctx.variables.update(added)
    try:
        return str(await ctx.render(template))
    finally:
        for key in added:
            ctx.variables.pop(key, None)
        ctx.variables.update(saved)


async def upload_output_files(ctx: RunContext, files: dict[str, Path]) -> dict[str, str]:
    return {name: await put_task_file(ctx, path) for name, path in files.items()}


def strip_prefix(url: str | None, prefixes: tuple[str, ...], what: str) -> str:
    """The database path of a JDBC URL (``jdbc:duckdb:/tmp/x.db`` → ``/tmp/x.db``)."""
    text = (url or prefixes[0]).strip()
    for prefix in prefixes:
        if text.startswith(prefix):
            return text[len(prefix) :].split("?", 1)[0]
    fix = f"write '{prefixes[0]}' or '{prefixes[0]}/path/file.db'"
    raise TaskFailed(f"url: {url!r} is not a {what} URL — {fix}", retryable=False)


def outputs_of(files: dict[str, str]) -> dict[str, Any]:
    return {"outputFiles": files} if files else {}
