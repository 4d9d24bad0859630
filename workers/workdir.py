"""The file work of a WorkingDirectory's `outputFiles` and `cache` (Kestra's WorkingDirectory task).

The tasks of one WorkingDirectory share a directory on the worker. When it is made, the flow's cache
archive for that WorkingDirectory (``cache.patterns`` files zipped by an earlier execution) is
unpacked into it unless older than ``cache.ttl``; after each of its tasks, the files matching
``outputFiles`` are stored (the executor makes the latest set the WorkingDirectory taskrun's
``outputFiles`` output) and the files matching ``cache.patterns`` are archived again. Doing it after
each task, not once at the end, keeps the worker stateless between tasks: the last task's report is
the final one.
"""

from __future__ import annotations

import tempfile
import zipfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from engine.clock import utcnow
from engine.core.dates import parse as parse_date
from engine.core.durations import parse_duration
from engine.core.errors import TaskFailed
from engine.core.work import WorkItem
from eventstore.storage import namespace_path, slugify
from plugins.files import find_files, inside, upload_outputs
from workers.context import TaskRunContext

MAX_CACHE_BYTES = 1 << 30  # what one cache archive may unpack to: a bad archive cannot fill the disk
MAX_CACHE_FILES = 100_000


def cache_path(item: WorkItem) -> str:
    """Kestra keys the cache by namespace, flow and task (and the loop value of the WorkingDirectory)."""
    key = "/".join(slugify(part) for part in str(item.workdir_key or "").split("/") if part)
    return f"/{namespace_path(item.namespace)}/{slugify(item.flow_id)}/_cache/{key}/cache.zip"


async def _cache_props(ctx: TaskRunContext, item: WorkItem) -> tuple[list[str], float | None]:
    cache = await ctx.render(item.workdir_cache)
    if not isinstance(cache, dict):
        raise TaskFailed(
            f"WorkingDirectory cache: expected a map with `patterns`, got {cache!r}", retryable=False
        )
    patterns = cache.get("patterns") or []
    if isinstance(patterns, str):
        patterns = [patterns]
    ttl = cache.get("ttl")
    try:
        seconds = parse_duration(ttl) if ttl is not None else None
    except ValueError as exc:
        raise TaskFailed(f"WorkingDirectory cache.ttl: {exc}", retryable=False) from None
    return [str(p) for p in patterns], seconds


async def restore_cache(ctx: TaskRunContext, item: WorkItem, root: Path) -> None:
    """Unpack the cache archive into the new shared directory; an expired one is deleted instead."""
    if not item.workdir_cache:
        return
    _patterns, ttl = await _cache_props(ctx, item)
    uri = cache_path(item)
    if not await ctx.storage.exists(uri):
        return
    with tempfile.TemporaryDirectory(prefix="engine-cache-") as tmp:
        archive = await ctx.storage.download(uri, Path(tmp) / "cache.zip")
        with zipfile.ZipFile(archive) as zf:
            created = zf.comment.decode(errors="replace")
            if ttl is not None and _expired(created, ttl):
                await ctx.storage.delete(uri)
                ctx.log("INFO", f"WorkingDirectory cache from {created} is older than its ttl: deleted")
                return
            infos = [i for i in zf.infolist() if not i.is_dir()]
            if len(infos) > MAX_CACHE_FILES or sum(i.file_size for i in infos) > MAX_CACHE_BYTES:
                raise TaskFailed("WorkingDirectory cache archive is too large to restore", retryable=False)
            for info in infos:
                target = inside(root, info.filename, "cache")
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, target.open("wb") as dst:
                    dst.write(src.read(MAX_CACHE_BYTES))
    ctx.log("INFO", f"WorkingDirectory cache restored: {len(infos)} file(s)")


def _expired(created: str, ttl: float) -> bool:
    try:
        made: datetime = parse_date(created)
    except ValueError:
        return True  # an archive without its date cannot be shown to be fresh
    return made + timedelta(seconds=ttl) < parse_date(utcnow())


async def finish(ctx: TaskRunContext, item: WorkItem, root: Path) -> dict[str, str] | None:
    """After a task: store `outputFiles` matches (returned, name -> URI) and archive the cache."""
    outputs: dict[str, str] | None = None
    if item.workdir_outputs:
        patterns: Any = await ctx.render(item.workdir_outputs)
        if isinstance(patterns, str):
            patterns = [patterns]
        outputs = await upload_outputs(ctx, root, [str(p) for p in patterns or []]) if root.exists() else {}
    if item.workdir_cache and root.exists():
        cache_patterns, _ttl = await _cache_props(ctx, item)
        found = find_files(root, cache_patterns)
        if found:
            with tempfile.TemporaryDirectory(prefix="engine-cache-") as tmp:
                archive = Path(tmp) / "cache.zip"
                with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
                    zf.comment = utcnow().encode()  # when it was made: what `ttl` counts from
                    for rel, path in found.items():
                        zf.write(path, rel)
                await ctx.storage.put(cache_path(item), archive)
    return outputs
