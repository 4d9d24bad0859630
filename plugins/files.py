"""File helpers shared by the storage tasks and the script tasks.

- ``find_files``: Kestra's ``WorkingDir.findAllFilesMatching`` (Java ``glob:`` patterns relative to a
  directory, where ``*`` stays inside one path part and ``**`` crosses them; ``regex:`` patterns too).
- ``put_task_file``: store a local file or bytes in the taskrun's internal storage → ``kestra://`` URI.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from engine.core.errors import TaskFailed
from eventstore.storage import task_uri, unique_name
from plugins.api import RunContext


def java_glob(pattern: str) -> re.Pattern[str]:
    """A Java ``glob:`` pattern (``sun.nio.fs.Globs``) as a Python regex over ``/`` paths."""
    out: list[str] = []
    i, n = 0, len(pattern)
    in_group = False
    while i < n:
        c = pattern[i]
        i += 1
        if c == "\\" and i < n:
            out.append(re.escape(pattern[i]))
            i += 1
        elif c == "*":
            if i < n and pattern[i] == "*":
                out.append(".*")
                i += 1
            else:
                out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 1 if i < n and pattern[i] in "!^" else i)
            if end < 0:
                out.append(re.escape(c))
                continue
            body = pattern[i:end]
            i = end + 1
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
        elif c == "{" and not in_group:
            out.append("(?:")
            in_group = True
        elif c == "}" and in_group:
            out.append(")")
            in_group = False
        elif c == "," and in_group:
            out.append("|")
        else:
            out.append(re.escape(c))
    return re.compile("".join(out), re.DOTALL)


def find_files(root: Path, patterns: Iterable[str] | None) -> dict[str, Path]:
    """``{relative posix name: path}`` of the files under ``root`` matching any pattern, sorted."""
    compiled: list[re.Pattern[str]] = []
    for pattern in patterns or ():
        if pattern.startswith("regex:"):
            compiled.append(re.compile(pattern[len("regex:") :]))
        else:
            text = pattern[len("glob:") :] if pattern.startswith("glob:") else pattern
            compiled.append(java_glob(text.replace("\\", "/").lstrip("/")))
    if not compiled:
        return {}
    base = root.resolve()
    found: dict[str, Path] = {}
    for path in sorted(base.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(base).as_posix()
        if any(p.fullmatch(rel) for p in compiled):
            found[rel] = path
    return found


def temp_name(extension: str | None = None) -> str:
    """A fresh file name like Java's ``createTempFile`` (random digits + extension, default ``.tmp``)."""
    ext = extension if extension else ".tmp"
    if not ext.startswith("."):
        ext = "." + ext
    return f"{uuid.uuid4().int % 10**19}{ext}"


def extension_of(uri: str, default: str = ".tmp") -> str:
    """The extension of the last part of a URI or path (``.csv``), or ``default``."""
    name = uri.rsplit("/", 1)[-1]
    return name[name.rindex(".") :] if "." in name else default


async def put_task_file(ctx: RunContext, source: Path | bytes | str, name: str | None = None) -> str:
    """Store ``source`` under the taskrun's storage prefix; a local Path keeps its name unless ``name``."""
    if name is None:
        name = source.name if isinstance(source, Path) else temp_name()
    uri = task_uri(ctx.namespace, ctx.flow_id, ctx.execution_id, ctx.task_id, ctx.taskrun_id, name)
    return await ctx.storage.put(uri, source)


async def upload_outputs(ctx: RunContext, root: Path, patterns: Iterable[str] | None) -> dict[str, str]:
    """Kestra's ``FilesService.outputFiles``: files matching ``patterns`` → ``{relative name: URI}``."""
    uris: dict[str, str] = {}
    for rel, path in find_files(root, patterns).items():
        uris[rel] = await put_task_file(ctx, path, unique_name(str(path), path.name))
    return uris


@contextmanager
def scratch_dir(ctx: RunContext) -> Iterator[Path]:
    """A private directory inside the working directory for a task's temporary files, removed after.

    (Kestra deletes a temporary file once stored; inside a WorkingDirectory, nothing is left for the
    next tasks' globs to pick up.)
    """
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=".engine-tmp-", dir=ctx.workdir))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def inside(root: Path, name: str, what: str = "inputFiles") -> Path:
    """``root / name``, refusing a name that escapes ``root``."""
    target = (root / name).resolve()
    base = root.resolve()
    if target != base and base not in target.parents:
        raise TaskFailed(f"{what}: {name!r} is outside the working directory", retryable=False)
    return target
