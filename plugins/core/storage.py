"""storage.* tasks on the internal storage (``ctx.storage``, ``kestra://`` URIs), as in Kestra.

Size (→ ``size``), Delete (→ ``uri``, ``deleted``), Concat (→ ``uri``), Split (→ ``uris``),
Reverse (→ ``uri``), LocalFiles (deprecated; → ``uris``), PurgeCurrentExecutionFiles (→ ``uris``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import msgspec

from engine.core.errors import TaskFailed
from eventstore.storage import StorageError, execution_prefix, is_uri
from plugins.api import PluginSpec, RunContext, RunFn, TaskResult, runnable
from plugins.files import extension_of, inside, put_task_file, scratch_dir, temp_name, upload_outputs

P = "io.kestra.plugin.core.storage."
OLD = "io.kestra.core.tasks.storages."


def _uri(value: str, what: str) -> str:
    value = str(value).strip()
    if not is_uri(value):
        raise TaskFailed(
            f"{what}: expected an internal storage URI (kestra:///...), got {value!r}", retryable=False
        )
    return value


async def _local_copy(ctx: RunContext, uri: str, tmp: Path) -> Path:
    """Download ``uri`` into the scratch directory ``tmp`` (big files never sit in memory)."""
    return await ctx.storage.download(uri, tmp / temp_name(extension_of(uri)))


def _lines(handle: IO[str]) -> Iterator[str]:
    """Lines without terminators, like Java's ``BufferedReader.readLine`` (``\\n``, ``\\r``, ``\\r\\n``)."""
    for line in handle:
        yield line[:-1] if line.endswith("\n") else line


def _open_text(path: Path, mode: str = "r", charset: str = "utf-8") -> IO[str]:
    # newline=None reads \r and \r\n as \n; surrogateescape round-trips bytes that are not UTF-8.
    if "r" in mode:
        return path.open(mode, encoding=charset, errors="surrogateescape", newline=None)
    return path.open(mode, encoding=charset, errors="surrogateescape", newline="")


# ---- Size / Delete ------------------------------------------------------------------------------


class Size(msgspec.Struct, frozen=True):
    uri: str


async def run_size(props: Size, ctx: RunContext) -> TaskResult:
    return TaskResult(outputs={"size": await ctx.storage.size(_uri(props.uri, "uri"))})


class Delete(msgspec.Struct, frozen=True):
    uri: str
    errorOnMissing: bool = False


async def run_delete(props: Delete, ctx: RunContext) -> TaskResult:
    uri = _uri(props.uri, "uri")
    deleted = await ctx.storage.delete(uri)
    if props.errorOnMissing and not deleted:
        raise TaskFailed(f"Unable to find file '{uri}'", retryable=False)
    return TaskResult(outputs={"uri": uri, "deleted": deleted})


# ---- Concat -------------------------------------------------------------------------------------


class Concat(msgspec.Struct, frozen=True):
    files: list[str] | str
    separator: str | None = None
    extension: str = ".tmp"


def _json_text(text: str, kind: type, problem: str) -> Any:
    """A property given as JSON text (a rendered expression) decoded as ``kind``; else ``problem``."""
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if not isinstance(parsed, kind):
        raise TaskFailed(problem, retryable=False)
    return parsed


def _file_list(files: list[str] | str) -> list[str]:
    if isinstance(files, str):
        problem = f"files: expected a list of kestra:// URIs or a JSON array of them, got {files!r}"
        files = _json_text(files, list, problem)
    return [str(f) for f in files]


async def run_concat(props: Concat, ctx: RunContext) -> TaskResult:
    separator = props.separator.encode() if props.separator is not None else b""
    with scratch_dir(ctx) as tmp:
        target = tmp / temp_name(props.extension)
        with target.open("wb") as out:
            for item in _file_list(props.files):
                part = await _local_copy(ctx, _uri(item, "files"), tmp)
                with part.open("rb") as src:
                    while chunk := src.read(1 << 20):
                        out.write(chunk)
                part.unlink()
                out.write(separator)
        return TaskResult(outputs={"uri": await put_task_file(ctx, target)})


# ---- Split --------------------------------------------------------------------------------------

_BYTES = re.compile(r"^\s*(\d+)\s*(KB|MB|GB|TB)?\s*$", re.IGNORECASE)
_UNITS = {None: 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def readable_bytes(value: str | int) -> int:
    """Micronaut's readable sizes: ``1024``, ``200KB``, ``10MB``, ``1GB`` (powers of 1024)."""
    if isinstance(value, int):
        return value
    m = _BYTES.match(str(value))
    if m is None:
        raise TaskFailed(
            f"bytes: invalid size {value!r}; give a number of bytes or e.g. 200KB, 10MB", retryable=False
        )
    unit = m.group(2).upper() if m.group(2) else None
    return int(m.group(1)) * _UNITS[unit]


class Split(msgspec.Struct, frozen=True):
    # Field named "from" in the flow: msgspec renames it.
    from_: str = msgspec.field(name="from")
    bytes: str | int | None = None
    partitions: int | None = None
    rows: int | None = None
    separator: str = "\n"


def _split(
    source: IO[str], workdir: Path, ext: str, separator: str, cut: Callable[[int, int], bool]
) -> list[Path]:
    files: list[Path] = []
    out: IO[str] | None = None
    size = rows = 0
    try:
        for row in _lines(source):
            if out is None or cut(size, rows):
                if out is not None:
                    out.close()
                size = rows = 0
                files.append(workdir / temp_name(ext))
                out = _open_text(files[-1], "w")
            text = row + separator
            out.write(text)
            size += len(text.encode("utf-8", "surrogateescape"))
            rows += 1
    finally:
        if out is not None:
            out.close()
    return files


def _partition(source: IO[str], workdir: Path, ext: str, separator: str, count: int) -> list[Path]:
    files = [workdir / temp_name(ext) for _ in range(count)]
    outs = [_open_text(f, "w") for f in files]
    try:
        for index, row in enumerate(_lines(source)):
            outs[index % count].write(row + separator)
    finally:
        for out in outs:
            out.close()
    return [f for f in files if f.stat().st_size > 0]


async def run_split(props: Split, ctx: RunContext) -> TaskResult:
    uri = _uri(props.from_, "from")
    ext = extension_of(uri)
    with scratch_dir(ctx) as tmp:
        local = await _local_copy(ctx, uri, tmp)
        parts_dir = tmp / "parts"
        parts_dir.mkdir()
        with _open_text(local) as source:
            if props.bytes is not None:
                limit = readable_bytes(props.bytes)
                parts = _split(source, parts_dir, ext, props.separator, lambda size, _rows: size >= limit)
            elif props.partitions is not None:
                if props.partitions < 1:
                    raise TaskFailed("partitions: must be at least 1", retryable=False)
                parts = _partition(source, parts_dir, ext, props.separator, props.partitions)
            elif props.rows is not None:
                if props.rows < 1:
                    raise TaskFailed("rows: must be at least 1", retryable=False)
                max_rows = props.rows
                parts = _split(source, parts_dir, ext, props.separator, lambda _size, rows: rows >= max_rows)
            else:
                raise TaskFailed(
                    "Invalid configuration with no size, count, nor rows: set one of `bytes`, "
                    "`partitions` or `rows`",
                    retryable=False,
                )
        return TaskResult(outputs={"uris": [await put_task_file(ctx, part) for part in parts]})


# ---- Reverse ------------------------------------------------------------------------------------


class Reverse(msgspec.Struct, frozen=True):
    from_: str = msgspec.field(name="from")
    separator: str = "\n"
    charset: str = "UTF-8"


async def run_reverse(props: Reverse, ctx: RunContext) -> TaskResult:
    uri = _uri(props.from_, "from")
    try:
        "".encode(props.charset)
    except LookupError:
        raise TaskFailed(f"charset: unknown charset {props.charset!r}", retryable=False) from None
    with scratch_dir(ctx) as tmp:
        local = await _local_copy(ctx, uri, tmp)
        with _open_text(local, charset=props.charset) as source:
            lines = list(_lines(source))
        target = tmp / temp_name(extension_of(uri))
        with _open_text(target, "w", props.charset) as out:
            for line in reversed(lines):
                out.write(line + props.separator)
        return TaskResult(outputs={"uri": await put_task_file(ctx, target)})


# ---- LocalFiles (deprecated) ----------------------------------------------------------------------


class LocalFiles(msgspec.Struct, frozen=True):
    inputs: dict[str, Any] | str | None = None
    outputs: list[str] | None = None


async def run_local_files(props: LocalFiles, ctx: RunContext) -> TaskResult:
    ctx.log(
        "WARN",
        "io.kestra.plugin.core.storage.LocalFiles is deprecated: use `inputFiles`/`outputFiles` "
        "of script tasks or the WorkingDirectory task",
    )
    files: Any = props.inputs
    if isinstance(files, str):
        files = _json_text(files, dict, "inputs: expected a map of file name to content or a JSON object")
    workdir = ctx.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    for name, content in (files or {}).items():
        target = inside(workdir, str(name), "inputs")
        target.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            target.touch()
        elif isinstance(content, str) and is_uri(content.strip()):
            await ctx.storage.download(content.strip(), target)
        else:
            target.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return TaskResult(outputs={"uris": await upload_outputs(ctx, workdir, props.outputs)})


# ---- PurgeCurrentExecutionFiles -----------------------------------------------------------------


class PurgeCurrentExecutionFiles(msgspec.Struct, frozen=True):
    pass


async def run_purge(props: PurgeCurrentExecutionFiles, ctx: RunContext) -> TaskResult:
    prefix = execution_prefix(ctx.namespace, ctx.flow_id, ctx.execution_id)
    try:
        uris = await ctx.storage.delete_prefix(prefix)
    except StorageError as exc:
        raise TaskFailed(str(exc)) from None
    return TaskResult(outputs={"uris": uris})


def _task(name: str, props: type[msgspec.Struct], run: RunFn, description: str, *aliases: str) -> PluginSpec:
    """A storage task: ``P + name``, also known by its legacy name (``OLD + name``) unless ``aliases``."""
    return runnable(P + name, props, run, description, aliases=aliases or (OLD + name,))


SPECS = [
    _task("Size", Size, run_size, "Size in bytes of the internal-storage file `uri` → output `size`."),
    _task(
        "Delete",
        Delete,
        run_delete,
        "Delete the internal-storage file `uri` → outputs `uri`, `deleted` "
        "(`errorOnMissing` fails when there was none).",
    ),
    _task(
        "Concat",
        Concat,
        run_concat,
        "Concatenate `files` (kestra:// URIs; optional `separator` after each) → `uri`.",
    ),
    _task("Split", Split, run_split, "Split the file `from` by `bytes`, `partitions` or `rows` → `uris`."),
    _task("Reverse", Reverse, run_reverse, "The lines of the file `from` in reverse order → `uri`."),
    _task(
        "LocalFiles",
        LocalFiles,
        run_local_files,
        "Deprecated: write `inputs` (name → content or kestra:// URI) to the working "
        "directory, upload the files matching `outputs` globs → `uris`.",
    ),
    _task(
        "PurgeCurrentExecutionFiles",
        PurgeCurrentExecutionFiles,
        run_purge,
        "Delete every internal-storage file of the current execution → `uris`.",
        OLD + "PurgeExecution",
        P + "PurgeExecution",
    ),
]
