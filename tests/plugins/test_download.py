"""http.Download against a real HTTP server on 127.0.0.1: the body streamed to internal storage."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from plugin_harness import FakeContext, registry, run_task

from engine.core.errors import TaskFailed
from plugins.core.download import filename_from

pytestmark = pytest.mark.anyio
T = "io.kestra.plugin.core.http.Download"
CSV = b"id,name\n1,Ada\n2,Bob\n"
BIG_CHUNK = b"x" * 65536
BIG_CHUNKS = 160  # 10 MiB, sent chunked (no Content-Length)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/data.csv":
            self._send(200, CSV, {"Content-Type": "text/csv", "X-Id": "7"})
        elif self.path == "/empty":
            self._send(200, b"")
        elif self.path == "/named":
            self._send(200, b"report", {"Content-Disposition": 'attachment; filename="../../etc/report.txt"'})
        elif self.path == "/missing":
            self._send(404, b"no such file")
        elif self.path == "/big":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for _ in range(BIG_CHUNKS):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(BIG_CHUNK), BIG_CHUNK))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self._send(500, b"?")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._send(201, b"got:" + body + b":" + self.headers.get("X-Token", "").encode())


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def test_download_stores_the_body(base: str, ctx: FakeContext) -> None:
    result = await run_task(T, {"uri": base + "/data.csv"}, ctx)
    out = result.outputs
    assert out["code"] == 200 and out["length"] == len(CSV)
    assert out["headers"]["X-Id"] == ["7"]
    assert out["uri"].startswith("kestra:///") and out["uri"].endswith(".csv")
    assert await ctx.files.get(out["uri"]) == CSV


async def test_download_streams_a_large_chunked_body(base: str, ctx: FakeContext) -> None:
    result = await run_task(T, {"uri": base + "/big"}, ctx)
    assert result.outputs["length"] == len(BIG_CHUNK) * BIG_CHUNKS
    assert await ctx.files.size(result.outputs["uri"]) == len(BIG_CHUNK) * BIG_CHUNKS
    with pytest.raises(TaskFailed, match="maxContentLength"):
        await run_task(T, {"uri": base + "/big", "options": {"maxContentLength": 100000}}, ctx)


async def test_empty_body_fails_unless_allowed(base: str, ctx: FakeContext) -> None:
    with pytest.raises(TaskFailed, match="No response from server"):
        await run_task(T, {"uri": base + "/empty"}, ctx)
    result = await run_task(T, {"uri": base + "/empty", "failOnEmptyResponse": False}, ctx)
    assert result.outputs["length"] == 0
    assert ("WARN", f"File '{base}/empty' is empty") in ctx.logs


async def test_error_code_fails_and_content_disposition_names_the_file(base: str, ctx: FakeContext) -> None:
    with pytest.raises(TaskFailed, match="response code '404'"):
        await run_task(T, {"uri": base + "/missing"}, ctx)
    allowed = await run_task(T, {"uri": base + "/missing", "allowFailed": True}, ctx)
    assert allowed.outputs["code"] == 404
    named = await run_task(T, {"uri": base + "/named"}, ctx)
    assert named.outputs["uri"].endswith("/report.txt")


async def test_post_with_body_and_headers_and_the_fs_aliases(base: str, ctx: FakeContext) -> None:
    props = {"uri": base + "/x", "method": "POST", "body": "hello", "headers": {"X-Token": "t1"}}
    result = await run_task("io.kestra.plugin.fs.http.Download", props, ctx)
    assert result.outputs["code"] == 201
    assert await ctx.files.get(result.outputs["uri"]) == b"got:hello:t1"
    reg = registry()
    assert reg.resolve("io.kestra.plugin.fs.http.Request").type == "io.kestra.plugin.core.http.Request"


def test_filename_from_content_disposition() -> None:
    assert filename_from('attachment; filename="a b.csv"') == "a%20b.csv"
    assert (
        filename_from("attachment; filename=x.csv; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf")
        == "r%C3%A9sum%C3%A9.pdf"
    )
    assert filename_from('attachment; filename="/etc/passwd"') == "passwd"
    assert filename_from("inline") is None and filename_from(None) is None
