"""http.Request against a real HTTP server on 127.0.0.1 (never the internet)."""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from plugin_harness import FakeContext, registry, run_task

from engine.core.errors import TaskFailed

pytestmark = pytest.mark.anyio

T = "io.kestra.plugin.core.http.Request"


class Handler(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(
        self,
        code: int,
        body: bytes,
        content_type: str = "application/json",
        extra: list[tuple[str, str]] | None = None,
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra or []:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # client gave up (timeouts)
                self.wfile.write(body)

    def _record(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        entry = {
            "method": self.command,
            "path": self.path,
            "headers": dict(self.headers.items()),
            "body": body.decode("utf-8", errors="replace"),
        }
        Handler.seen.append(entry)
        return entry

    def _route(self) -> None:
        entry = self._record()
        if self.path.startswith("/json"):
            self._reply(
                200,
                json.dumps({"ok": True, "method": self.command}).encode(),
                extra=[("X-Multi", "a"), ("X-Multi", "b")],
            )
        elif self.path == "/echo":
            self._reply(200, json.dumps(entry).encode())
        elif self.path == "/missing":
            self._reply(404, b"nothing here", "text/plain")
        elif self.path == "/redirect":
            self._reply(302, b"", "text/plain", extra=[("Location", "/json")])
        elif self.path == "/slow":
            time.sleep(1.0)
            self._reply(200, b"late", "text/plain")
        elif self.path == "/big":
            self._reply(200, b"x" * 5000, "text/plain")
        elif self.path == "/latin1":
            self._reply(200, "café".encode("latin-1"), "text/plain; charset=iso-8859-1")
        elif self.path == "/empty":
            self._reply(204, b"", "text/plain")
        else:
            self._reply(500, b"boom", "text/plain")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _route


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def test_registered() -> None:
    assert registry().resolve("io.kestra.core.tasks.http.Request").type == T


async def test_get_json(ctx: FakeContext, server: str) -> None:
    result = await run_task(T, {"uri": server + "/json"}, ctx)
    out = result.outputs
    assert out["uri"] == server + "/json"
    assert out["code"] == 200
    assert json.loads(out["body"]) == {"ok": True, "method": "GET"}
    assert out["headers"]["X-Multi"] == ["a", "b"]
    assert out["headers"]["Content-Type"] == ["application/json"]
    assert set(out) == {"uri", "code", "headers", "body"}


async def test_post_body_headers_and_default_content_type(ctx: FakeContext, server: str) -> None:
    props = {
        "uri": server + "/echo",
        "method": "post",
        "body": '{"a": 1}',
        "headers": {"X-Token": "t", "N": 5},
    }
    seen = json.loads((await run_task(T, props, ctx)).outputs["body"])
    assert seen["method"] == "POST" and seen["body"] == '{"a": 1}'
    assert seen["headers"]["X-Token"] == "t" and seen["headers"]["N"] == "5"
    assert seen["headers"]["Content-Type"] == "application/json"


async def test_body_map_is_json_encoded(ctx: FakeContext, server: str) -> None:
    props = {
        "uri": server + "/echo",
        "method": "PUT",
        "body": {"k": [1, 2]},
        "contentType": "application/x-custom",
    }
    seen = json.loads((await run_task(T, props, ctx)).outputs["body"])
    assert json.loads(seen["body"]) == {"k": [1, 2]}
    assert seen["headers"]["Content-Type"] == "application/x-custom"


async def test_form_urlencoded(ctx: FakeContext, server: str) -> None:
    props = {
        "uri": server + "/echo",
        "method": "POST",
        "formData": {"a": "1", "b": "x y"},
        "contentType": "application/x-www-form-urlencoded",
    }
    seen = json.loads((await run_task(T, props, ctx)).outputs["body"])
    assert seen["body"] == "a=1&b=x+y"
    assert seen["headers"]["Content-Type"] == "application/x-www-form-urlencoded"


async def test_form_multipart_with_file(ctx: FakeContext, server: str) -> None:
    props = {
        "uri": server + "/echo",
        "method": "POST",
        "contentType": "multipart/form-data",
        "formData": {"field": "value", "upload": {"name": "data.txt", "content": "file content"}},
    }
    seen = json.loads((await run_task(T, props, ctx)).outputs["body"])
    assert seen["headers"]["Content-Type"].startswith("multipart/form-data; boundary=")
    assert 'name="field"' in seen["body"] and "value" in seen["body"]
    assert 'filename="data.txt"' in seen["body"] and "file content" in seen["body"]


async def test_basic_auth(ctx: FakeContext, server: str) -> None:
    props = {"uri": server + "/echo", "options": {"basicAuthUser": "u", "basicAuthPassword": "p"}}
    seen = json.loads((await run_task(T, props, ctx)).outputs["body"])
    assert seen["headers"]["Authorization"] == "Basic " + base64.b64encode(b"u:p").decode()


async def test_404_fails_with_outputs(ctx: FakeContext, server: str) -> None:
    with pytest.raises(TaskFailed, match="response code '404'") as info:
        await run_task(T, {"uri": server + "/missing"}, ctx)
    assert info.value.outputs["code"] == 404
    assert info.value.outputs["body"] == "nothing here"


async def test_allow_failed(ctx: FakeContext, server: str) -> None:
    out = (await run_task(T, {"uri": server + "/missing", "allowFailed": True}, ctx)).outputs
    assert out["code"] == 404 and out["body"] == "nothing here"
    out = (await run_task(T, {"uri": server + "/other", "options": {"allowFailed": True}}, ctx)).outputs
    assert out["code"] == 500


async def test_allowed_response_codes(ctx: FakeContext, server: str) -> None:
    props = {"uri": server + "/missing", "options": {"allowedResponseCodes": [404]}}
    out = (await run_task(T, props, ctx)).outputs
    assert out["code"] == 404
    with pytest.raises(TaskFailed, match="'200'"):
        await run_task(T, {"uri": server + "/json", "options": {"allowedResponseCodes": [201]}}, ctx)


async def test_redirects(ctx: FakeContext, server: str) -> None:
    out = (await run_task(T, {"uri": server + "/redirect"}, ctx)).outputs
    assert out["code"] == 200 and out["uri"] == server + "/redirect"
    props = {"uri": server + "/redirect", "options": {"followRedirects": False}}
    out = (await run_task(T, props, ctx)).outputs
    assert out["code"] == 302 and out["headers"]["Location"] == ["/json"]


async def test_read_timeout(ctx: FakeContext, server: str) -> None:
    start = time.monotonic()
    with pytest.raises(TaskFailed, match="timed out") as info:
        await run_task(T, {"uri": server + "/slow", "options": {"readTimeout": "PT0.2S"}}, ctx)
    assert info.value.retryable
    assert time.monotonic() - start < 0.9


async def test_max_content_length(ctx: FakeContext, server: str) -> None:
    with pytest.raises(TaskFailed, match="maxContentLength"):
        await run_task(T, {"uri": server + "/big", "options": {"maxContentLength": 100}}, ctx)


async def test_charset_head_and_empty(ctx: FakeContext, server: str) -> None:
    assert (await run_task(T, {"uri": server + "/latin1"}, ctx)).outputs["body"] == "café"
    head = (await run_task(T, {"uri": server + "/json", "method": "HEAD"}, ctx)).outputs
    assert head["code"] == 200 and head["body"] is None
    assert (await run_task(T, {"uri": server + "/empty"}, ctx)).outputs["body"] is None


async def test_connection_refused_is_retryable(ctx: FakeContext) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TaskFailed, match="failed") as info:
        await run_task(T, {"uri": f"http://127.0.0.1:{port}/", "options": {"connectTimeout": "PT1S"}}, ctx)
    assert info.value.retryable


@pytest.mark.parametrize("uri", ["not a uri", "ftp://127.0.0.1/x"])
async def test_bad_uri(ctx: FakeContext, uri: str) -> None:
    with pytest.raises(TaskFailed) as info:
        await run_task(T, {"uri": uri}, ctx)
    assert not info.value.retryable
