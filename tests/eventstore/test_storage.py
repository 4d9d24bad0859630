"""Internal storage (kestra:// files) on the JetStream Object Store of a real nats-server, and in memory."""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from eventstore import storage as st
from eventstore.storage import InternalStorage, MemoryStorage, StorageError, StorageFileNotFound
from eventstore.store import Store

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["jetstream", "memory"])
async def storage(request: pytest.FixtureRequest, nats_url: str) -> AsyncIterator[Any]:
    if request.param == "memory":
        yield MemoryStorage()
        return
    store = await Store.connect(nats_url)
    try:
        yield InternalStorage(store)
    finally:
        await store.close()


def eid() -> str:
    return uuid.uuid4().hex[:22]


def test_uris_follow_kestras_layout() -> None:
    assert (
        st.task_uri("company.team", "My_Flow", "E1", "my task", "TR1", "out.csv")
        == "kestra:///company/team/my-flow/executions/E1/tasks/my-task/TR1/out.csv"
    )
    assert (
        st.input_uri("io.kestra.tests", "inputs", "E2", "file", "data.yml")
        == "kestra:///io/kestra/tests/inputs/executions/E2/inputs/file/data.yml"
    )
    assert st.namespace_file_uri("a.b", "/dir/x.sql") == "kestra:///a/b/_files/dir/x.sql"
    assert st.execution_of("kestra:///a/b/f/executions/E3/tasks/t/tr/x") == "E3"
    assert st.execution_of("kestra:///a/b/_files/x") is None
    assert st.slugify("Hello World__x--Y") == "hello-world-x-y"
    for bad in ("kestra:///a/../b", "s3://bucket/x", "kestra:///a//b", "kestra://"):
        with pytest.raises(StorageError):
            st.to_path(bad)


async def test_put_get_size_exists_delete(storage: Any, tmp_path: Path) -> None:
    e = eid()
    uri = st.task_uri("ns.a", "f", e, "t", "tr", "hello.txt")
    assert await storage.put(uri, b"hello") == uri
    assert await storage.get(uri) == b"hello"
    assert await storage.size(uri) == 5
    assert await storage.exists(uri)
    # overwrite, then from a text, a local path and a file object
    await storage.put(uri, "héllo")
    assert await storage.get(uri) == "héllo".encode()
    local = tmp_path / "local.bin"
    local.write_bytes(b"\x00\x01" * 10)
    uri2 = await storage.put(st.task_uri("ns.a", "f", e, "t", "tr", "local.bin"), local)
    assert await storage.get(uri2) == b"\x00\x01" * 10
    uri3 = await storage.put(st.task_uri("ns.a", "f", e, "t", "tr", "empty"), io.BytesIO(b""))
    assert await storage.get(uri3) == b"" and await storage.size(uri3) == 0
    assert await storage.delete(uri)
    assert not await storage.exists(uri)
    assert not await storage.delete(uri)
    with pytest.raises(StorageFileNotFound, match=r"file not found in internal storage: kestra:///ns/a/f/"):
        await storage.get(uri)
    with pytest.raises(StorageFileNotFound):
        await storage.size(uri)


async def test_big_files_stream_in_chunks(storage: Any, tmp_path: Path) -> None:
    data = os.urandom(st.CHUNK_SIZE * 2 + 17)
    uri = await storage.put(st.task_uri("ns.big", "f", eid(), "t", "tr", "big.bin"), data)
    assert await storage.size(uri) == len(data)
    out = await storage.download(uri, tmp_path / "sub" / "big.bin")
    assert out.read_bytes() == data
    parts = [c async for c in storage.chunks(uri)]
    assert len(parts) == 3 and b"".join(parts) == data


async def test_list_and_execution_files(storage: Any) -> None:
    e1, e2 = eid(), eid()
    ns = f"ns.l{uuid.uuid4().hex[:6]}"
    a = await storage.put(st.task_uri(ns, "f", e1, "t", "tr1", "a.txt"), b"a")
    b = await storage.put(st.input_uri(ns, "f", e1, "file", "b.txt"), b"b")
    c = await storage.put(st.task_uri(ns, "f", e2, "t", "tr2", "c.txt"), b"c")
    assert await storage.execution_files(e1) == sorted([a, b])
    assert await storage.list(f"kestra:///{ns.replace('.', '/')}/f/executions/{e2}") == [c]
    assert await storage.list(f"/{ns.replace('.', '/')}") == sorted([a, b, c])
    assert await storage.list(f"/{ns.replace('.', '/')}/f/executions/{e1}/tas") == []  # whole parts only
    prefix = st.execution_prefix(ns, "f", e1)
    assert sorted(await storage.delete_prefix(prefix)) == sorted([a, b])
    assert await storage.execution_files(e1) == []
    assert await storage.execution_files(e2) == [c]


async def test_the_bucket_is_created_once_and_shared(nats_url: str) -> None:
    s1, s2 = await Store.connect(nats_url), await Store.connect(nats_url)
    try:
        one, two = InternalStorage(s1), InternalStorage(s2)
        uri = await one.put(st.task_uri("ns.share", "f", eid(), "t", "tr", "x"), b"shared")
        assert await two.get(uri) == b"shared"
        info = await s1.js.stream_info(st.STREAM)
        assert str(getattr(info.config.storage, "value", info.config.storage)) == "file"
    finally:
        await s1.close()
        await s2.close()
