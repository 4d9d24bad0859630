"""Kestra's Webhook trigger: ``/api/v1/executions/webhook/{namespace}/{flowId}/{key}`` starts an execution.

The request's body (JSON when it parses, else text), headers and query parameters become
``trigger.body``, ``trigger.headers`` and ``trigger.parameters``. With the trigger's ``wait``
the answer comes when the execution ends (``returnOutputs``: only its outputs).
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from litestar import Request, route
from litestar.params import FromPath

from engine.core.errors import FlowNotFound, InputError
from engine.core.shape import execution_json
from engine.expressions import Expressions
from engine.ids import new_execution_id
from engine.inputs import resolve_inputs
from webserver.http import deps, not_found, read_bytes, unprocessable

WEBHOOK = "io.kestra.plugin.core.trigger.Webhook"


def _multi(items: Any) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in items:
        out.setdefault(str(key).lower() if isinstance(key, str) else str(key), []).append(str(value))
    return out


@route(
    "/executions/webhook/{namespace:str}/{flow_id:str}/{key:str}",
    http_method=["GET", "POST", "PUT"],
    status_code=200,
    tags=["Executions"],
)
async def webhook(
    request: Request[Any, Any, Any], namespace: FromPath[str], flow_id: FromPath[str], key: FromPath[str]
) -> Any:
    """Start an execution of the flow whose Webhook trigger has this `key`."""
    d = deps(request)
    try:
        flow = await d.runtime.flows.get(namespace, flow_id)
    except FlowNotFound as exc:
        raise not_found(str(exc)) from None
    trigger = next(
        (
            t
            for t in flow.triggers
            if t.type == WEBHOOK
            and not t.disabled
            and hmac.compare_digest(str(t.props.get("key")).encode(), key.encode())
        ),
        None,
    )
    if trigger is None or flow.disabled:
        raise not_found(f"flow {namespace}.{flow_id} has no enabled Webhook trigger with this key")
    raw = await read_bytes(request)
    text = raw.decode(errors="replace")
    try:
        body: Any = json.loads(text) if text else None
    except ValueError:
        body = text
    variables = {
        "body": body,
        "headers": _multi(request.headers.items()),
        "parameters": _multi(request.query_params.multi_items()),
    }
    record = {"id": trigger.id, "type": trigger.type, "variables": variables}
    try:
        inputs = resolve_inputs(flow, dict(trigger.props.get("inputs") or {}), Expressions().render)
    except InputError as exc:
        raise unprocessable(str(exc)) from None
    execution_id = new_execution_id()

    async def start() -> None:
        await d.runtime.create_execution(flow, inputs, execution_id=execution_id, trigger=record, fresh=True)

    if str(trigger.props.get("wait", "false")).lower() == "true":
        state = await d.runtime.wait_terminal(execution_id, on_start=start, timeout=300)
        if str(trigger.props.get("returnOutputs", "false")).lower() == "true":
            return state.outputs or {}
        return execution_json(state)
    await start()
    return {"id": execution_id, "namespace": flow.namespace, "flowId": flow.id, "trigger": record}


ROUTES = [webhook]
