"""``/api/v1/flows/{ns}/{id}/topology`` (the flow's graph as SVG, laid out here) and ``/diff`` (two
revisions compared line by line): what the UI's flow and execution pages draw."""

from __future__ import annotations

import difflib
from typing import Annotated, Any

from litestar import Request, Response, get
from litestar.params import FromPath, QueryParameter

from engine.core.errors import FlowValidationError
from engine.loader.loader import load_flow
from webserver.http import deps, not_found, unprocessable
from webserver.topology import topology_svg

Revision = Annotated[int | None, QueryParameter(ge=1, description="A past revision (default: the latest)")]
MAX_DIFF_LINES = 20_000


async def flow_source(
    request: Request[Any, Any, Any], namespace: str, flow_id: str, revision: int | None
) -> str:
    """The source of a deployed flow's latest revision, or of ``revision`` (404 when there is none)."""
    ix = deps(request).indexer
    if revision is None:
        rows = await ix.aquery(
            "SELECT source FROM flows WHERE namespace = ? AND flow_id = ? AND NOT deleted",
            [namespace, flow_id],
        )
        missing = f"flow {namespace}.{flow_id} is not deployed"
    else:
        rows = await ix.aquery(
            "SELECT source FROM flow_revisions WHERE namespace = ? AND flow_id = ? AND revision = ? "
            "AND NOT deleted",
            [namespace, flow_id, revision],
        )
        missing = f"flow {namespace}.{flow_id} has no revision {revision}"
    if not rows:
        raise not_found(missing)
    source: str = rows[0][0]
    return source


@get("/flows/{namespace:str}/{flow_id:str}/topology", tags=["Flows"], media_type="image/svg+xml")
async def flow_topology(
    request: Request[Any, Any, Any],
    namespace: FromPath[str],
    flow_id: FromPath[str],
    revision: Revision = None,
) -> Response[str]:
    """The flow's topology as an SVG image (Dag, Parallel, Switch, ForEach, errors and finally);
    each task is a ``g.node[data-task=ID]``."""
    source = await flow_source(request, namespace, flow_id, revision)
    try:
        flow = load_flow(source)
    except FlowValidationError as exc:
        raise unprocessable(f"the stored source no longer loads: {exc.issues[0]}") from None
    return Response(topology_svg(flow), media_type="image/svg+xml")


@get("/flows/{namespace:str}/{flow_id:str}/diff", tags=["Flows"])
async def flow_diff(
    request: Request[Any, Any, Any],
    namespace: FromPath[str],
    flow_id: FromPath[str],
    from_: Annotated[int, QueryParameter(name="from", ge=1, description="The older revision")],
    to: Annotated[int, QueryParameter(ge=1, description="The newer revision")],
) -> dict[str, Any]:
    """Two revisions' sources compared line by line: ``{from, to, lines: [{op, text}]}``, ``op`` one of
    ``' '`` (kept), ``'-'`` (only in ``from``), ``'+'`` (only in ``to``)."""
    old = (await flow_source(request, namespace, flow_id, from_)).splitlines()[:MAX_DIFF_LINES]
    new = (await flow_source(request, namespace, flow_id, to)).splitlines()[:MAX_DIFF_LINES]
    lines: list[dict[str, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag == "equal":
            lines += [{"op": " ", "text": t} for t in old[i1:i2]]
            continue
        lines += [{"op": "-", "text": t} for t in old[i1:i2]]
        lines += [{"op": "+", "text": t} for t in new[j1:j2]]
    return {"from": from_, "to": to, "lines": lines}


ROUTES = [flow_topology, flow_diff]
