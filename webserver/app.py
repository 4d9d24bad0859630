"""The API server role: ``create_app(runtime, indexer, auth=...)`` and ``serve(runtime, host, port)``.

Errors are JSON ``{"message": ..., "errors": [...]}`` with a 4xx status for anything the caller
can fix. Basic auth and/or bearer API tokens (``Auth.from_env``) guard every route but
``/health`` and ``/ready``; binding a non-loopback address without auth is refused.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import ipaddress
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from litestar import Litestar, MediaType, Request, Response, Router, get
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.types import ASGIApp, Receive, Scope, Send
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

from engine.core.errors import EngineError
from eventstore.indexer import Indexer
from webserver.api import Deps, all_routes

log = logging.getLogger(__name__)

API = "/api/v1"
PUBLIC = frozenset({"/health", "/ready"})


@dataclass(frozen=True)
class Auth:
    """Who may call the API: basic-auth users and/or bearer tokens. Empty = no auth (loopback only)."""

    users: Mapping[str, str] = field(default_factory=dict)
    tokens: frozenset[str] = frozenset()

    @property
    def enabled(self) -> bool:
        return bool(self.users or self.tokens)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Auth:
        """``ENGINE_API_USER`` + ``ENGINE_API_PASSWORD`` (basic auth), ``ENGINE_API_TOKENS`` (comma list)."""
        env = os.environ if env is None else env
        users = {}
        user, password = env.get("ENGINE_API_USER"), env.get("ENGINE_API_PASSWORD")
        if user and password:
            users[user] = password
        elif user or password:
            raise EngineError("set both ENGINE_API_USER and ENGINE_API_PASSWORD for basic auth (or neither)")
        tokens = frozenset(t.strip() for t in env.get("ENGINE_API_TOKENS", "").split(",") if t.strip())
        return cls(users, tokens)

    def check(self, header: str | None) -> bool:
        if not self.enabled:
            return True
        if not header:
            return False
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer":
            return any(hmac.compare_digest(value.encode(), t.encode()) for t in self.tokens)
        if scheme.lower() == "basic" and self.users:
            try:
                user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
            expected = self.users.get(user)
            return expected is not None and hmac.compare_digest(password.encode(), expected.encode())
        return False


def auth_middleware(auth: Auth) -> Any:
    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Any, receive: Receive, send: Any) -> None:
            if scope["type"] != "http" or not auth.enabled or scope["path"] in PUBLIC:
                await app(scope, receive, send)
                return
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            if auth.check(headers.get("authorization")):
                await app(scope, receive, send)
                return
            schemes = (["Basic"] if auth.users else []) + (["Bearer"] if auth.tokens else [])
            body = (
                b'{"message":"authentication required: send Authorization: '
                + " or ".join(schemes).encode()
                + b' credentials (ENGINE_API_USER/ENGINE_API_PASSWORD or ENGINE_API_TOKENS)"}'
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"www-authenticate", f'{schemes[0]} realm="engine"'.encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})

        return middleware

    return factory


def _error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if isinstance(exc, HTTPException):
        body: dict[str, Any] = {"message": str(exc.detail)}
        extra = exc.extra
        if isinstance(extra, dict) and extra.get("errors"):
            body["errors"] = extra["errors"]
        elif isinstance(extra, list) and extra:  # litestar's validation errors
            body["errors"] = extra
            fields = ", ".join(str(e.get("key")) for e in extra if isinstance(e, dict) and e.get("key"))
            if fields:
                body["message"] = f"{exc.detail} (check: {fields})"
        return Response(body, status_code=exc.status_code, headers=exc.headers or None)
    if isinstance(exc, EngineError):
        return Response({"message": str(exc)}, status_code=400)
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return Response(
        {"message": f"internal error ({type(exc).__name__}): the server log has the details"}, status_code=500
    )


def create_app(
    runtime: Any,
    indexer: Indexer,
    auth: Auth | None = None,
    *,
    cors_origins: list[str] | None = None,
) -> Litestar:
    """The ASGI app: ``/api/v1/...``, ``/api/v1/openapi.json``, ``/metrics``, ``/health``, ``/ready``."""
    auth = auth if auth is not None else Auth()
    registry = CollectorRegistry()
    requests = Counter("engine_api_requests", "API requests by status class", ["status"], registry=registry)

    @get("/health", include_in_schema=True, tags=["Health"])
    async def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "UP"}

    @get("/ready", tags=["Health"])
    async def ready() -> Response[dict[str, Any]]:
        """Readiness: NATS is connected and the indexer runs."""
        connected = runtime.store.nc.is_connected
        up = connected and indexer.started
        return Response(
            {"status": "UP" if up else "DOWN", "nats": connected, "indexer": indexer.started},
            status_code=200 if up else 503,
        )

    @get("/metrics", media_type=MediaType.TEXT, tags=["Health"])
    async def metrics() -> Response[bytes]:
        """Prometheus metrics: the indexer's lag and throughput, API requests."""
        indexer.refresh_lag()
        body = generate_latest(indexer.registry) + generate_latest(registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    def count(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            async def counting_send(message: Any) -> None:
                if message["type"] == "http.response.start":
                    requests.labels(status=f"{message['status'] // 100}xx").inc()
                await send(message)

            await app(scope, receive, counting_send)

        return middleware

    @get(f"{API}/openapi.json", include_in_schema=False)
    async def openapi_json(request: Request[Any, Any, Any]) -> dict[str, Any]:
        """The OpenAPI 3.1 document (Swagger UI: /api/schema/swagger)."""
        schema: dict[str, Any] = request.app.openapi_schema.to_schema()
        return schema

    api = Router(path=API, route_handlers=all_routes())
    litestar_app = Litestar(
        route_handlers=[api, health, ready, metrics, openapi_json],
        state=State({"deps": Deps(runtime, indexer)}),
        middleware=[count, auth_middleware(auth)],
        exception_handlers={Exception: _error},
        cors_config=CORSConfig(allow_origins=cors_origins) if cors_origins else None,
        openapi_config=OpenAPIConfig(
            title="engine",
            version="1",
            description="Kestra-shaped REST API of the event-sourced engine",
            path="/api/schema",
            render_plugins=[SwaggerRenderPlugin(path="/swagger")],
        ),
        request_max_body_size=10 * 1024 * 1024,
        logging_config=None,
        debug=False,
    )
    return litestar_app


def openapi_schema(app: Litestar | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document (no server needed: ``python -m webserver openapi``)."""
    if app is None:
        app = create_app(None, None)  # type: ignore[arg-type]  # handlers never run here
    schema: dict[str, Any] = app.openapi_schema.to_schema()
    return schema


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def serve(
    runtime: Any,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    auth: Auth | None = None,
    index_path: Path | None = None,
    started: asyncio.Event | None = None,
) -> None:
    """Run the indexer and the API until cancelled (the runtime is entered by the caller)."""
    import uvicorn

    auth = auth if auth is not None else Auth.from_env()
    if not is_loopback(host) and not auth.enabled:
        raise EngineError(
            f"refusing to listen on {host} without authentication: set ENGINE_API_TOKENS, or "
            "ENGINE_API_USER and ENGINE_API_PASSWORD (or bind 127.0.0.1)"
        )
    indexer = Indexer(runtime.store, index_path or Path(runtime.home) / "index.duckdb")
    await indexer.start()
    try:
        app = create_app(runtime, indexer, auth)
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        # The caller owns the signals (the CLI cancels this coroutine on SIGINT/SIGTERM).
        setattr(server, "capture_signals", contextlib.nullcontext)  # noqa: B010
        task = asyncio.create_task(server.serve())
        if started is not None:
            while not server.started and not task.done():
                await asyncio.sleep(0.01)
            started.set()
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 5)
            raise
        finally:
            from webserver.triggers import stop_backfills

            await stop_backfills(app.state.deps)
    finally:
        await indexer.stop()
