"""Property: no request built from our own OpenAPI document makes the API answer 5xx.

Hypothesis draws an operation of ``/api/v1/openapi.json`` and values for its path, query and
header parameters (typed per schema, or hostile text) and a body; every answer must be below
500 and, when an error, JSON with a ``message``. The API runs on an event loop in a thread of
its own (hypothesis tests are synchronous), against the session nats-server.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventstore.indexer import Indexer
from webserver.app import Auth, create_app, openapi_schema

SPEC = openapi_schema()
STATUSES: dict[int, int] = {}  # answers seen (a failing run prints them)
OPERATIONS = sorted(
    (path, method, op)
    for path, item in SPEC["paths"].items()
    for method, op in item.items()
    if method in ("get", "post", "put", "delete") and not path.endswith("/follow")
)

hostile = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=0, max_size=30
)
names = st.sampled_from(["api.fuzz", "api.fuzz.sub", "hello", "a..b", "x y", "%", "..", "é", "0"])


def value_for(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    kinds = schema.get("type")
    if "oneOf" in schema:
        kinds = [s.get("type") for s in schema["oneOf"]]
    kinds = kinds if isinstance(kinds, list) else [kinds]
    options: list[st.SearchStrategy[Any]] = [hostile]
    if "integer" in kinds:
        options.append(st.integers(min_value=-3, max_value=2_000_000))
    if "boolean" in kinds:
        options.append(st.booleans())
    if "array" in kinds:
        options.append(st.lists(st.one_of(hostile, st.just("team:data"), st.just("SUCCESS")), max_size=3))
    if "string" in kinds:
        options += [names, st.sampled_from(["PT1H", "2026-01-01T00:00:00Z", "state.startDate:asc", "WARN"])]
    return st.one_of(options)


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, dict[str, Any], dict[str, str], bytes]:
    path, method, op = draw(st.sampled_from(OPERATIONS))
    query: dict[str, Any] = {}
    headers: dict[str, str] = {}
    for param in op.get("parameters", []):
        if not param.get("required") and draw(st.booleans()):
            continue
        value = draw(value_for(param.get("schema", {})))
        where = param["in"]
        if where == "path" and param["name"] == "tenant":  # the one tenant, or one that is not
            path = path.replace("{tenant}", draw(st.sampled_from(["main", "main", "main", "other"])))
        elif where == "path":
            text = str(value).replace("/", "_") or "x"
            path = path.replace("{" + param["name"] + "}", quote(text, safe=""))
        elif where == "query":
            query[param["name"]] = value
        elif where == "header":
            headers[param["name"]] = "".join(c for c in str(value) if 32 <= ord(c) < 127)
    body = b""
    if "requestBody" in op:
        content = op["requestBody"].get("content", {})
        ctype = draw(st.sampled_from(sorted(content) or ["application/json"]))
        if ctype != "multipart/form-data":  # httpx builds multipart itself; text bodies cover the parser
            headers["content-type"] = ctype
        body = draw(
            st.one_of(
                hostile.map(str.encode),
                st.sampled_from(
                    [
                        b"id: f\nnamespace: api.fuzz\ntasks:\n  - id: a\n"
                        b"    type: io.kestra.plugin.core.log.Log\n    message: hi\n",
                        b'{"name": 1}',
                        b"[]",
                        b"---\n---\n",
                        b'{"startDate": "2026-01-01T00:00:00Z"}',
                        b"\xff\xfe",
                    ]
                ),
            )
        )
    return method, path, query, headers, body


class LoopThread:
    """The API and its engine on an event loop in a background thread."""

    def __init__(self, nats_url: str, home: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.nats_url, self.home = nats_url, home
        self.call(self._start())

    def call(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _start(self) -> None:
        from engine.runtime import Runtime

        self.rt = Runtime(nats_url=self.nats_url, home=self.home)
        await self.rt.__aenter__()
        self.indexer = Indexer(self.rt.store, self.home / "fuzz.duckdb")
        await self.indexer.start()
        app = create_app(self.rt, self.indexer, Auth())
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1")

    async def _stop(self) -> None:
        await self.client.aclose()
        await self.indexer.stop()
        await self.rt.__aexit__(None, None, None)

    def close(self) -> None:
        try:
            self.call(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


@pytest.fixture
def served(nats_url: str, tmp_path: Path) -> Iterator[LoopThread]:
    lt = LoopThread(nats_url, tmp_path)
    try:
        yield lt
    finally:
        lt.close()


def test_operations_cover_the_api() -> None:
    paths = {p for p, _, _ in OPERATIONS}
    assert "/api/v1/{tenant}/executions/search" in paths
    assert "/api/v1/{tenant}/namespaces/{namespace}/kv/{key}" in paths
    assert len(OPERATIONS) >= 30


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
@given(req=requests())
def test_no_request_from_the_openapi_document_gets_a_5xx(
    served: LoopThread, req: tuple[str, str, dict[str, Any], dict[str, str], bytes]
) -> None:
    method, path, query, headers, body = req
    if method == "post" and path.startswith("/api/v1/executions/") and query.get("wait") is True:
        query["wait"] = False  # a real execution of a fuzzed flow could run for long
    response = served.call(
        served.client.request(method.upper(), path, params=query, headers=headers, content=body or None)
    )
    STATUSES[response.status_code] = STATUSES.get(response.status_code, 0) + 1
    refused = response.status_code == 501 and "not supported by this engine" in response.text  # unbuilt route
    assert response.status_code < 500 or refused, (method, path, query, headers, body, response.text[:500])
    if response.status_code >= 400:
        assert response.json()["message"], response.text


def test_fuzzing_reached_handlers() -> None:
    """Runs after the property: its requests got past routing (2xx/4xx other than 404/405 too)."""
    if not STATUSES:
        pytest.skip("the property test did not run")
    assert any(200 <= s < 300 for s in STATUSES), STATUSES
    assert any(s in (400, 409, 422) for s in STATUSES), STATUSES
