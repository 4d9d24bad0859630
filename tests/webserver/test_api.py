"""Every /api/v1 endpoint against a real nats-server, an in-process engine and the DuckDB projection."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from conftest import Api, asgi_client

pytestmark = pytest.mark.anyio
YAML = {"content-type": "application/x-yaml"}


def hello(ns: str, fid: str = "hello", message: str = "hi", extra: str = "") -> str:
    return f"""id: {fid}
namespace: {ns}
description: says {message}
labels:
  team: data
inputs:
  - id: name
    type: STRING
    defaults: world
  - id: token
    type: SECRET
    required: false
  - id: n
    type: INT
    defaults: 1
tasks:
  - id: greet
    type: io.kestra.plugin.core.log.Log
    message: "{message} {{{{ inputs.name }}}}"
  - id: warn
    type: io.kestra.plugin.core.log.Log
    level: WARN
    message: careful
{extra}"""


# ---- flows -------------------------------------------------------------------------------------


async def test_flows_crud_revisions_search_and_errors(api: Api) -> None:
    c, ns = api.client, api.ns
    created = await api.deploy(hello(ns))
    assert created["revision"] == 1 and created["id"] == "hello" and created["namespace"] == ns
    assert created["source"].startswith("id: hello")
    assert (await api.deploy(hello(ns)))["revision"] == 1  # same source: no new revision
    # POST of a flow that exists is a conflict, as in Kestra (PUT saves a new revision).
    r = await c.post("/api/v1/flows", content=hello(ns, message="hello"), headers=YAML)
    assert r.status_code == 409 and f"PUT /api/v1/flows/{ns}/hello" in r.json()["message"], r.text
    assert (await c.get(f"/api/v1/flows/{ns}/hello/revisions")).json()[-1]["revision"] == 1

    r = await c.put(f"/api/v1/flows/{ns}/hello", content=hello(ns, message="hello"), headers=YAML)
    assert r.status_code == 200 and r.json()["revision"] == 2
    r = await c.get(f"/api/v1/flows/{ns}/hello")
    assert r.json()["revision"] == 2 and r.json()["description"] == "says hello"
    r = await c.get(f"/api/v1/flows/{ns}/hello", params={"revision": 1})
    assert r.json()["description"] == "says hi"
    assert (await c.get(f"/api/v1/flows/{ns}/hello", params={"revision": 9})).status_code == 404
    r = await c.get(f"/api/v1/flows/{ns}/hello/revisions")
    assert [x["revision"] for x in r.json()] == [1, 2]

    await api.deploy(hello(ns, "other"))
    r = await c.get("/api/v1/flows/search", params={"namespace": ns})
    assert r.json()["total"] == 2
    r = await c.get("/api/v1/flows/search", params={"namespace": ns, "q": "oth", "size": 1})
    assert [x["id"] for x in r.json()["results"]] == ["other"]
    r = await c.get(
        "/api/v1/flows/search", params={"namespace": ns, "labels": "team:data", "page": 2, "size": 1}
    )
    assert r.json()["total"] == 2 and len(r.json()["results"]) == 1
    assert [x["id"] for x in (await c.get(f"/api/v1/flows/{ns}")).json()] == ["hello", "other"]
    assert ns in (await c.get("/api/v1/flows/distinct-namespaces")).json()

    assert (await c.delete(f"/api/v1/flows/{ns}/other")).status_code == 204
    assert (await c.get(f"/api/v1/flows/{ns}/other")).status_code == 404
    assert (await c.delete(f"/api/v1/flows/{ns}/other")).status_code == 404
    r = await c.get(f"/api/v1/flows/{ns}/other/revisions")
    assert [x["deleted"] for x in r.json()] == [False, True]

    # bad input: 4xx with a message
    r = await c.post("/api/v1/flows", content="id: x\nnamespace: n\ntasks: 3\n", headers=YAML)
    assert r.status_code == 422 and "invalid" in r.json()["message"]
    assert r.json()["errors"][0]["line"] == 3
    assert (await c.post("/api/v1/flows", content="", headers=YAML)).status_code == 422
    assert (await c.post("/api/v1/flows", content=b"\xff\xfe", headers=YAML)).status_code == 400
    r = await c.put(f"/api/v1/flows/{ns}/nope", content=hello(ns), headers=YAML)
    assert r.status_code == 422 and "path" in r.json()["message"]
    r = await c.put(f"/api/v1/flows/{ns}/missing", content=hello(ns, "missing"), headers=YAML)
    assert r.status_code == 404
    assert (await c.get("/api/v1/flows/search", params={"page": 0})).status_code == 400
    assert (await c.get("/api/v1/flows/search", params={"labels": "nocolon"})).status_code == 400


async def test_validate_reports_the_cli_issues_with_body_lines(api: Api) -> None:
    body = hello(api.ns) + "---\nid: bad\nnamespace: x\ntasks:\n  - id: a\n    type: nope.Nope\n"
    r = await api.client.post("/api/v1/flows/validate", content=body, headers=YAML)
    assert r.status_code == 200
    first, second = r.json()
    assert first["constraints"] is None and first["flow"] == "hello"
    assert second["flow"] == "bad" and second["issues"]
    offset = len(hello(api.ns).splitlines()) + 1
    assert second["issues"][0]["line"] == offset + 5, second
    from engine.core.errors import FlowValidationError
    from engine.loader.loader import load_flow

    with pytest.raises(FlowValidationError) as info:
        load_flow("id: bad\nnamespace: x\ntasks:\n  - id: a\n    type: nope.Nope\n", strict_expressions=True)
    assert [i["message"] for i in second["issues"]] == [i.message for i in info.value.issues]
    assert (await api.client.post("/api/v1/flows/validate", content=" ", headers=YAML)).status_code == 422


async def test_namespace_bulk_update(api: Api) -> None:
    c, ns = api.client, api.ns
    await api.deploy(hello(ns, "stale"))
    body = hello(ns, "a") + "---\n" + hello(ns + ".sub", "b")
    r = await c.post(f"/api/v1/flows/{ns}", content=body, headers=YAML, params={"delete": True})
    assert r.status_code == 200 and [f["id"] for f in r.json()] == ["a", "b"]
    assert (await c.get(f"/api/v1/flows/{ns}/stale")).status_code == 404
    bad = hello(ns, "c") + "---\n" + hello("elsewhere", "d")
    r = await c.post(f"/api/v1/flows/{ns}", content=bad, headers=YAML)
    assert r.status_code == 422 and "nothing was saved" in r.json()["message"]
    assert (await c.get(f"/api/v1/flows/{ns}/c")).status_code == 404


# ---- executions ----------------------------------------------------------------------------------


async def test_execution_create_get_search_logs_events(api: Api) -> None:
    c, ns = api.client, api.ns
    await api.deploy(hello(ns))
    r = await c.post(
        f"/api/v1/executions/{ns}/hello",
        json={"name": "Ada", "token": "s3cret", "n": "7"},
        params={"labels": ["env:test", "team:core"]},
    )
    assert r.status_code == 200, r.text
    created = r.json()
    eid = created["id"]
    assert created["state"]["current"] == "CREATED" and created["inputs"]["token"] == "******"
    doc = await api.wait_state(eid, "SUCCESS")
    assert doc["inputs"] == {"name": "Ada", "token": "******", "n": 7}
    assert {"key": "env", "value": "test"} in doc["labels"] and len(doc["taskRunList"]) == 2
    assert "s3cret" not in json.dumps(doc)

    waited = await c.post(f"/api/v1/executions/{ns}/hello", params={"wait": True})
    assert waited.json()["state"]["current"] == "SUCCESS"
    await api.settle()

    search = "/api/v1/executions/search"
    r = await c.get(search, params={"namespace": ns})
    assert r.json()["total"] == 2
    assert (await c.get(search, params={"namespace": ns, "labels": "env:test"})).json()["total"] == 1
    assert (await c.get(search, params={"namespace": ns, "state": ["success"]})).json()["total"] == 2
    assert (await c.get(search, params={"namespace": ns, "state": "FAILED"})).json()["total"] == 0
    assert (await c.get(search, params={"q": eid})).json()["results"][0]["id"] == eid
    assert (await c.get(search, params={"namespace": ns, "flowId": "hello", "timeRange": "PT1H"})).json()[
        "total"
    ] == 2
    assert (await c.get(search, params={"namespace": ns, "startDate": "2999-01-01T00:00:00Z"})).json()[
        "total"
    ] == 0
    r = await c.get(search, params={"namespace": ns, "size": 1, "page": 2, "sort": "state.startDate:asc"})
    assert r.json()["total"] == 2 and r.json()["results"][0]["id"] == waited.json()["id"]
    for bad in (
        {"state": "NOPE"},
        {"labels": "x"},
        {"startDate": "yesterday"},
        {"timeRange": "forever"},
        {"sort": "bogus:desc"},
        {"size": 0},
        {"page": "x"},
    ):
        r = await c.get(search, params=bad)
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["message"]

    # logs: paged, filtered, and followed
    r = await c.get(f"/api/v1/logs/{eid}")  # Kestra's shape: a list
    lines = r.json()
    assert [x["message"] for x in lines] == ["hi Ada", "careful"]
    assert (
        lines[0]["namespace"] == ns and lines[0]["taskId"] == "greet" and lines[0]["timestamp"].endswith("Z")
    )
    r = await c.get(f"/api/v1/logs/{eid}", params={"minLevel": "WARN"})
    assert [x["message"] for x in r.json()] == ["careful"]
    r = await c.get(f"/api/v1/logs/{eid}", params={"size": 1, "page": 2})
    assert [x["message"] for x in r.json()] == ["careful"]
    r = await c.get(f"/api/v1/main/logs/{eid}/download", params={"minLevel": "WARN"})
    assert r.headers["content-type"].startswith("text/plain")
    assert r.text == f"{lines[1]['timestamp']} WARN careful\n"
    assert (await c.get(f"/api/v1/logs/{eid}", params={"minLevel": "LOUD"})).status_code == 400
    assert (await c.get("/api/v1/logs/nope")).status_code == 404
    r = await c.get("/api/v1/logs/search", params={"namespace": ns, "q": "careful"})
    assert r.json()["total"] == 2
    r = await c.get(f"/api/v1/logs/{eid}/follow")
    assert r.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[5:]) for line in r.text.splitlines() if line.startswith("data:")]
    assert [e["message"] for e in events] == ["hi Ada", "careful"]
    r = await c.get(f"/api/v1/executions/{eid}/follow")
    docs = [json.loads(line[5:]) for line in r.text.splitlines() if line.startswith("data:")]
    assert docs[-1]["state"]["current"] == "SUCCESS"

    # the raw history, and the execution as of a step
    r = await c.get(f"/api/v1/executions/{eid}/events")
    steps = r.json()
    assert steps[0]["events"][0]["t"] == "exec.created" and "s3cret" not in r.text
    first_seq = steps[0]["seq"]
    assert len((await c.get(f"/api/v1/executions/{eid}/events", params={"upTo": first_seq})).json()) == 1
    r = await c.get(f"/api/v1/executions/{eid}/at/{first_seq}")
    assert r.json()["state"]["current"] in ("CREATED", "RUNNING") and "s3cret" not in r.text
    assert (await c.get(f"/api/v1/executions/{eid}/files")).json() == []
    r = await c.get(f"/api/v1/executions/{eid}/file", params={"path": "kestra:///x/y/executions/other/f.txt"})
    assert r.status_code == 404

    # bad input on create
    r = await c.post(f"/api/v1/executions/{ns}/hello", json={"n": "seven"})
    assert r.status_code == 422 and r.json()["errors"][0]["input"] == "n"
    assert (await c.post(f"/api/v1/executions/{ns}/nope")).status_code == 404
    r = await c.post(
        f"/api/v1/executions/{ns}/hello", content=b"[1]", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    assert (await c.post(f"/api/v1/executions/{ns}/hello", params={"labels": "bad"})).status_code == 400
    assert (await c.get("/api/v1/executions/doesnotexist")).status_code == 404

    # delete: gone from the projection, logs too
    assert (await c.delete(f"/api/v1/executions/{eid}")).status_code == 204
    assert (await c.get(f"/api/v1/executions/{eid}")).status_code == 404
    assert (await c.get(f"/api/v1/logs/{eid}")).status_code == 404
    assert (await c.delete(f"/api/v1/executions/{eid}")).status_code == 404


async def test_file_upload_kill_resume_restart_replay(api: Api) -> None:
    c, ns = api.client, api.ns
    await api.deploy(f"""id: upload
namespace: {ns}
inputs:
  - id: data
    type: FILE
tasks:
  - id: show
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ inputs.data }}}}"
""")
    r = await c.post(
        f"/api/v1/executions/{ns}/upload", files={"data": ("hello.txt", b"hello file", "text/plain")}
    )
    assert r.status_code == 200, r.text
    eid = r.json()["id"]
    doc = await api.wait_state(eid, "SUCCESS", "FAILED")
    uri = doc["inputs"]["data"]
    assert uri.startswith("kestra:///") and uri.endswith("hello.txt"), doc
    assert uri in (await c.get(f"/api/v1/executions/{eid}/files")).json()
    r = await c.get(f"/api/v1/executions/{eid}/file", params={"path": uri})
    assert r.status_code == 200 and r.content == b"hello file"

    await api.deploy(f"""id: slow
namespace: {ns}
tasks:
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT30S
""")
    eid = (await c.post(f"/api/v1/executions/{ns}/slow")).json()["id"]
    await api.wait_state(eid, "RUNNING")
    assert (await c.post(f"/api/v1/executions/{eid}/resume")).status_code == 409
    assert (await c.delete(f"/api/v1/executions/{eid}")).status_code == 409
    r = await c.delete(f"/api/v1/executions/{eid}/kill")
    assert r.status_code == 202, r.text
    await api.wait_state(eid, "KILLED")
    assert (await c.delete(f"/api/v1/executions/{eid}/kill")).status_code == 409

    await api.deploy(f"""id: wait
namespace: {ns}
tasks:
  - id: stop
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: ok
        type: BOOLEAN
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: "resumed {{{{ outputs.stop.onResume.ok }}}}"
""")
    eid = (await c.post(f"/api/v1/executions/{ns}/wait")).json()["id"]
    await api.wait_state(eid, "PAUSED")
    assert (await c.post(f"/api/v1/executions/{eid}/resume", content=b"{")).status_code == 400
    r = await c.post(f"/api/v1/executions/{eid}/resume", json={"ok": True})
    assert r.status_code == 202, r.text
    await api.wait_state(eid, "SUCCESS", "FAILED")

    await api.deploy(f"""id: flaky
namespace: {ns}
tasks:
  - id: one
    type: io.kestra.plugin.core.log.Log
    message: first
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
""")
    eid = (await c.post(f"/api/v1/executions/{ns}/flaky")).json()["id"]
    await api.wait_state(eid, "FAILED")
    r = await c.post(f"/api/v1/executions/{eid}/restart")
    assert r.status_code == 202, r.text
    await api.wait_state(eid, "RESTARTED", "RUNNING", "FAILED")
    await api.wait_state(eid, "FAILED")
    r = await c.post(f"/api/v1/executions/{eid}/replay", params={"taskRunId": "boom"})
    assert r.status_code == 200, r.text
    new_id = r.json()["id"]
    replayed = await api.wait_state(new_id, "FAILED")
    assert replayed["originalId"] == eid
    r = await c.post(f"/api/v1/executions/{eid}/replay", params={"taskRunId": "nosuchtask"})
    assert r.status_code == 409 and "nosuchtask" in r.json()["message"]
    assert (await c.post("/api/v1/executions/nope/restart")).status_code == 404


# ---- KV, stats, health, metrics ---------------------------------------------------------------


async def test_kv(api: Api) -> None:
    c, ns = api.client, api.ns
    base = f"/api/v1/namespaces/{ns}/kv"
    assert (await c.put(f"{base}/answer", content=b"42")).json()["type"] == "NUMBER"
    assert (await c.put(f"{base}/name", content=b"Ada Lovelace")).json()["value"] == "Ada Lovelace"
    assert (await c.put(f"{base}/obj", content=b'{"a": [1]}', headers={"ttl": "PT1H"})).status_code == 200
    answer = (await c.get(f"{base}/answer")).json()
    assert answer["type"] == "NUMBER" and answer["value"] == 42 and answer["revision"] >= 1
    assert (await c.get(f"{base}/obj")).json()["value"] == {"a": [1]}
    listed = (await c.get(base)).json()
    assert [k["key"] for k in listed] == ["answer", "name", "obj"]
    assert listed[0]["expirationDate"] is None and listed[2]["expirationDate"] > listed[2]["updateDate"]
    assert (await c.delete(f"{base}/answer")).json() is True
    assert (await c.get(f"{base}/answer")).status_code == 404
    assert (await c.delete(f"{base}/answer")).json() is False  # Kestra: 200 false
    assert (await c.put(f"{base}/x", content=b"1", headers={"ttl": "soon"})).status_code == 400
    assert (await c.put(f"{base}/x", content=b"")).status_code == 400
    assert (await c.get(f"{base}/a..b")).status_code == 400
    assert (await c.get("/api/v1/namespaces/bad ns/kv")).status_code == 400


async def test_stats_health_metrics_openapi(api: Api) -> None:
    c, ns = api.client, api.ns
    await api.deploy(hello(ns))
    await c.post(f"/api/v1/executions/{ns}/hello", params={"wait": True})
    r = await c.post("/api/v1/stats/executions/daily", json={"namespace": ns})
    assert r.status_code == 200, r.text
    days = r.json()
    assert len(days) == 31 and days[-1]["executionCounts"]["SUCCESS"] == 1
    assert days[-1]["duration"]["count"] == 1 and days[-1]["duration"]["avg"] > 0
    assert (await c.post("/api/v1/stats/executions/daily", json={"startDate": "x"})).status_code == 400
    assert (await c.post("/api/v1/stats/executions/daily", json={"bogus": 1})).status_code == 400
    r = await c.post(
        "/api/v1/stats/executions/daily", json={"startDate": "2026-02-01", "endDate": "2026-01-01"}
    )
    assert r.status_code == 400

    assert (await c.get("/health")).json() == {"status": "UP"}
    assert (await c.get("/ready")).status_code == 200
    text = (await c.get("/metrics")).text
    assert "engine_indexer_lag_events" in text and "engine_api_requests_total" in text
    spec = (await c.get("/api/v1/openapi.json")).json()
    assert spec["openapi"].startswith("3.1") and "/api/v1/{tenant}/executions/search" in spec["paths"]
    r = await c.get("/api/v1/nothing/here")
    assert r.status_code == 404 and r.json()["message"]
    r = await c.delete("/api/v1/flows/search")
    assert r.status_code in (404, 405) and r.json()["message"]


async def test_rebuild_gives_the_same_answers(api: Api, tmp_path: Any) -> None:

    from eventstore.indexer import Indexer
    from webserver.app import Auth, create_app

    c, ns = api.client, api.ns
    await api.deploy(hello(ns))
    await api.deploy(hello(ns, message="v2"))
    for name in ("a", "b", "c"):
        await c.post(f"/api/v1/executions/{ns}/hello", json={"name": name}, params={"wait": True})
    await api.settle()
    urls = [
        f"/api/v1/executions/search?namespace={ns}&size=100",
        f"/api/v1/flows/search?namespace={ns}",
        f"/api/v1/flows/{ns}/hello/revisions",
    ]

    async def answers(client: Any) -> list[Any]:
        out = [(await client.get(u)).json() for u in urls]
        for ex in out[0]["results"]:
            out.append((await client.get(f"/api/v1/logs/{ex['id']}")).json())
        out.append((await client.post("/api/v1/stats/executions/daily", json={"namespace": ns})).json())
        return out

    before = await answers(c)
    assert before[0]["total"] == 3
    await api.indexer.stop()
    api.indexer.path.unlink()
    rebuilt = Indexer(api.rt.store, api.indexer.path)
    await rebuilt.start()
    try:
        assert await rebuilt.wait_caught_up(30)
        async with asgi_client(create_app(api.rt, rebuilt, Auth())) as client:
            after = await answers(client)
    finally:
        await rebuilt.stop()
    assert after == before


# ---- auth --------------------------------------------------------------------------------------


async def test_auth_tokens_and_basic(api: Api) -> None:

    from webserver.app import Auth, create_app

    auth = Auth(users={"admin": "pw"}, tokens=frozenset({"tok123"}))
    app = create_app(api.rt, api.indexer, auth)
    async with asgi_client(app) as c:
        r = await c.get("/api/v1/flows/search")
        assert r.status_code == 401 and "Authorization" in r.json()["message"]
        assert r.headers["www-authenticate"].startswith("Basic")
        assert (
            await c.get("/api/v1/flows/search", headers={"Authorization": "Bearer tok123"})
        ).status_code == 200
        assert (
            await c.get("/api/v1/flows/search", headers={"Authorization": "Bearer nope"})
        ).status_code == 401
        basic = base64.b64encode(b"admin:pw").decode()
        assert (await c.get("/metrics", headers={"Authorization": f"Basic {basic}"})).status_code == 200
        wrong = base64.b64encode(b"admin:no").decode()
        assert (await c.get("/metrics", headers={"Authorization": f"Basic {wrong}"})).status_code == 401
        assert (await c.get("/metrics", headers={"Authorization": "Basic %%%"})).status_code == 401
        assert (await c.get("/health")).status_code == 200


def test_auth_from_env() -> None:
    from engine.core.errors import EngineError
    from webserver.app import Auth, is_loopback

    assert not Auth.from_env({}).enabled
    auth = Auth.from_env({"ENGINE_API_TOKENS": "a, b", "ENGINE_API_USER": "u", "ENGINE_API_PASSWORD": "p"})
    assert auth.tokens == {"a", "b"} and auth.users == {"u": "p"}
    with pytest.raises(EngineError):
        Auth.from_env({"ENGINE_API_USER": "u"})
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.org")


async def test_serve_refuses_public_bind_without_auth_and_serves_on_loopback(api: Api, tmp_path: Any) -> None:
    import asyncio
    import socket

    import httpx

    from engine.core.errors import EngineError
    from webserver.app import Auth, serve

    with pytest.raises(EngineError, match="without authentication"):
        await serve(api.rt, "0.0.0.0", 0, auth=Auth())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = asyncio.Event()
    task = asyncio.create_task(
        serve(
            api.rt,
            "127.0.0.1",
            port,
            auth=Auth(tokens=frozenset({"t"})),
            index_path=tmp_path / "s.duckdb",
            started=started,
        )
    )
    try:
        await asyncio.wait_for(started.wait(), 10)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            assert (await client.get("/health")).status_code == 200
            assert (await client.get("/api/v1/flows/search")).status_code == 401
            r = await client.get("/api/v1/flows/search", headers={"Authorization": "Bearer t"})
            assert r.status_code == 200 and "total" in r.json()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_kestra_routes_not_built_answer_501_with_what_to_use(api: Api) -> None:
    """Not a neighbouring route's wrong answer: `/flows/export/by-query` is not the flow `export.by-query`."""
    await api.client.post("/api/v1/flows", content=hello(api.ns), headers=YAML)
    for method, path in [
        ("GET", "/api/v1/main/flows/export/by-query"),
        ("GET", "/api/v1/flows/source?q=x"),
        ("GET", f"/api/v1/main/flows/{api.ns}/hello/graph"),
        ("DELETE", "/api/v1/main/logs/someid"),
    ]:
        r = await api.client.request(method, path)
        assert r.status_code == 501, (path, r.status_code, r.text)
        assert "not supported by this engine" in r.json()["message"], r.text
    # the routes beside them still answer
    assert (await api.client.get(f"/api/v1/main/flows/{api.ns}/hello")).status_code == 200
