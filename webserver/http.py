"""What every route module shares: errors, the request's dependencies, bodies, paging, responses.

Errors are ``ApiError`` (rendered as JSON ``{"message", "errors"}`` by the app); a body is read
through ``read_bytes``/``read_text`` so that one limit (``MAX_BODY``) holds for every route.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import QueryParameter
from prometheus_client import CollectorRegistry

from eventstore.indexer import Indexer
from eventstore.storage import InternalStorage, StorageError
from eventstore.store import Store

T = TypeVar("T")

API = "/api/v1"
# Kestra's API puts the tenant in the path (/api/v1/{tenant}/flows); the open-source, single-tenant
# shape has one tenant, "main". /api/v1/flows stays an alias (the CLI and older clients call it).
TENANT = "main"
TENANT_API = API + "/{tenant:str}"
JSON = "application/json"
MAX_BODY = 5 * 1024 * 1024


class ApiError(HTTPException):
    """An error with a status and a message a person can act on (rendered as JSON)."""

    def __init__(self, status: int, message: str, errors: list[Any] | None = None) -> None:
        super().__init__(detail=message, status_code=status, extra={"errors": errors} if errors else None)


def not_found(message: str) -> ApiError:
    return ApiError(404, message)


def conflict(message: str) -> ApiError:
    return ApiError(409, message)


def bad(message: str, errors: list[Any] | None = None) -> ApiError:
    return ApiError(400, message, errors)


def unprocessable(message: str, errors: list[Any] | None = None) -> ApiError:
    return ApiError(422, message, errors)


@dataclass
class Deps:
    """What the routes work with, kept in the app's state (``deps(request)``)."""

    runtime: Any  # engine.runtime.Runtime (store, flows, create_execution, restart, replay...)
    indexer: Indexer
    backfills: dict[tuple[str, str, str], Any] = field(default_factory=dict)  # webserver.triggers
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)  # the API's own metrics

    @property
    def store(self) -> Store:
        store: Store = self.runtime.store
        return store


def check_tenant(connection: Any, _: Any) -> None:
    """A guard of the tenant routes: 404 for any tenant but ``TENANT``."""
    tenant = connection.path_params.get("tenant")
    if tenant != TENANT:
        raise not_found(
            f"tenant {str(tenant)[:100]!r} does not exist: this engine has the one tenant {TENANT!r} "
            f"(call {API}/{TENANT}/...)"
        )


def deps(request: Request[Any, Any, Any]) -> Deps:
    d: Deps = request.app.state.deps
    return d


# ---- request bodies ----------------------------------------------------------------------------


def body_operation(
    description: str, media_types: tuple[str, ...], kind: OpenAPIType, required: bool
) -> type[Operation]:
    """An operation documenting a body that litestar cannot infer (the handler reads ``request``)."""

    class BodyOperation(Operation):
        def __post_init__(self) -> None:
            self.request_body = RequestBody(
                content={media: OpenAPIMediaType(schema=Schema(type=kind)) for media in media_types},
                description=description,
                required=required,
            )

    return BodyOperation


def yaml_body(description: str) -> type[Operation]:
    """An operation whose request body is YAML text."""
    return body_operation(description, ("application/x-yaml",), OpenAPIType.STRING, True)


def json_body(description: str, required: bool = False) -> type[Operation]:
    """An operation whose request body is a JSON object or a multipart form."""
    return body_operation(description, (JSON, "multipart/form-data"), OpenAPIType.OBJECT, required)


def with_body(operation: type[Operation], tag: str, status_code: int = 200) -> dict[str, Any]:
    """The route arguments of a handler that reads its own body: the body's documentation
    (``yaml_body``/``json_body``), its tag, and its status (200, where litestar would say 201)."""
    return {"operation_class": operation, "status_code": status_code, "tags": [tag]}


async def read_bytes(request: Request[Any, Any, Any]) -> bytes:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise ApiError(413, f"the body is {len(body)} bytes; the limit is {MAX_BODY}")
    return body


async def read_text(request: Request[Any, Any, Any]) -> str:
    body = await read_bytes(request)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad(f"the body is not UTF-8 text: {exc}") from None


def is_form(request: Request[Any, Any, Any], *kinds: str) -> bool:
    """Whether the request's content type is one of ``kinds`` (default: multipart/form-data)."""
    ctype = request.headers.get("content-type", "")
    return any(ctype.startswith(kind) for kind in kinds or ("multipart/form-data",))


# ---- paging -----------------------------------------------------------------------------------

Page = Annotated[int, QueryParameter(ge=1, le=1_000_000, description="1-based page number")]
Size = Annotated[int, QueryParameter(ge=1, le=1000, description="Results per page")]


# Query parameters several routes take, declared once (same name, same documentation).
NamespaceTree = Annotated[str | None, QueryParameter(description="This namespace and its children")]
FlowIdParam = Annotated[str | None, QueryParameter(name="flowId")]
LabelsParam = Annotated[list[str] | None, QueryParameter(description="key:value (repeat)")]


def page_params(page: int, size: int) -> tuple[int, int]:
    """(limit, offset) of a 1-based page."""
    return size, (page - 1) * size


def page_of(items: list[T], page: int, size: int) -> list[T]:
    """The items of a 1-based page of a list."""
    limit, offset = page_params(page, size)
    return items[offset : offset + limit]


# ---- names --------------------------------------------------------------------------------------

KEY = re.compile(r"^[A-Za-z0-9_.\-/]{1,255}$")
NAMESPACE = re.compile(r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$")


def check_kv(namespace: str, key: str | None = None) -> None:
    """400 unless ``namespace`` (and ``key``) are names the KV store and the file store accept."""
    if not NAMESPACE.match(namespace):
        raise bad(f"namespace {namespace!r}: use letters, digits, _ and - in dot-separated parts")
    if key is not None and (not KEY.match(key) or ".." in key or key.startswith(".") or key.endswith(".")):
        raise bad(f"key {key!r}: use 1-255 letters, digits, _, -, / and single dots inside")


# ---- responses ----------------------------------------------------------------------------------


def raw_json(body: bytes | str, status: int = 200) -> Response[bytes]:
    """JSON already serialized (the projection keeps documents as JSON text)."""
    data = body.encode() if isinstance(body, str) else body
    return Response(content=data, media_type=JSON, status_code=status)


def attachment(data: bytes, name: str, media_type: str = "application/octet-stream") -> Response[bytes]:
    """A download: ``data`` as the file ``name``."""
    return Response(
        content=data,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def download(storage: InternalStorage, name: str, missing: str | None = None) -> Response[bytes]:
    """The stored object ``name`` as a download named after its last path part; 404 when it is not
    there (``missing``, else the storage's own message)."""
    try:
        data = await storage.get(name)
    except StorageError as exc:
        raise not_found(missing or str(exc)) from None
    return attachment(data, name.rsplit("/", 1)[-1])
