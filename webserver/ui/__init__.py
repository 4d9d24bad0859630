"""The web UI: server-rendered page shells at ``/`` and ``/ui/...`` whose ES modules
(``webserver/ui/static``) read and act through the REST API only (no second data path).

The editor is CodeMirror 5, served from ``node_modules/codemirror`` when ``npm ci`` installed it
(pinned by ``package-lock.json``); without it the editor page is a textarea with a line gutter that
marks the problems, and says how to get the full editor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Request, Response, get
from litestar.datastructures import CacheControlHeader
from litestar.params import FromPath
from litestar.static_files import create_static_files_router

from webserver.ui.shell import page

STATIC = Path(__file__).parent / "static"
# The checkout's node_modules (``npm ci`` at the project root): the pinned editor component.
CODEMIRROR = Path(__file__).resolve().parents[2] / "node_modules" / "codemirror"


def editor_available() -> bool:
    return (CODEMIRROR / "lib" / "codemirror.js").is_file()


HTML = "text/html"


def _html(body: str) -> Response[str]:
    return Response(body, media_type=HTML, headers={"Cache-Control": "no-store"})


@get("/", include_in_schema=False)
async def home() -> Response[str]:
    return _html(page("dashboard", "Dashboard"))


@get("/ui", include_in_schema=False)
async def ui_root() -> Response[str]:
    return _html(page("dashboard", "Dashboard"))


@get("/ui/flows", include_in_schema=False)
async def flows_page() -> Response[str]:
    return _html(page("flows", "Flows"))


@get("/ui/flows/new", include_in_schema=False)
async def new_flow_page(request: Request[Any, Any, Any]) -> Response[str]:
    return _html(page("editor", "New flow", editor=_editor_kind(request)))


@get("/ui/flows/{namespace:str}/{flow_id:str}", include_in_schema=False)
async def flow_page(namespace: FromPath[str], flow_id: FromPath[str]) -> Response[str]:
    return _html(page("flow", f"{namespace}.{flow_id}", ns=namespace, flow=flow_id))


@get("/ui/flows/{namespace:str}/{flow_id:str}/edit", include_in_schema=False)
async def edit_flow_page(
    request: Request[Any, Any, Any], namespace: FromPath[str], flow_id: FromPath[str]
) -> Response[str]:
    return _html(
        page(
            "editor", f"Edit {namespace}.{flow_id}", ns=namespace, flow=flow_id, editor=_editor_kind(request)
        )
    )


@get("/ui/flows/{namespace:str}/{flow_id:str}/execute", include_in_schema=False)
async def execute_page(namespace: FromPath[str], flow_id: FromPath[str]) -> Response[str]:
    return _html(page("execute", f"Execute {namespace}.{flow_id}", ns=namespace, flow=flow_id))


@get("/ui/executions", include_in_schema=False)
async def executions_page() -> Response[str]:
    return _html(page("executions", "Executions"))


@get("/ui/executions/{execution_id:str}", include_in_schema=False)
async def execution_page(execution_id: FromPath[str]) -> Response[str]:
    return _html(page("execution", f"Execution {execution_id}", id=execution_id))


@get("/ui/triggers", include_in_schema=False)
async def triggers_page() -> Response[str]:
    return _html(page("triggers", "Triggers and backfills"))


@get("/ui/kv", include_in_schema=False)
async def kv_page() -> Response[str]:
    return _html(page("kv", "KV store"))


@get("/ui/files", include_in_schema=False)
async def files_page() -> Response[str]:
    return _html(page("files", "Namespace files"))


def _editor_kind(request: Request[Any, Any, Any]) -> str:
    """``codemirror`` when the asset is installed, else ``plain`` (also on ``?editor=plain``)."""
    if request.query_params.get("editor") == "plain" or not editor_available():
        return "plain"
    return "codemirror"


def ui_routes() -> list[Any]:
    """The pages, the UI's own modules, and the editor component when it is installed."""
    cache = CacheControlHeader(max_age=300)
    routes: list[Any] = [
        home,
        ui_root,
        flows_page,
        new_flow_page,
        flow_page,
        edit_flow_page,
        execute_page,
        executions_page,
        execution_page,
        triggers_page,
        kv_page,
        files_page,
        create_static_files_router("/ui/static", [STATIC], name="ui-static", cache_control=cache),
    ]
    if editor_available():
        routes.append(
            create_static_files_router(
                "/ui/vendor/codemirror", [CODEMIRROR], name="ui-codemirror", cache_control=cache
            )
        )
    return routes


__all__ = ["editor_available", "ui_routes"]
