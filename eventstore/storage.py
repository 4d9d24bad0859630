"""Kestra's internal storage: files addressed by ``kestra://`` URIs, kept in the JetStream Object Store.

One object-store bucket (``engine_storage``, stream ``OBJ_engine_storage``, file storage, the
store's replicas) holds every file, so the embedded server and a cluster share one code path.
An object's name is the URI's path; the layout is Kestra's (``StorageContext``)::

    kestra:///<namespace as a/b/c>/<flow slug>/executions/<execution>/tasks/<task slug>/<taskrun>/<file>
    kestra:///<namespace as a/b/c>/<flow slug>/executions/<execution>/inputs/<input>/<file>
    kestra:///<namespace as a/b/c>/_files/<path>                      (namespace files)

``InternalStorage`` is the JetStream implementation, ``MemoryStorage`` an in-memory one with the
same API (plugin tests). A missing file raises ``StorageFileNotFound`` naming the URI.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import hashlib
import io
import re
import unicodedata
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, BinaryIO

from nats.js import api as jsapi
from nats.js.errors import APIError, NotFoundError, ObjectNotFoundError
from nats.js.object_store import ObjectStore

from engine.core.errors import EngineError

SCHEME = "kestra://"
BUCKET = "engine_storage"
STREAM = f"OBJ_{BUCKET}"
_META = f"$O.{BUCKET}.M."
_CHUNKS = f"$O.{BUCKET}.C."
CHUNK_SIZE = 128 * 1024

Data = bytes | bytearray | memoryview | str | Path | BinaryIO


class StorageError(EngineError):
    """An internal-storage URI or operation is invalid."""


class StorageFileNotFound(StorageError):
    """The file a ``kestra://`` URI names is not in internal storage."""


# ---- URIs -----------------------------------------------------------------------------------


def slugify(text: str) -> str:
    """Kestra's ``Slugify.of``: flow and task ids in storage paths."""
    text = re.sub(r"\s", "-", text)
    text = unicodedata.normalize("NFD", text)
    text = re.sub(r"[^\w-]", "", text, flags=re.ASCII)
    text = text.replace("_", "-")
    text = re.sub(r"-{2,}", "-", text).strip("-")
    return text.lower()


def is_uri(value: object) -> bool:
    return isinstance(value, str) and value.startswith(SCHEME)


def to_path(uri_or_path: str) -> str:
    """``kestra:///a/b`` or ``/a/b`` → ``/a/b`` (the object name); refuses ``..`` and empty parts."""
    if not isinstance(uri_or_path, str):
        raise StorageError(f"expected a kestra:// URI, got {uri_or_path!r}")
    raw = uri_or_path
    if raw.startswith(SCHEME):
        raw = raw[len(SCHEME) :]
    elif "://" in raw:
        raise StorageError(
            f"invalid internal storage URI {uri_or_path!r}: the scheme must be kestra:// "
            "(like kestra:///company/team/flow/executions/<id>/tasks/<task>/<taskrun>/file.txt)"
        )
    if not raw.startswith("/"):
        raw = "/" + raw
    parts = raw.split("/")[1:]
    if not parts or any(p in ("", ".", "..") for p in parts):
        raise StorageError(
            f"invalid internal storage URI {uri_or_path!r}: it needs a path like "
            "kestra:///namespace/flow/executions/<id>/..., without empty, '.' or '..' parts"
        )
    return raw


def to_uri(path: str) -> str:
    return SCHEME + to_path(path)


def namespace_path(namespace: str) -> str:
    return namespace.replace(".", "/")


def execution_prefix(namespace: str, flow_id: str, execution_id: str) -> str:
    """``/<ns>/<flow>/executions/<id>`` (Kestra's ``getExecutionStorageURI``)."""
    return f"/{namespace_path(namespace)}/{slugify(flow_id)}/executions/{execution_id}"


def _file_name(name: str) -> str:
    name = name.replace("\\", "/").strip("/")
    if not name:
        raise StorageError("a stored file needs a name")
    return name


def task_uri(
    namespace: str, flow_id: str, execution_id: str, task_id: str, taskrun_id: str, name: str
) -> str:
    """Where a task's file goes: ``kestra:///<ns>/<flow>/executions/<id>/tasks/<task>/<taskrun>/<name>``."""
    prefix = execution_prefix(namespace, flow_id, execution_id)
    return to_uri(f"{prefix}/tasks/{slugify(task_id)}/{taskrun_id}/{_file_name(name)}")


def input_uri(namespace: str, flow_id: str, execution_id: str, input_id: str, name: str) -> str:
    """Where a FILE input goes: ``kestra:///<ns>/<flow>/executions/<id>/inputs/<input>/<name>``."""
    prefix = execution_prefix(namespace, flow_id, execution_id)
    return to_uri(f"{prefix}/inputs/{input_id}/{_file_name(name)}")


def namespace_file_uri(namespace: str, path: str) -> str:
    """A namespace file (Kestra's ``fileURI``): ``kestra:///<ns>/_files/<path>``."""
    path = path.lstrip("/")
    if "../" in path:
        raise StorageError(f"namespace file path {path!r} must not contain '../'")
    return to_uri(f"/{namespace_path(namespace)}/_files/{path}")


def execution_of(uri: str) -> str | None:
    """The execution id a URI belongs to (Kestra's ``StorageContext.extractExecutionId``)."""
    m = re.match(r"^/(.+)/executions/([^/]+)/", to_path(uri))
    return m.group(2) if m else None


def unique_name(local_path: str, name: str) -> str:
    """Kestra's ``<id from path>-<file name>`` for script output files (same name in two dirs: two files)."""
    digest = hashlib.sha256(local_path.encode()).digest()[:9]
    return base64.b32encode(digest).decode().lower().rstrip("=") + "-" + name


def _reader(data: Data) -> tuple[BinaryIO, bool]:
    """A binary reader for ``data`` and whether the caller must close it."""
    if isinstance(data, str):
        return io.BytesIO(data.encode()), True
    if isinstance(data, bytes | bytearray | memoryview):
        return io.BytesIO(bytes(data)), True
    if isinstance(data, Path):
        try:
            return data.open("rb"), True
        except OSError as exc:
            raise StorageError(f"cannot read {data}: {exc.strerror or exc}") from None
    return data, False


def _not_found(uri_or_path: str) -> StorageFileNotFound:
    return StorageFileNotFound(f"file not found in internal storage: {to_uri(uri_or_path)}")


# ---- JetStream ----------------------------------------------------------------------------------


class InternalStorage:
    """The internal storage on the JetStream Object Store (bucket ``engine_storage``)."""

    def __init__(self, store: Any) -> None:
        self.store = store  # eventstore.store.Store (duck-typed: .js, .replicas)
        self._bucket: ObjectStore | None = None
        self._lock = asyncio.Lock()

    async def bucket(self) -> ObjectStore:
        """The object store, created on first use (idempotent: several processes may race here)."""
        if self._bucket is not None:
            return self._bucket
        async with self._lock:
            if self._bucket is None:
                js = self.store.js
                config = jsapi.ObjectStoreConfig(
                    bucket=BUCKET,
                    description="engine internal storage (kestra:// files)",
                    storage=jsapi.StorageType.FILE,
                    replicas=int(getattr(self.store, "replicas", 1) or 1),
                )
                try:
                    self._bucket = await js.create_object_store(BUCKET, config=config)
                except APIError as exc:
                    if exc.err_code != 10058:  # exists with another config: use it as it is
                        raise
                    self._bucket = await js.object_store(BUCKET)
        return self._bucket

    async def put(self, uri_or_path: str, data: Data) -> str:
        """Store ``data`` (bytes, text, a local Path or a binary file object) at a URI; returns the URI."""
        path = to_path(uri_or_path)
        obs = await self.bucket()
        reader, close = _reader(data)
        try:
            meta = jsapi.ObjectMeta(name=path, options=jsapi.ObjectMetaOptions(max_chunk_size=CHUNK_SIZE))
            await obs.put(path, reader, meta=meta)  # type: ignore[arg-type]
        finally:
            if close:
                reader.close()
        return to_uri(path)

    async def _info(self, uri_or_path: str) -> jsapi.ObjectInfo | None:
        obs = await self.bucket()
        try:
            return await obs.get_info(to_path(uri_or_path))
        except (ObjectNotFoundError, NotFoundError):
            return None

    async def get(self, uri: str) -> bytes:
        """The whole content of a file (use :meth:`download` or :meth:`chunks` for big files)."""
        buf = io.BytesIO()
        await self._get_into(uri, buf)
        return buf.getvalue()

    async def _get_into(self, uri: str, writer: Any) -> None:
        obs = await self.bucket()
        try:
            await obs.get(to_path(uri), writeinto=writer)
        except (ObjectNotFoundError, NotFoundError):
            raise _not_found(uri) from None

    async def download(self, uri: str, dest: Path) -> Path:
        """Write a file to the local path ``dest`` chunk by chunk (parents created); returns ``dest``."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        with dest.open("wb") as out:
            await self._get_into(uri, out)
        return dest

    async def chunks(self, uri: str) -> AsyncIterator[bytes]:
        """The content of a file as a stream of chunks (memory bounded by the chunk size)."""
        info = await self._info(uri)
        if info is None:
            raise _not_found(uri)
        if not info.size:
            return
        sub = await self.store.js.subscribe(f"{_CHUNKS}{info.nuid}", stream=STREAM, ordered_consumer=True)
        try:
            received = 0
            while received < info.size:
                msg = await sub.next_msg(timeout=30)
                received += len(msg.data)
                yield msg.data
        finally:
            await sub.unsubscribe()

    async def size(self, uri: str) -> int:
        info = await self._info(uri)
        if info is None:
            raise _not_found(uri)
        return int(info.size or 0)

    async def exists(self, uri: str) -> bool:
        return await self._info(uri) is not None

    async def delete(self, uri: str) -> bool:
        """Remove a file (no tombstone is kept); False when there was none."""
        path = to_path(uri)
        info = await self._info(path)
        if info is None:
            return False
        js = self.store.js
        await js.purge_stream(STREAM, subject=_META + base64.urlsafe_b64encode(path.encode()).decode())
        if info.nuid:
            await js.purge_stream(STREAM, subject=f"{_CHUNKS}{info.nuid}")
        return True

    async def _names(self) -> builtins.list[str]:
        await self.bucket()
        try:
            info = await self.store.js.stream_info(STREAM, subjects_filter=_META + ">")
        except NotFoundError:
            return []
        names = []
        for subject in info.state.subjects or {}:
            try:
                names.append(base64.urlsafe_b64decode(subject[len(_META) :]).decode())
            except ValueError:
                continue
        return names

    async def list(self, prefix: str = "/") -> builtins.list[str]:
        """URIs of the files under ``prefix`` (a URI or path; a directory prefix ends at a ``/``), sorted."""
        base = to_path(prefix).rstrip("/") + "/" if prefix not in ("", "/", SCHEME + "/") else "/"
        out = []
        for name in await self._names():
            if name.startswith(base) and await self._info(name) is not None:
                out.append(to_uri(name))
        return sorted(out)

    async def delete_prefix(self, prefix: str) -> builtins.list[str]:
        """Delete every file under ``prefix``; returns their URIs."""
        deleted = []
        for uri in await self.list(prefix):
            if await self.delete(uri):
                deleted.append(uri)
        return deleted

    async def execution_files(self, execution_id: str) -> builtins.list[str]:
        """Every file of one execution (inputs, task files), sorted URIs."""
        marker = f"/executions/{execution_id}/"
        out = []
        for name in await self._names():
            if marker in name and execution_of(name) == execution_id and await self._info(name) is not None:
                out.append(to_uri(name))
        return sorted(out)


# ---- in memory ----------------------------------------------------------------------------------


class MemoryStorage:
    """The same API in memory (plugin tests, tools)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    async def put(self, uri_or_path: str, data: Data) -> str:
        path = to_path(uri_or_path)
        reader, close = _reader(data)
        try:
            self.files[path] = reader.read()
        finally:
            if close:
                reader.close()
        return to_uri(path)

    async def get(self, uri: str) -> bytes:
        try:
            return self.files[to_path(uri)]
        except KeyError:
            raise _not_found(uri) from None

    async def download(self, uri: str, dest: Path) -> Path:
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(await self.get(uri))
        return dest

    async def chunks(self, uri: str) -> AsyncIterator[bytes]:
        data = await self.get(uri)
        for i in range(0, len(data), CHUNK_SIZE):
            yield data[i : i + CHUNK_SIZE]

    async def size(self, uri: str) -> int:
        return len(await self.get(uri))

    async def exists(self, uri: str) -> bool:
        return to_path(uri) in self.files

    async def delete(self, uri: str) -> bool:
        return self.files.pop(to_path(uri), None) is not None

    async def list(self, prefix: str = "/") -> builtins.list[str]:
        base = to_path(prefix).rstrip("/") + "/" if prefix not in ("", "/", SCHEME + "/") else "/"
        return sorted(to_uri(p) for p in self.files if p.startswith(base))

    async def delete_prefix(self, prefix: str) -> builtins.list[str]:
        deleted = await self.list(prefix)
        for uri in deleted:
            await self.delete(uri)
        return deleted

    async def execution_files(self, execution_id: str) -> builtins.list[str]:
        return sorted(to_uri(p) for p in self.files if execution_of(p) == execution_id)
