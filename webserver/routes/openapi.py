"""``/api/v1/openapi.json``: the OpenAPI 3.1 document of the running app."""

from __future__ import annotations

from typing import Any

from litestar import Request, get

from webserver.http import API


@get(f"{API}/openapi.json", include_in_schema=False)
async def openapi_json(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The OpenAPI 3.1 document (Swagger UI: /api/schema/swagger)."""
    schema: dict[str, Any] = request.app.openapi_schema.to_schema()
    return schema


ROUTES = [openapi_json]
