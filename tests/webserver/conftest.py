"""An in-process engine (executor + worker), the indexer and the API app on the session nats-server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from eventstore.indexer import Indexer
from webserver.app import Auth, create_app


def asgi_client(app: Any) -> httpx.AsyncClient:
    """An HTTP client calling the app in this event loop (the app shares the test's NATS connection)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1")


@dataclass
class Api:
    rt: Any
    indexer: Indexer
    client: httpx.AsyncClient
    ns: str

    async def settle(self) -> None:
        assert await self.indexer.wait_caught_up(15), "the indexer did not catch up"

    async def wait_state(self, execution_id: str, *states: str, timeout: float = 15) -> dict[str, Any]:
        placeholders = ", ".join("?" for _ in states)
        ok = await self.indexer.wait_for(
            f"SELECT 1 FROM executions WHERE id = ? AND state IN ({placeholders})",
            [execution_id, *states],
            timeout,
        )
        r = await self.client.get(f"/api/v1/executions/{execution_id}")
        assert ok, f"execution {execution_id} never reached {states}: {r.text[:500]}"
        doc: dict[str, Any] = r.json()
        return doc

    async def deploy(self, source: str) -> dict[str, Any]:
        """Create the flow, or update it when it exists (POST answers 409 then, as in Kestra)."""
        headers = {"content-type": "application/x-yaml"}
        r = await self.client.post("/api/v1/flows", content=source, headers=headers)
        if r.status_code == 409:
            doc = yaml.safe_load(source)
            path = f"/api/v1/flows/{doc['namespace']}/{doc['id']}"
            r = await self.client.put(path, content=source, headers=headers)
        assert r.status_code == 200, r.text
        doc: dict[str, Any] = r.json()
        return doc


@pytest.fixture
async def api(nats_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    from engine.runtime import Runtime

    async with Runtime(nats_url=nats_url, home=tmp_path / "home") as rt:
        roles = [asyncio.create_task(rt.executor().run()), asyncio.create_task(rt.worker().run())]
        indexer = Indexer(rt.store, tmp_path / "index.duckdb")
        await indexer.start()
        app = create_app(rt, indexer, Auth())
        try:
            async with asgi_client(app) as client:
                yield Api(rt, indexer, client, f"api.t{uuid.uuid4().hex[:10]}")
        finally:
            from webserver.triggers import stop_backfills

            await stop_backfills(app.state.deps)
            await indexer.stop()
            for task in roles:
                task.cancel()
            await asyncio.gather(*roles, return_exceptions=True)
