"""``/api/v1/blueprints``: the ready flows shipped with the engine (``engine blueprints``)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import get
from litestar.params import FromPath, Parameter

from engine.blueprints import BlueprintNotFound, blueprint, search
from webserver.http import not_found


@get("/blueprints", tags=["Blueprints"])
async def blueprints_list(
    q: Annotated[str | None, Parameter(description="Text in the id, title or description")] = None,
    tags: Annotated[
        list[str] | None, Parameter(description="Only blueprints with every one of these tags")
    ] = None,
) -> dict[str, Any]:
    """Every blueprint (Kestra's BlueprintItem: id, title, description, tags, includedTasks)."""
    found = search(q, tags)
    return {"results": [b.summary() for b in found], "total": len(found)}


@get("/blueprints/{blueprint_id:str}", tags=["Blueprints"])
async def blueprints_get(blueprint_id: FromPath[str]) -> dict[str, Any]:
    """One blueprint with its flow's YAML source in ``flow``."""
    try:
        return blueprint(blueprint_id).document()
    except BlueprintNotFound as exc:
        raise not_found(str(exc)) from None


ROUTES = [blueprints_list, blueprints_get]
