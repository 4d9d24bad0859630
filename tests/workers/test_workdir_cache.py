"""The worker's side of a WorkingDirectory `cache` and `outputFiles` (workers/workdir.py), on the
in-memory storage: what is archived, what is restored, what is refused."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest

from engine.core.errors import TaskFailed
from engine.core.model import Task
from engine.core.work import WorkItem
from eventstore.storage import MemoryStorage
from workers.workdir import cache_path, finish, restore_cache

pytestmark = pytest.mark.anyio


class Ctx:
    """What workers.workdir uses of a TaskRunContext."""

    def __init__(self) -> None:
        self.storage = MemoryStorage()
        self.logs: list[tuple[str, str]] = []
        self.namespace, self.flow_id, self.execution_id = "io.test", "f", "exec1"
        self.task_id, self.taskrun_id = "one", "tr1"

    async def render(self, value: Any) -> Any:
        return value

    def log(self, level: str, message: str) -> None:
        self.logs.append((level, message))


def item(cache: Any = None, outputs: Any = None) -> WorkItem:
    task = Task(id="one", type="io.kestra.plugin.core.log.Log", raw_type="io.kestra.plugin.core.log.Log")
    return WorkItem(
        "exec1", "tr1", 1, task, "io.test", "f", 1, {}, workdir="wdtr", workdir_outputs=outputs,
        workdir_cache=cache, workdir_key="wd/a b",
    )  # fmt: skip


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


async def test_archive_then_restore_only_the_patterns(tmp_path: Path) -> None:
    ctx, work = Ctx(), item({"patterns": ["deps/**"], "ttl": "PT1H"}, ["*.csv"])
    first = tmp_path / "first"
    write(first, {"deps/a/lib.txt": "lib", "out.csv": "1,2", "tmp.log": "x"})
    outputs = await finish(ctx, work, first)  # type: ignore[arg-type]
    assert outputs is not None and set(outputs) == {"out.csv"}
    assert await ctx.storage.get(outputs["out.csv"]) == b"1,2"
    assert cache_path(work) == "/io/test/f/_cache/wd/a-b/cache.zip"
    second = tmp_path / "second"
    second.mkdir()
    await restore_cache(ctx, work, second)  # type: ignore[arg-type]
    assert sorted(p.relative_to(second).as_posix() for p in second.rglob("*") if p.is_file()) == [
        "deps/a/lib.txt"
    ]
    assert (second / "deps/a/lib.txt").read_text() == "lib"


async def test_nothing_matched_stores_no_archive(tmp_path: Path) -> None:
    ctx, work = Ctx(), item({"patterns": ["*.bin"]})
    write(tmp_path, {"a.txt": "a"})
    assert await finish(ctx, work, tmp_path) is None  # type: ignore[arg-type]
    assert not await ctx.storage.exists(cache_path(work))


async def _store(ctx: Ctx, work: WorkItem, names: dict[str, str], comment: str) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.comment = comment.encode()
        for name, text in names.items():
            zf.writestr(name, text)
    await ctx.storage.put(cache_path(work), buf.getvalue())


async def test_an_expired_or_undated_archive_is_deleted_not_restored(tmp_path: Path) -> None:
    ctx, work = Ctx(), item({"patterns": ["*"], "ttl": "PT1H"})
    for comment in ("2020-01-01T00:00:00.000000Z", "not a date"):
        await _store(ctx, work, {"a.txt": "old"}, comment)
        await restore_cache(ctx, work, tmp_path)  # type: ignore[arg-type]
        assert not (tmp_path / "a.txt").exists()
        assert not await ctx.storage.exists(cache_path(work))
    # without a ttl the same old archive is restored
    forever = item({"patterns": ["*"]})
    await _store(ctx, forever, {"a.txt": "old"}, "2020-01-01T00:00:00.000000Z")
    await restore_cache(ctx, forever, tmp_path)  # type: ignore[arg-type]
    assert (tmp_path / "a.txt").read_text() == "old"


async def test_an_archive_cannot_write_outside_the_directory(tmp_path: Path) -> None:
    ctx, work = Ctx(), item({"patterns": ["*"]})
    root = tmp_path / "wd"
    root.mkdir()
    await _store(ctx, work, {"../escaped.txt": "x"}, "2026-12-03T00:00:00.000000Z")
    with pytest.raises(TaskFailed):
        await restore_cache(ctx, work, root)  # type: ignore[arg-type]
    assert not (tmp_path / "escaped.txt").exists()
