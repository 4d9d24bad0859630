"""kv.* and the deprecated state.* tasks against an in-memory KVStore."""

from __future__ import annotations

import anyio
import pytest
from plugin_harness import FakeContext, registry, run_task

from engine.core.errors import TaskFailed

pytestmark = pytest.mark.anyio

K = "io.kestra.plugin.core.kv."
S = "io.kestra.plugin.core.state."


@pytest.mark.parametrize("name", ["Set", "Get", "Delete", "GetKeys"])
def test_kv_registered_with_legacy_names(name: str) -> None:
    assert registry().resolve("io.kestra.core.tasks.kv." + name).type == K + name


@pytest.mark.parametrize("name", ["Set", "Get", "Delete"])
def test_state_registered_with_legacy_names(name: str) -> None:
    assert registry().resolve("io.kestra.core.tasks.states." + name).type == S + name


async def test_set_get_delete_roundtrip(ctx: FakeContext) -> None:
    assert (await run_task(K + "Set", {"key": "my_key", "value": {"a": [1, 2]}}, ctx)).outputs == {}
    assert await ctx.kv.get("company.team", "my_key") == {"a": [1, 2]}
    assert (await run_task(K + "Get", {"key": "my_key"}, ctx)).outputs == {"value": {"a": [1, 2]}}
    assert (await run_task(K + "Delete", {"key": "my_key"}, ctx)).outputs == {"deleted": True}
    assert (await run_task(K + "Delete", {"key": "my_key"}, ctx)).outputs == {"deleted": False}
    assert (await run_task(K + "Get", {"key": "my_key"}, ctx)).outputs == {"value": None}


async def test_other_namespace(ctx: FakeContext) -> None:
    await run_task(K + "Set", {"key": "k", "value": "v", "namespace": "other.ns"}, ctx)
    assert (await run_task(K + "Get", {"key": "k"}, ctx)).outputs == {"value": None}
    assert (await run_task(K + "Get", {"key": "k", "namespace": "other.ns"}, ctx)).outputs == {"value": "v"}


async def test_error_on_missing(ctx: FakeContext) -> None:
    with pytest.raises(TaskFailed, match="No value found for key 'nope'"):
        await run_task(K + "Get", {"key": "nope", "errorOnMissing": True}, ctx)
    with pytest.raises(TaskFailed, match="No value found for key 'nope'"):
        await run_task(K + "Delete", {"key": "nope", "errorOnMissing": "true"}, ctx)


async def test_overwrite_false(ctx: FakeContext) -> None:
    await run_task(K + "Set", {"key": "k", "value": "1"}, ctx)
    await run_task(K + "Set", {"key": "k", "value": "2"}, ctx)
    with pytest.raises(TaskFailed, match="already exists"):
        await run_task(K + "Set", {"key": "k", "value": "3", "overwrite": False}, ctx)
    assert await ctx.kv.get("company.team", "k") == "2"
    await run_task(K + "Set", {"key": "fresh", "value": "x", "overwrite": False}, ctx)


@pytest.mark.parametrize(
    ("kv_type", "raw", "stored"),
    [
        ("NUMBER", "42", 42),
        ("NUMBER", "1.5", 1.5),
        ("BOOLEAN", "true", True),
        ("BOOLEAN", "nope", False),
        ("JSON", '{"a": [1]}', {"a": [1]}),
        ("STRING", "42", "42"),
        ("DATETIME", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z"),
        ("DURATION", "PT5M", "PT5M"),
        (None, "42", "42"),
    ],
)
async def test_kv_type(ctx: FakeContext, kv_type: str | None, raw: str, stored: object) -> None:
    props: dict[str, object] = {"key": "k", "value": raw}
    if kv_type:
        props["kvType"] = kv_type
    await run_task(K + "Set", props, ctx)
    assert await ctx.kv.get("company.team", "k") == stored


@pytest.mark.parametrize(
    ("kv_type", "raw"), [("NUMBER", "abc"), ("JSON", "{bad"), ("DURATION", "soon"), ("WHATEVER", "x")]
)
async def test_kv_type_invalid(ctx: FakeContext, kv_type: str, raw: str) -> None:
    with pytest.raises(TaskFailed):
        await run_task(K + "Set", {"key": "k", "value": raw, "kvType": kv_type}, ctx)


async def test_ttl(ctx: FakeContext) -> None:
    await run_task(K + "Set", {"key": "short", "value": "v", "ttl": "PT0.1S"}, ctx)
    assert (await run_task(K + "Get", {"key": "short"}, ctx)).outputs == {"value": "v"}
    await anyio.sleep(0.15)
    assert (await run_task(K + "Get", {"key": "short"}, ctx)).outputs == {"value": None}
    with pytest.raises(TaskFailed, match="ttl"):
        await run_task(K + "Set", {"key": "k", "value": "v", "ttl": "forever"}, ctx)


@pytest.mark.parametrize("key", ["", "-lead", "has space", "a/b", "ü"])
async def test_invalid_keys(ctx: FakeContext, key: str) -> None:
    with pytest.raises(TaskFailed, match="invalid key"):
        await run_task(K + "Set", {"key": key, "value": "v"}, ctx)


async def test_get_keys(ctx: FakeContext) -> None:
    for key in ("app.a", "app.b", "other"):
        await run_task(K + "Set", {"key": key, "value": 1}, ctx)
    await run_task(K + "Set", {"key": "app.c", "value": 1, "namespace": "x"}, ctx)
    assert (await run_task(K + "GetKeys", {"prefix": "app."}, ctx)).outputs == {"keys": ["app.a", "app.b"]}
    assert (await run_task(K + "GetKeys", {}, ctx)).outputs == {"keys": ["app.a", "app.b", "other"]}
    assert (await run_task(K + "GetKeys", {"namespace": "x"}, ctx)).outputs == {"keys": ["app.c"]}


async def test_state_set_merges_get_delete(ctx: FakeContext) -> None:
    out = await run_task(S + "Set", {"data": {"a": 1, "m": {"x": 1}}}, ctx)
    assert out.outputs == {"count": 2, "key": "tasks-states.flow1.default"}
    out = await run_task(S + "Set", {"data": {"b": 2, "m": {"y": 2}}}, ctx)
    assert out.outputs["count"] == 3
    got = await run_task(S + "Get", {}, ctx)
    assert got.outputs == {"count": 3, "data": {"a": 1, "b": 2, "m": {"x": 1, "y": 2}}}
    assert (await run_task(S + "Delete", {}, ctx)).outputs == {"deleted": True}
    assert (await run_task(S + "Get", {}, ctx)).outputs == {"count": 0, "data": {}}
    with pytest.raises(TaskFailed, match="Unable to find the state"):
        await run_task(S + "Get", {"errorOnMissing": True}, ctx)
    with pytest.raises(TaskFailed, match="Unable to find the state"):
        await run_task(S + "Delete", {"errorOnMissing": True}, ctx)


async def test_state_isolation(ctx: FakeContext) -> None:
    await run_task(S + "Set", {"name": "shared", "namespace": True, "data": {"v": 1}}, ctx)
    ctx.variables["taskrun"] = {"value": "item 1"}
    await run_task(S + "Set", {"name": "per", "data": {"v": 2}}, ctx)
    assert (await run_task(S + "Get", {"name": "per", "taskrunValue": False}, ctx)).outputs["count"] == 0
    assert (await run_task(S + "Get", {"name": "per"}, ctx)).outputs["data"] == {"v": 2}
    ctx.flow_id = "another"
    ctx.variables.clear()
    assert (await run_task(S + "Get", {"name": "shared", "namespace": True}, ctx)).outputs["data"] == {"v": 1}
