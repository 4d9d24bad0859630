"""storage.* tasks and log.Fetch on the in-memory storage of the plugin harness."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from plugin_harness import FakeContext, run_task

from engine.core.errors import TaskFailed
from eventstore.storage import StorageFileNotFound, input_uri, task_uri
from eventstore.store import LogLine
from plugins.files import find_files, java_glob

pytestmark = pytest.mark.anyio
S = "io.kestra.plugin.core.storage."
PREFIX = "kestra:///company/team/flow1/executions/exec1/"


async def put(ctx: FakeContext, name: str, data: bytes | str) -> str:
    return await ctx.files.put(task_uri("company.team", "flow1", "exec1", "src", "tr0", name), data)


async def text(ctx: FakeContext, uri: str) -> str:
    return (await ctx.files.get(uri)).decode()


async def test_size_and_delete(ctx: FakeContext) -> None:
    uri = await put(ctx, "a.txt", "hello")
    assert (await run_task(S + "Size", {"uri": uri}, ctx)).outputs == {"size": 5}
    out = await run_task("io.kestra.core.tasks.storages.Delete", {"uri": uri}, ctx)
    assert out.outputs == {"uri": uri, "deleted": True}
    assert (await run_task(S + "Delete", {"uri": uri}, ctx)).outputs["deleted"] is False
    with pytest.raises(TaskFailed, match="Unable to find file"):
        await run_task(S + "Delete", {"uri": uri, "errorOnMissing": True}, ctx)
    with pytest.raises(StorageFileNotFound, match="file not found in internal storage"):
        await run_task(S + "Size", {"uri": uri}, ctx)
    with pytest.raises(TaskFailed, match="expected an internal storage URI"):
        await run_task(S + "Size", {"uri": "/etc/passwd"}, ctx)


async def test_concat_list_or_json_with_separator(ctx: FakeContext) -> None:
    a, b = await put(ctx, "a.txt", "A"), await put(ctx, "b.txt", "B")
    out = await run_task(S + "Concat", {"files": [a, b], "separator": "\n", "extension": ".txt"}, ctx)
    uri = out.outputs["uri"]
    assert uri.startswith(PREFIX + "tasks/task1/tr1/") and uri.endswith(".txt")
    assert await text(ctx, uri) == "A\nB\n"
    out = await run_task(S + "Concat", {"files": json.dumps([b, a])}, ctx)
    assert out.outputs["uri"].endswith(".tmp") and await text(ctx, out.outputs["uri"]) == "BA"


async def test_split_rows_bytes_partitions(ctx: FakeContext) -> None:
    src = await put(ctx, "data.csv", "".join(f"{i}\n" for i in range(10)))
    rows = (await run_task(S + "Split", {"from": src, "rows": 4}, ctx)).outputs["uris"]
    assert [await text(ctx, u) for u in rows] == ["0\n1\n2\n3\n", "4\n5\n6\n7\n", "8\n9\n"]
    assert all(u.endswith(".csv") for u in rows)
    parts = (await run_task(S + "Split", {"from": src, "partitions": 3}, ctx)).outputs["uris"]
    assert [await text(ctx, u) for u in parts] == ["0\n3\n6\n9\n", "1\n4\n7\n", "2\n5\n8\n"]
    by_bytes = (await run_task(S + "Split", {"from": src, "bytes": "6"}, ctx)).outputs["uris"]
    assert [await text(ctx, u) for u in by_bytes] == ["0\n1\n2\n", "3\n4\n5\n", "6\n7\n8\n", "9\n"]
    crlf = await put(ctx, "w.txt", "a\r\nb\r\nc")
    out = (await run_task(S + "Split", {"from": crlf, "rows": 2, "separator": "\r\n"}, ctx)).outputs
    assert [await text(ctx, u) for u in out["uris"]] == ["a\r\nb\r\n", "c\r\n"]
    few = (await run_task(S + "Split", {"from": crlf, "partitions": 5}, ctx)).outputs["uris"]
    assert len(few) == 3  # empty partitions are dropped
    with pytest.raises(TaskFailed, match="no size, count, nor rows"):
        await run_task(S + "Split", {"from": src}, ctx)
    with pytest.raises(TaskFailed, match="invalid size"):
        await run_task(S + "Split", {"from": src, "bytes": "ten"}, ctx)
    assert list(ctx.workdir.iterdir()) == []  # temporary files are removed (shared WorkingDirectory)


async def test_split_readable_sizes() -> None:
    from plugins.core.storage import readable_bytes

    assert readable_bytes("10MB") == 10 * 1024 * 1024
    assert readable_bytes("200kb") == 200 * 1024
    assert readable_bytes(12) == 12


async def test_reverse_keeps_the_extension(ctx: FakeContext) -> None:
    src = await put(ctx, "get.yml", "1\n2\n3\n")
    out = await run_task(S + "Reverse", {"from": src}, ctx)
    assert out.outputs["uri"].endswith(".yml")
    assert await text(ctx, out.outputs["uri"]) == "3\n2\n1\n"
    out = await run_task(S + "Reverse", {"from": src, "separator": ","}, ctx)
    assert await text(ctx, out.outputs["uri"]) == "3,2,1,"


async def test_local_files_inputs_and_outputs(ctx: FakeContext) -> None:
    stored = await put(ctx, "addr.json", '{"a": 1}')
    props: dict[str, Any] = {
        "inputs": {"hello.txt": "Hello World", "sub/dir/addr.json": stored, "sub/x.txt": "x"},
        "outputs": ["hello.txt", "sub/**"],
    }
    out = await run_task(S + "LocalFiles", props, ctx)
    uris = out.outputs["uris"]
    assert set(uris) == {"hello.txt", "sub/dir/addr.json", "sub/x.txt"}
    assert await text(ctx, uris["hello.txt"]) == "Hello World"
    assert await text(ctx, uris["sub/dir/addr.json"]) == '{"a": 1}'
    assert uris["hello.txt"].startswith(PREFIX + "tasks/task1/tr1/")
    assert uris["hello.txt"].endswith("-hello.txt")
    assert any("deprecated" in m for m in ctx.messages("WARN"))
    out = await run_task(S + "LocalFiles", {"inputs": json.dumps({"only.txt": "in"})}, ctx)
    assert out.outputs == {"uris": {}}


def test_java_globs(tmp_path: Path) -> None:
    for name in ("a.csv", "b.txt", "sub/c.csv", "sub/deep/d.csv"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    assert set(find_files(tmp_path, ["*.csv"])) == {"a.csv"}
    assert set(find_files(tmp_path, ["**.csv"])) == {"a.csv", "sub/c.csv", "sub/deep/d.csv"}
    assert set(find_files(tmp_path, ["sub/**"])) == {"sub/c.csv", "sub/deep/d.csv"}
    assert set(find_files(tmp_path, ["{a,b}.*"])) == {"a.csv", "b.txt"}
    assert set(find_files(tmp_path, ["regex:.*/d\\.csv"])) == {"sub/deep/d.csv"}
    assert java_glob("[!a].txt").fullmatch("b.txt") and not java_glob("?.txt").fullmatch("a/b.txt")


async def test_purge_current_execution_files(ctx: FakeContext) -> None:
    a = await put(ctx, "a.txt", "a")
    b = await ctx.files.put(input_uri("company.team", "flow1", "exec1", "f", "in.txt"), "b")
    other = await ctx.files.put(task_uri("company.team", "flow1", "exec2", "t", "tr", "o.txt"), "o")
    out = await run_task("io.kestra.core.tasks.storages.PurgeExecution", {}, ctx)
    assert sorted(out.outputs["uris"]) == sorted([a, b])
    assert await ctx.files.execution_files("exec1") == []
    assert await ctx.files.exists(other)


async def test_log_fetch(ctx: FakeContext) -> None:
    ctx.execution_logs["exec1"] = [
        LogLine("2024-01-01T00:00:00.000Z", "INFO", "task 1", "tr-a", "task-1", 1),
        LogLine("2024-01-01T00:00:01.000Z", "DEBUG", "debug", "tr-a", "task-1", 1),
        LogLine("2024-01-01T00:00:02.000Z", "WARN", "task 2", "tr-b", "task-2", 1),
        LogLine("2024-01-01T00:00:03.000Z", "INFO", "waiting", "tr-c", "sleep", 1),
    ]
    out = await run_task("io.kestra.plugin.core.log.Fetch", {}, ctx)
    assert out.outputs["size"] == 3 and out.outputs["uri"].endswith(".ion")
    rows = [json.loads(line) for line in (await text(ctx, out.outputs["uri"])).splitlines()]
    assert [r["message"] for r in rows] == ["task 1", "task 2", "waiting"]
    assert rows[0] == {
        "namespace": "company.team",
        "flowId": "flow1",
        "taskId": "task-1",
        "executionId": "exec1",
        "taskRunId": "tr-a",
        "attemptNumber": 0,
        "timestamp": "2024-01-01T00:00:00.000Z",
        "level": "INFO",
        "message": "task 1",
    }
    out = await run_task("io.kestra.core.tasks.log.Fetch", {"tasksId": ["task-1"], "level": "DEBUG"}, ctx)
    assert out.outputs["size"] == 2
    out = await run_task("io.kestra.plugin.core.log.Fetch", {"level": "WARN"}, ctx)
    assert out.outputs["size"] == 1
    out = await run_task("io.kestra.plugin.core.log.Fetch", {"executionId": "other"}, ctx)
    assert out.outputs["size"] == 0 and await text(ctx, out.outputs["uri"]) == ""
