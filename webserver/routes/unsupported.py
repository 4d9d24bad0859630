"""Kestra API routes this engine does not build (yet), answered 501 with what to use instead.

Without them a Kestra client's call lands on a neighbouring route and gets a wrong answer (``GET
/flows/export/by-query`` read as the flow ``export.by-query``, ``GET /flows/source`` as the flows of a
namespace called ``source``) or a bare 404/405. The compatibility suite found each one with kestrapy.
Kestra's ``POST /executions/{id}/pause`` and ``/labels`` are not here: they have the shape of ``POST
/executions/{namespace}/{flowId}`` (a flow called ``pause`` must still start).
"""

from __future__ import annotations

from typing import Any

from litestar import HttpMethod, Request, route
from litestar.handlers import HTTPRouteHandler

from webserver.http import ApiError

# (method, path, what it does in Kestra, what to use here)
UNBUILT: list[tuple[HttpMethod, str, str, str]] = [
    (HttpMethod.GET, "/flows/export/by-query", "export flows as a zip", "GET /flows/search and each source"),
    (HttpMethod.GET, "/flows/export/by-ids", "export flows as a zip", "GET /flows/{namespace}/{id}"),
    (HttpMethod.GET, "/flows/source", "search the flows' source code", "GET /flows/search?q=..."),
    (HttpMethod.POST, "/flows/disable/by-query", "disable flows", "`disabled: true` in the flow, saved"),
    (HttpMethod.POST, "/flows/enable/by-query", "enable flows", "`disabled: false` in the flow, saved"),
    (HttpMethod.GET, "/flows/{namespace:str}/{flow_id:str}/graph", "a flow's graph", "GET .../topology"),
    (HttpMethod.GET, "/executions/{execution_id:str}/graph", "an execution's graph", "its flow's topology"),
    (HttpMethod.POST, "/executions/latest", "the latest execution of flows", "GET /executions/search"),
    (
        HttpMethod.POST,
        "/executions/{execution_id:str}/eval/{taskrun_id:str}",
        "evaluate an expression in a taskrun's context",
        "`engine` expressions in a Log task",
    ),
    (HttpMethod.DELETE, "/logs/{execution_id:str}", "delete an execution's logs", "DELETE /executions/{id}"),
]


def _refusal(method: HttpMethod, path: str, what: str, instead: str) -> HTTPRouteHandler:
    async def refuse(request: Request[Any, Any, Any]) -> None:
        hint = "" if instead == "-" else f"; use {instead}"
        shown = path.replace(":str", "")
        raise ApiError(501, f"{method.value} {shown} ({what}) is not supported by this engine{hint}")

    name = "unsupported_" + "".join(c if c.isalnum() else "_" for c in f"{method.value}{path}")
    refuse.__name__ = name
    return route(path, http_method=[method], tags=["Not supported"], status_code=501, name=name)(refuse)


ROUTES = [_refusal(*entry) for entry in UNBUILT]
