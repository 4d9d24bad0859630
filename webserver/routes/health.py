"""``/health``, ``/ready`` and ``/metrics``: what an orchestrator and Prometheus ask.

The first two answer without authentication (``webserver.auth.PUBLIC``).
"""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Request, Response, get
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from eventstore.admin import is_connected
from webserver.http import deps


@get("/health", include_in_schema=True, tags=["Health"])
async def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "UP"}


@get("/ready", tags=["Health"])
async def ready(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """Readiness: NATS is connected and the indexer runs."""
    d = deps(request)
    connected = is_connected(d.store)
    up = connected and d.indexer.started
    return Response(
        {"status": "UP" if up else "DOWN", "nats": connected, "indexer": d.indexer.started},
        status_code=200 if up else 503,
    )


@get("/metrics", media_type=MediaType.TEXT, tags=["Health"])
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Prometheus metrics: the indexer's lag and throughput, API requests."""
    d = deps(request)
    d.indexer.refresh_lag()
    body = generate_latest(d.indexer.registry) + generate_latest(d.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


ROUTES = [health, ready, metrics]
