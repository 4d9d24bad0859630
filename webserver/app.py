"""The API server role: ``create_app(runtime, indexer, auth=...)`` and ``serve(runtime, host, port)``.

The app mounts the route modules of ``webserver.routes`` under ``/api/v1/{tenant}/...`` (Kestra's
path; the one tenant is ``main``) and again under ``/api/v1/...`` (an alias, not in the OpenAPI
document), and the service routes (``/health``, ``/ready``, ``/metrics``,
``/api/v1/openapi.json``). Errors are JSON
``{"message": ..., "errors": [...]}`` with a 4xx status for anything the caller can fix;
``webserver.auth`` guards every route but ``/health`` and ``/ready``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

import uvicorn
from litestar import Litestar, Request, Response, Router
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.types import ASGIApp, Receive, Scope, Send
from prometheus_client import Counter

from engine.core.errors import EngineError, PayloadTooLarge
from eventstore.indexer import Indexer
from webserver.auth import Auth, auth_middleware, is_loopback
from webserver.http import API, TENANT_API, Deps, check_tenant
from webserver.routes import (
    backfills,
    blueprints,
    bulk,
    executions,
    files,
    flows,
    health,
    history,
    kv,
    logs,
    metrics,
    openapi,
    outputs,
    stats,
    topology,
    triggers,
    unsupported,
    webhook,
)
from webserver.triggers import stop_backfills
from webserver.ui import ui_routes

__all__ = ["Auth", "create_app", "is_loopback", "openapi_schema", "serve"]

log = logging.getLogger(__name__)

# In this order, the OpenAPI document lists the paths as it always has.
API_ROUTES = [
    *flows.ROUTES,
    *topology.ROUTES,
    *executions.ROUTES,
    *history.ROUTES,
    *logs.ROUTES,
    *kv.ROUTES,
    *stats.ROUTES,
    *triggers.ROUTES,
    *backfills.ROUTES,
    *files.ROUTES,
    *webhook.ROUTES,
    *unsupported.ROUTES,
    *metrics.ROUTES,
    *outputs.ROUTES,
    *bulk.ROUTES,
    *blueprints.ROUTES,
]


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
    if isinstance(exc, PayloadTooLarge):  # e.g. inputs too large to store
        return Response({"message": str(exc)}, status_code=413)
    if isinstance(exc, EngineError):
        return Response({"message": str(exc)}, status_code=400)
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return Response(
        {"message": f"internal error ({type(exc).__name__}): the server log has the details"}, status_code=500
    )


def counting(deps: Deps) -> Any:
    """A middleware counting the responses by status class (``engine_api_requests``)."""
    requests = Counter(
        "engine_api_requests", "API requests by status class", ["status"], registry=deps.registry
    )

    def count(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            async def counting_send(message: Any) -> None:
                if message["type"] == "http.response.start":
                    requests.labels(status=f"{message['status'] // 100}xx").inc()
                await send(message)

            await app(scope, receive, counting_send)

        return middleware

    return count


def create_app(
    runtime: Any,
    indexer: Indexer,
    auth: Auth | None = None,
    *,
    cors_origins: list[str] | None = None,
) -> Litestar:
    """The ASGI app: ``/api/v1/...``, ``/api/v1/openapi.json``, ``/metrics``, ``/health``, ``/ready``."""
    auth = auth if auth is not None else Auth()
    deps = Deps(runtime, indexer)
    # The same handlers twice: under the tenant (documented) and under the alias without it.
    tenant_api = Router(path=TENANT_API, route_handlers=API_ROUTES, guards=[check_tenant])
    alias_api = Router(path=API, route_handlers=API_ROUTES, include_in_schema=False)
    litestar_app = Litestar(
        route_handlers=[tenant_api, alias_api, *health.ROUTES, *openapi.ROUTES, *ui_routes()],
        state=State({"deps": deps}),
        middleware=[counting(deps), auth_middleware(auth)],
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
            await stop_backfills(app.state.deps)
    finally:
        await indexer.stop()
