"""The CLI's client of a remote engine API (``--server URL`` / ``ENGINE_SERVER``), over httpx.

Every answer is the API's JSON (Kestra's shapes: an execution is ``execution_json``'s document,
a log line is ``{timestamp, level, taskId, message, ...}``), so the CLI prints local and remote
results with the same code. An error answer becomes ``RemoteError`` with the server's message,
the method, the path and the status: one line the user can act on.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from engine.core.errors import EngineError

TERMINAL = frozenset({"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "SKIPPED", "RETRIED"})


class RemoteError(EngineError):
    """The remote API refused a request, or could not be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def _p(part: str) -> str:
    return quote(part, safe="")


class RemoteEngine:
    """``async with RemoteEngine(url, token) as api: await api.execution(id)``."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 30.0) -> None:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RemoteError(f"--server {url!r}: expected an http(s) URL such as http://127.0.0.1:8080")
        self.url = url.rstrip("/")
        base = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
        if base.endswith("/api/v1"):
            base = base[: -len("/api/v1")]
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        # user:password@ in the URL is basic auth (httpx reads it)
        self.client = httpx.AsyncClient(base_url=base, headers=headers, timeout=timeout)

    async def __aenter__(self) -> RemoteEngine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()

    # ---- plumbing ------------------------------------------------------------------------------

    async def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        url = f"/api/v1{path}"
        try:
            response = await self.client.request(method, url, **kw)
        except httpx.TimeoutException:
            raise RemoteError(f"the engine API at {self.url} did not answer {method} {url} in time") from None
        except httpx.HTTPError as exc:
            raise RemoteError(
                f"cannot reach the engine API at {self.url} ({exc or type(exc).__name__}): "
                "check --server / ENGINE_SERVER and that `engine server local` (or webserver) runs there"
            ) from None
        if response.status_code >= 400:
            raise RemoteError(self._message(method, url, response), response.status_code)
        return response

    @staticmethod
    def _message(method: str, url: str, response: httpx.Response) -> str:
        status = response.status_code
        try:
            body = response.json()
            text = str(body.get("message") or body) if isinstance(body, dict) else str(body)
        except ValueError:
            text = response.text.strip()[:300] or response.reason_phrase
        if status == 401:
            text += " (pass --token or ENGINE_TOKEN, or user:password@ in --server)"
        return f"server refused {method} {url}: {' '.join(text.split())} (HTTP {status})"

    async def get_json(self, path: str, **kw: Any) -> Any:
        return (await self.request("GET", path, **kw)).json()

    # ---- executions ----------------------------------------------------------------------------

    async def execution(self, execution_id: str) -> dict[str, Any]:
        doc: dict[str, Any] = await self.get_json(f"/executions/{_p(execution_id)}")
        return doc

    async def executions(
        self, namespace: str | None, flow_id: str | None, limit: int
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"size": min(max(limit, 1), 1000), "sort": "state.startDate:desc"}
        if namespace:
            params["namespace"] = namespace
        if flow_id:
            params["flowId"] = flow_id
        body = await self.get_json("/executions/search", params=params)
        results: list[dict[str, Any]] = body["results"][:limit]
        return results

    async def kill(self, execution_id: str) -> None:
        await self.request("DELETE", f"/executions/{_p(execution_id)}/kill")

    async def resume(self, execution_id: str, inputs: dict[str, Any]) -> None:
        await self.request("POST", f"/executions/{_p(execution_id)}/resume", json=inputs)

    async def restart(self, execution_id: str) -> None:
        await self.request("POST", f"/executions/{_p(execution_id)}/restart")

    async def replay(self, execution_id: str, taskrun: str | None, revision: int | None) -> str:
        params: dict[str, Any] = {}
        if taskrun:
            params["taskRunId"] = taskrun
        if revision is not None:
            params["revision"] = revision
        body = await self.get_json_post(f"/executions/{_p(execution_id)}/replay", params=params)
        return str(body["id"])

    async def get_json_post(self, path: str, **kw: Any) -> Any:
        return (await self.request("POST", path, **kw)).json()

    async def wait_change(self, execution_id: str, histories: int, timeout: float = 30.0) -> dict[str, Any]:
        """The execution once it has more than ``histories`` state changes (a command took effect)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                doc = await self.execution(execution_id)
                if len(doc["state"]["histories"]) > histories:
                    return doc
            except RemoteError as exc:
                if exc.status != 404:
                    raise
            if loop.time() > deadline:
                raise RemoteError(
                    f"execution {execution_id} did not change within {timeout:g}s of the command: "
                    "is an executor running on the server?"
                )
            await asyncio.sleep(0.1)

    async def wait_terminal(self, execution_id: str, timeout: float | None = None) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            doc = await self.execution(execution_id)
            if doc["state"]["current"] in TERMINAL:
                return doc
            if deadline is not None and loop.time() > deadline:
                raise TimeoutError
            await asyncio.sleep(0.1)

    # ---- logs ------------------------------------------------------------------------------------

    async def logs(self, execution_id: str) -> list[dict[str, Any]]:
        # Kestra's shape: every line of the execution, as a list
        lines: list[dict[str, Any]] = await self.get_json(f"/logs/{_p(execution_id)}")
        return lines

    async def follow_logs(self, execution_id: str) -> AsyncIterator[dict[str, Any]]:
        """Every log line from the first, live, until the execution ends (Server-Sent Events)."""
        url = f"/api/v1/logs/{_p(execution_id)}/follow"
        try:
            async with self.client.stream("GET", url, timeout=httpx.Timeout(30.0, read=None)) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise RemoteError(self._message("GET", url, response), response.status_code)
                data: list[str] = []
                async for line in response.aiter_lines():
                    if line.startswith("data:"):
                        data.append(line[5:].lstrip(" "))
                    elif not line and data:
                        yield json.loads("\n".join(data))
                        data = []
        except httpx.HTTPError as exc:
            raise RemoteError(f"lost the log stream of {execution_id} from {self.url}: {exc}") from None

    # ---- flows -------------------------------------------------------------------------------------

    async def flow_source(self, namespace: str, flow_id: str) -> str | None:
        """The deployed source of a flow, or None when it is not deployed."""
        try:
            doc = await self.get_json(f"/flows/{_p(namespace)}/{_p(flow_id)}")
        except RemoteError as exc:
            if exc.status == 404:
                return None
            raise
        return str(doc.get("source") or "")

    async def deploy_flow(self, source: str, namespace: str, flow_id: str, exists: bool) -> int:
        """Save a flow: create it (POST), or a new revision of one that ``exists`` (PUT; a POST of
        an existing flow is a conflict); returns its revision."""
        headers = {"content-type": "application/x-yaml"}
        if exists:
            path = f"/flows/{_p(namespace)}/{_p(flow_id)}"
            body = (await self.request("PUT", path, content=source.encode(), headers=headers)).json()
        else:
            body = await self.get_json_post("/flows", content=source.encode(), headers=headers)
        return int(body["revision"])
