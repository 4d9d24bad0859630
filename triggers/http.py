"""``io.kestra.plugin.core.http.Trigger``: poll a URI, start an execution when the response matches.

Every ``interval`` (default PT60S) the trigger sends ``method`` (GET) to ``uri`` with ``headers``,
``params`` and ``body`` (or ``formData``), then renders ``responseCondition`` (default
``{{ response.statusCode < 400 }}``) with ``response.statusCode``, ``response.body`` (text) and
``response.headers`` (name -> list of values). A truthy result (``engine.core.tree.is_truthy``:
anything but blank, ``false``, ``0``, ``-0`` or ``null``) starts an execution whose ``trigger``
holds Kestra's http output: ``uri``, ``code``, ``headers``, ``body`` (and ``statusCode``, the same
as ``code``).

A connection error or a timeout is logged (once per distinct error) and the next poll comes at the
next interval. ``options.connectTimeout``/``readTimeout`` and ``basicAuthUser``/``basicAuthPassword``
are read; ``encryptBody`` and ``sslOptions`` are not supported (a warning once).
"""

from __future__ import annotations

import base64
from typing import Any

import httpx

from engine.core.durations import parse_duration
from engine.core.tree import is_truthy
from engine.logs import get_logger
from plugins.core.trigger_types import HTTP_TRIGGER_TYPES
from triggers.polling import PollContext, PollingError, PollingTrigger, register_polling

log = get_logger("triggers.http")

DEFAULT_CONDITION = "{{ response.statusCode < 400 }}"
MAX_BODY = 10 * 1024 * 1024


def _seconds(value: Any, default: float) -> float:
    if value is None:
        return default
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise PollingError(f"options: {exc}") from None


@register_polling
class HttpTrigger(PollingTrigger):
    types = HTTP_TRIGGER_TYPES

    async def poll(self, ctx: PollContext) -> dict[str, Any] | None:
        raw = {k: v for k, v in self.trigger.props.items() if k not in ("responseCondition", "conditions")}
        props = await ctx.render(raw)
        uri = str(props.get("uri") or "")
        if not uri.startswith(("http://", "https://")):
            raise PollingError(f"uri {uri!r} is not an http(s) URL")
        method = str(props.get("method") or "GET").upper()
        options = dict(props.get("options") or {})
        headers = {str(k): "" if v is None else str(v) for k, v in (props.get("headers") or {}).items()}
        user = options.get("basicAuthUser")
        if user is not None:
            token = base64.b64encode(f"{user}:{options.get('basicAuthPassword') or ''}".encode()).decode()
            headers.setdefault("Authorization", f"Basic {token}")
        kwargs: dict[str, Any] = {"headers": headers}
        if props.get("params"):
            kwargs["params"] = {str(k): str(v) for k, v in props["params"].items()}
        if props.get("formData"):
            kwargs["data"] = {str(k): str(v) for k, v in props["formData"].items()}
        elif props.get("body") is not None:
            kwargs["content"] = str(props["body"]).encode()
            if not any(k.lower() == "content-type" for k in headers):
                headers["Content-Type"] = str(props.get("contentType") or "application/json")
        timeout = httpx.Timeout(
            _seconds(options.get("readTimeout"), 30.0), connect=_seconds(options.get("connectTimeout"), 10.0)
        )
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=True) as client:
            response = await client.request(method, uri, **kwargs)
        raw_body = response.content[:MAX_BODY]
        body = raw_body.decode(response.encoding or "utf-8", errors="replace") if raw_body else None
        response_headers: dict[str, list[str]] = {}
        for name, value in response.headers.raw:
            response_headers.setdefault(name.decode("latin-1"), []).append(value.decode("latin-1"))
        code = response.status_code
        condition = self.trigger.props.get("responseCondition") or DEFAULT_CONDITION
        result = await ctx.render(
            condition, {"response": {"statusCode": code, "body": body, "headers": response_headers}}
        )
        log.debug("triggers.http_polled", trigger=ctx.where, uri=uri, code=code, matched=is_truthy(result))
        if not is_truthy(result):
            return None
        return {"uri": uri, "code": code, "statusCode": code, "headers": response_headers, "body": body}
