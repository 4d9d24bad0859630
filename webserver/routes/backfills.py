"""``/api/v1/triggers/backfill``: pause, resume and cancel the backfill of Schedule triggers.

A backfill is started with ``PUT /api/v1/triggers`` (``webserver.routes.triggers``); its record
is in ``KV_triggers`` and any process (scheduler or API) advances it.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, post, put
from litestar.handlers import HTTPRouteHandler
from litestar.params import JSONBody

from triggers.backfill import BackfillError
from webserver.http import ApiError, Deps, deps
from webserver.triggers import TriggerRef, backfill_action, find_trigger, one_context


async def _on_backfill(request: Request[Any, Any, Any], data: TriggerRef, action: str) -> dict[str, Any]:
    d = deps(request)
    ft = await find_trigger(d, data.namespace, data.flow_id, data.trigger_id)
    await backfill_action(d, ft, action)
    return await one_context(d, ft)


@put("/triggers/backfill/pause", status_code=200, tags=["Triggers"])
async def pause_backfill_route(request: Request[Any, Any, Any], data: JSONBody[TriggerRef]) -> dict[str, Any]:
    """Pause the backfill of a trigger: no new slot until unpaused (running executions run on)."""
    return await _on_backfill(request, data, "pause")


@put("/triggers/backfill/unpause", status_code=200, tags=["Triggers"])
async def unpause_backfill_route(
    request: Request[Any, Any, Any], data: JSONBody[TriggerRef]
) -> dict[str, Any]:
    """Resume a paused backfill."""
    return await _on_backfill(request, data, "unpause")


@post("/triggers/backfill/delete", status_code=200, tags=["Triggers"])
async def delete_backfill_route(
    request: Request[Any, Any, Any], data: JSONBody[TriggerRef]
) -> dict[str, Any]:
    """Cancel the backfill of a trigger: no new slot is ever created (created executions run on)."""
    return await _on_backfill(request, data, "delete")


async def _bulk(d: Deps, refs: list[TriggerRef], action: str) -> dict[str, int]:
    """Like Kestra's by-triggers routes: triggers without a backfill in that state are skipped."""
    count = 0
    for ref in refs:
        ft = await find_trigger(d, ref.namespace, ref.flow_id, ref.trigger_id)
        try:
            await backfill_action(d, ft, action)
        except ApiError as exc:
            if exc.status_code in (400, 409, 422):
                continue
            raise
        except BackfillError:
            continue
        count += 1
    return {"count": count}


def bulk_route(action: str, name: str, doc: str) -> HTTPRouteHandler:
    """``POST /triggers/backfill/{action}/by-triggers`` (the handler's name and doc are its OpenAPI
    operation id and description, as for a handler written out)."""

    async def handler(request: Request[Any, Any, Any], data: JSONBody[list[TriggerRef]]) -> dict[str, int]:
        return await _bulk(deps(request), data, action)

    handler.__name__ = handler.__qualname__ = name
    handler.__doc__ = doc
    return post(f"/triggers/backfill/{action}/by-triggers", status_code=200, tags=["Triggers"])(handler)


pause_backfills = bulk_route(
    "pause", "pause_backfills", "Pause the backfills of the listed triggers: ``{count}`` paused."
)
unpause_backfills = bulk_route(
    "unpause", "unpause_backfills", "Resume the backfills of the listed triggers: ``{count}`` resumed."
)
delete_backfills = bulk_route(
    "delete", "delete_backfills", "Cancel the backfills of the listed triggers: ``{count}`` cancelled."
)


ROUTES = [
    pause_backfill_route,
    unpause_backfill_route,
    delete_backfill_route,
    pause_backfills,
    unpause_backfills,
    delete_backfills,
]
