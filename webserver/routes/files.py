"""``/api/v1/namespaces/{namespace}/files``: Kestra's namespace files, kept in the internal storage.

A namespace file ``scripts/etl.py`` of ``company.team`` is the object
``kestra:///company/team/_files/scripts/etl.py`` of the JetStream Object Store (the URI that
``read('scripts/etl.py')`` and ``fileURI`` give a flow of that namespace). The object store has
no directories: a directory is the common prefix of its files (it exists while a file is in it).
"""

from __future__ import annotations

import io
import zipfile
from datetime import datetime
from typing import Annotated, Any

from litestar import Request, Response, delete, get, post, put
from litestar.datastructures import UploadFile
from litestar.params import FromPath, QueryParameter

from eventstore.admin import file_stat
from eventstore.storage import InternalStorage, StorageError, namespace_file_uri, namespace_path, to_path
from webserver.http import (
    ApiError,
    attachment,
    bad,
    check_kv,
    deps,
    download,
    is_form,
    json_body,
    not_found,
    read_bytes,
    with_body,
)

MAX_ZIP_TOTAL = 100 * 1024 * 1024  # uncompressed bytes an uploaded .zip may expand to

FilePath = Annotated[str, QueryParameter(description="The file's path in the namespace, e.g. scripts/etl.py")]
UploadPath = Annotated[
    str | None, QueryParameter(description="Where the file goes, e.g. scripts/etl.py (a .zip: ignored)")
]


def storage_of(request: Request[Any, Any, Any]) -> InternalStorage:
    return InternalStorage(deps(request).store)


def root(namespace: str) -> str:
    """The object-name prefix of a namespace's files: ``/<ns as a/b>/_files/``."""
    check_kv(namespace)
    return f"/{namespace_path(namespace)}/_files/"


def clean(path: str | None, *, allow_root: bool = False) -> str:
    """A namespace file path as ``a/b.txt`` (no leading slash); 400 for ``..``, empty parts and the like."""
    text = (path or "").strip()
    if "\\" in text or "\x00" in text or len(text) > 1024:
        raise bad(f"path {path!r}: use / separated names (no backslash, at most 1024 characters)")
    text = text.strip("/")
    if not text:
        if allow_root:
            return ""
        raise bad("path is required: the file's path in the namespace, e.g. scripts/etl.py")
    parts = text.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise bad(f"path {path!r}: no empty, '.' or '..' parts (e.g. scripts/etl.py)")
    return text


def object_name(namespace: str, path: str) -> str:
    try:
        return to_path(namespace_file_uri(namespace, path))
    except StorageError as exc:
        raise bad(str(exc)) from None


def _millis(mtime: Any) -> int | None:
    if not mtime:
        return None
    try:
        text = str(mtime).replace("Z", "+00:00")
        if "." in text:  # nanoseconds: keep microseconds for fromisoformat
            head, _, tail = text.partition(".")
            digits = "".join(c for c in tail if c.isdigit())
            rest = tail[len(digits) :]
            text = f"{head}.{digits[:6].ljust(6, '0')}{rest}"
        return int(datetime.fromisoformat(text).timestamp() * 1000)
    except ValueError:
        return None


def attributes(name: str, kind: str, size: int = 0, mtime: Any = None) -> dict[str, Any]:
    """Kestra's FileAttributes."""
    millis = _millis(mtime)
    return {"fileName": name, "type": kind, "size": size, "lastModifiedTime": millis, "creationTime": millis}


async def files_under(storage: InternalStorage, namespace: str, path: str) -> list[str]:
    """The paths (relative to the namespace root) of every file at or under ``path``."""
    base = root(namespace)
    out = []
    for uri in await storage.list(base.rstrip("/")):
        rel = to_path(uri)[len(base) :]
        if not path or rel == path or rel.startswith(path + "/"):
            out.append(rel)
    return sorted(out)


@get("/namespaces/{namespace:str}/files", tags=["Files"])
async def get_file(
    request: Request[Any, Any, Any], namespace: FromPath[str], path: FilePath
) -> Response[bytes]:
    """The content of a namespace file."""
    rel = clean(path)
    missing = (
        f"namespace {namespace} has no file {rel!r} "
        f"(list them: GET /api/v1/namespaces/{namespace}/files/directory)"
    )
    return await download(storage_of(request), object_name(namespace, rel), missing)


async def _upload_body(request: Request[Any, Any, Any]) -> tuple[bytes, str | None]:
    """(content, file name) of a multipart ``fileContent`` part, or the raw body."""
    if is_form(request):
        form = await request.form()
        upload = form.get("fileContent")
        if upload is None:
            uploads = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
            upload = uploads[0] if len(uploads) == 1 else None
        if not isinstance(upload, UploadFile):
            raise bad("send the file as the multipart part 'fileContent' (or the raw body)")
        return await upload.read(), upload.filename
    return await read_bytes(request), None


def unzip(data: bytes) -> list[tuple[str, bytes]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise bad(f"the .zip does not open ({exc}): send a zip archive, or a file not named *.zip") from None
    entries = [i for i in archive.infolist() if not i.is_dir()]
    if sum(i.file_size for i in entries) > MAX_ZIP_TOTAL:
        raise ApiError(413, f"the .zip expands to more than {MAX_ZIP_TOTAL} bytes")
    out = []
    for info in entries:
        rel = clean(info.filename)
        out.append((rel, archive.read(info)))
    return out


UPLOAD = json_body("The file: multipart part 'fileContent' (a .zip is extracted), or raw bytes")


@post("/namespaces/{namespace:str}/files", **with_body(UPLOAD, "Files"))
async def upload_file(
    request: Request[Any, Any, Any], namespace: FromPath[str], path: UploadPath = None
) -> list[dict[str, Any]]:
    """Create or replace a namespace file (a .zip upload creates one file per entry): the files written."""
    root(namespace)
    data, filename = await _upload_body(request)
    is_zip = bool(filename and filename.lower().endswith(".zip"))
    files = unzip(data) if is_zip else [(clean(path), data)]
    storage = storage_of(request)
    for rel, content in files:  # every name checked (unzip) before the first write
        await storage.put(object_name(namespace, rel), content)
    return [attributes(rel, "File", len(content)) for rel, content in files]


@get("/namespaces/{namespace:str}/files/directory", tags=["Files"])
async def list_directory(
    request: Request[Any, Any, Any],
    namespace: FromPath[str],
    path: Annotated[str | None, QueryParameter(description="A directory (default: the root)")] = None,
) -> list[dict[str, Any]]:
    """The files and directories directly in a directory (FileAttributes)."""
    rel = clean(path, allow_root=True)
    storage = storage_of(request)
    files = await files_under(storage, namespace, rel)
    if rel and rel in files:
        raise bad(f"{rel!r} is a file, not a directory: GET /api/v1/namespaces/{namespace}/files?path={rel}")
    if rel and not files:
        raise not_found(f"namespace {namespace} has no directory {rel!r}")
    prefix = rel + "/" if rel else ""
    out: dict[str, dict[str, Any]] = {}
    base = root(namespace)
    for f in files:
        name, sep, _ = f[len(prefix) :].partition("/")
        if sep:
            out.setdefault(name, attributes(name, "Directory"))
        else:
            stat = await file_stat(storage, base + f)
            out[name] = attributes(name, "File", stat.size, stat.mtime) if stat else attributes(name, "File")
    return [out[k] for k in sorted(out)]


@get("/namespaces/{namespace:str}/files/stats", tags=["Files"])
async def file_stats(
    request: Request[Any, Any, Any],
    namespace: FromPath[str],
    path: Annotated[str | None, QueryParameter(description="A file or directory (default: the root)")] = None,
) -> dict[str, Any]:
    """FileAttributes of a file or directory."""
    rel = clean(path, allow_root=True)
    storage = storage_of(request)
    if rel:
        stat = await file_stat(storage, object_name(namespace, rel))
        if stat is not None:
            return attributes(rel.rsplit("/", 1)[-1], "File", stat.size, stat.mtime)
        if not await files_under(storage, namespace, rel):
            raise not_found(f"namespace {namespace} has no file or directory {rel!r}")
    else:
        root(namespace)
    return attributes(rel.rsplit("/", 1)[-1] if rel else "", "Directory")


@get("/namespaces/{namespace:str}/files/search", tags=["Files"])
async def search_files(
    request: Request[Any, Any, Any],
    namespace: FromPath[str],
    q: Annotated[str, QueryParameter(description="Text the file's path contains")] = "",
) -> list[str]:
    """The paths (``/a/b.txt``) of the namespace's files that contain ``q``."""
    storage = storage_of(request)
    return ["/" + f for f in await files_under(storage, namespace, "") if q in f]


@delete("/namespaces/{namespace:str}/files", tags=["Files"])
async def delete_file(
    request: Request[Any, Any, Any],
    namespace: FromPath[str],
    path: Annotated[str, QueryParameter(description="A file, or a directory (everything in it)")],
) -> None:
    """Delete a namespace file, or a directory and every file in it."""
    rel = clean(path)
    storage = storage_of(request)
    files = await files_under(storage, namespace, rel)
    if not files:
        raise not_found(f"namespace {namespace} has no file or directory {rel!r}")
    for f in files:
        await storage.delete(object_name(namespace, f))


@put("/namespaces/{namespace:str}/files", status_code=200, tags=["Files"])
async def move_file(
    request: Request[Any, Any, Any],
    namespace: FromPath[str],
    from_: Annotated[str, QueryParameter(name="from", description="The file or directory to move")],
    to: Annotated[str, QueryParameter(description="Its new path")],
) -> list[str]:
    """Move (rename) a file or a directory: the new paths."""
    src, dst = clean(from_), clean(to)
    if dst == src or dst.startswith(src + "/"):
        raise bad(f"cannot move {src!r} into itself ({dst!r})")
    storage = storage_of(request)
    files = await files_under(storage, namespace, src)
    if not files:
        raise not_found(f"namespace {namespace} has no file or directory {src!r}")
    moved = []
    for f in files:
        target = dst + f[len(src) :]
        await storage.put(object_name(namespace, target), await storage.get(object_name(namespace, f)))
        await storage.delete(object_name(namespace, f))
        moved.append("/" + target)
    return moved


@get("/namespaces/{namespace:str}/files/export", tags=["Files"])
async def export_files(request: Request[Any, Any, Any], namespace: FromPath[str]) -> Response[bytes]:
    """Every file of the namespace in one .zip."""
    storage = storage_of(request)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for f in await files_under(storage, namespace, ""):
            archive.writestr(f, await storage.get(object_name(namespace, f)))
    return attachment(buf.getvalue(), f"{namespace}_files.zip", "application/zip")


ROUTES = [
    get_file,
    upload_file,
    list_directory,
    file_stats,
    search_files,
    delete_file,
    move_file,
    export_files,
]
