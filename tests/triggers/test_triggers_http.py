"""http.Trigger (a polling trigger) against a real HTTP server on 127.0.0.1, with an injected clock."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from triggers_helpers import Engine, FakeClock, Recorder, trigger_service

from eventstore.triggerstate import TriggerKV
from triggers.polling import poll_key

pytestmark = pytest.mark.anyio


class Api:
    """A tiny HTTP server: answers every request with ``status`` and ``body``, counts the requests."""

    def __init__(self) -> None:
        self.status = 200
        self.body: dict[str, Any] = {"price": 100}
        self.requests: list[tuple[str, str, str]] = []  # method, path, X-Token header
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                api.requests.append((self.command, self.path, self.headers.get("X-Token", "")))
                data = json.dumps(api.body).encode()
                self.send_response(api.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Seen", str(len(api.requests)))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def api() -> Iterator[Api]:
    server = Api()
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()
        server.thread.join(5)


def http_flow(namespace: str, uri: str, extra: str = "", flow_id: str = "poll") -> str:
    return f"""
id: {flow_id}
namespace: {namespace}
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{{{ trigger.code }}}} {{{{ trigger.body }}}}"
triggers:
  - id: http
    type: io.kestra.plugin.core.http.Trigger
    uri: {uri}
{extra}"""


async def _until(predicate: Any, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def _polled(service: Any, api: Api, count: int) -> None:
    """``count`` requests answered and their polls finished (condition evaluated, execution sent)."""
    await _until(lambda: len(api.requests) >= count and not service.polling.inflight, f"{count} poll(s)")


async def test_fires_when_the_response_condition_matches(
    eng: Engine, rec: Recorder, namespace: str, api: Api
) -> None:
    await eng.deploy(
        http_flow(
            namespace,
            api.url + "/products/1",
            """    method: POST
    body: '{"q": 1}'
    headers:
      X-Token: "{{ flow.namespace }}"
    responseCondition: "{{ json(response.body).price <= 110 and response.headers['X-Seen'][0] == '1' }}"
    interval: PT30S
""",
        )
    )
    clock = FakeClock()
    async with trigger_service(eng.rt, namespace, now=clock, poll_interval=0.05) as service:
        [run] = await rec.wait_ended("poll", 1)
        assert api.requests == [("POST", "/products/1", namespace)]
        trig = run.trigger or {}
        assert trig["code"] == trig["statusCode"] == 200
        assert json.loads(trig["body"]) == api.body
        assert trig["headers"]["Content-Type"] == ["application/json"]
        assert trig["uri"] == api.url + "/products/1"
        state = await eng.rt.load_execution(run.execution_id)
        assert state is not None and state.state == "SUCCESS"
        # the second answer says X-Seen 2: the condition is false, no execution
        clock.advance(30)
        await _polled(service, api, 2)
    assert len(rec.of("poll")) == 1


async def test_does_not_fire_when_the_condition_is_false(
    eng: Engine, rec: Recorder, namespace: str, api: Api
) -> None:
    api.status = 503  # the default condition is statusCode < 400
    await eng.deploy(http_flow(namespace, api.url, "    interval: PT10S\n"))
    clock = FakeClock()
    async with trigger_service(eng.rt, namespace, now=clock, poll_interval=0.05) as service:
        await _polled(service, api, 1)
        clock.advance(10)
        await _polled(service, api, 2)
        assert rec.of("poll") == []
        api.status = 200
        clock.advance(10)
        await _polled(service, api, 3)
        [run] = await rec.wait_ended("poll", 1)
    assert (run.trigger or {})["code"] == 200


async def test_interval_is_kept_across_a_restart(
    eng: Engine, rec: Recorder, namespace: str, api: Api
) -> None:
    await eng.deploy(http_flow(namespace, api.url, "    interval: PT1M\n"))
    clock = FakeClock()
    first_poll = clock()
    async with trigger_service(eng.rt, namespace, now=clock, poll_interval=0.05) as service:
        await _polled(service, api, 1)
        clock.advance(20)
        await asyncio.sleep(0.3)  # several loop turns: not due yet
        assert len(api.requests) == 1
    kv = TriggerKV(eng.rt.store)
    await kv.setup()
    state, _ = await kv.get(poll_key(namespace, "poll", "http"))
    assert state is not None
    assert datetime.fromisoformat(state["last_poll"].replace("Z", "+00:00")) == first_poll
    # a new scheduler (a restart) does not poll in a burst: the last poll time is in KV
    async with trigger_service(eng.rt, namespace, now=clock, poll_interval=0.05) as service:
        await asyncio.sleep(0.3)
        assert len(api.requests) == 1 and service.polling.polls == 0
        clock.advance(40)  # 60 s after the first poll
        await _polled(service, api, 2)
        runs = await rec.wait_ended("poll", 2)
    assert len({c.execution_id for c in runs}) == 2


async def test_stop_after_disables_the_trigger(eng: Engine, rec: Recorder, namespace: str, api: Api) -> None:
    await eng.deploy(http_flow(namespace, api.url, "    interval: PT10S\n    stopAfter: [SUCCESS]\n"))
    clock = FakeClock(datetime(2031, 1, 1, tzinfo=UTC))
    async with trigger_service(eng.rt, namespace, now=clock, poll_interval=0.05) as service:
        await rec.wait_ended("poll", 1)
        from eventstore.triggerstate import schedule_key

        kv = TriggerKV(eng.rt.store)
        await kv.setup()
        await _until_disabled(kv, schedule_key(namespace, "poll", "http"))
        clock.advance(30)
        await asyncio.sleep(0.3)
        assert len(api.requests) == 1 and service.polling.polls == 1


async def _until_disabled(kv: TriggerKV, key: str) -> None:
    deadline = time.monotonic() + 10
    while True:
        state, _ = await kv.get(key)
        if state and state.get("disabled"):
            return
        if time.monotonic() > deadline:
            raise AssertionError("stopAfter did not disable the trigger")
        await asyncio.sleep(0.02)
