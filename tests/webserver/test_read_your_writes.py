"""Read-your-writes: what a client just wrote through the API it reads back at once (Kestra does).

The acceptance loop of 1,000 runs in ``bench/read_your_writes.py``; here a shorter loop on the
normal app, and the same reads with an indexer that never caught up (it is not started): the
answers then come from the event log.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from conftest import Api, asgi_client

from eventstore.indexer import Indexer
from webserver.app import Auth, create_app

pytestmark = pytest.mark.anyio

FLOW = """
id: ryw
namespace: {ns}
tasks:
  - id: hold
    type: io.kestra.plugin.core.flow.Pause
"""


async def test_an_execution_just_created_is_readable_at_once(api: Api) -> None:
    await api.deploy(FLOW.format(ns=api.ns))
    for _ in range(30):
        created = await api.client.post(f"/api/v1/executions/{api.ns}/ryw")
        assert created.status_code == 200, created.text
        eid = created.json()["id"]
        got = await api.client.get(f"/api/v1/executions/{eid}")
        assert got.status_code == 200, got.text
        assert got.json()["id"] == eid and got.json()["flowId"] == "ryw"


@pytest.fixture
async def behind(nats_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    """The API with an executor and a worker, and an indexer that has indexed nothing."""
    from engine.runtime import Runtime

    async with Runtime(nats_url=nats_url, home=tmp_path / "home") as rt:
        roles = [asyncio.create_task(rt.executor().run()), asyncio.create_task(rt.worker().run())]
        indexer = Indexer(rt.store, tmp_path / "index.duckdb")  # never started: always behind
        try:
            async with asgi_client(create_app(rt, indexer, Auth())) as client:
                yield Api(rt, indexer, client, "api.behind")
        finally:
            indexer.close()
            for task in roles:
                task.cancel()
            await asyncio.gather(*roles, return_exceptions=True)


async def test_reads_and_commands_fall_back_to_the_log_when_the_indexer_is_behind(behind: Api) -> None:
    c = behind.client
    await behind.rt.flows.deploy(FLOW.format(ns=behind.ns))
    # The flow, deployed but not projected: read from the log, and its triggers' route knows it.
    flow = await c.get(f"/api/v1/flows/{behind.ns}/ryw")
    assert flow.status_code == 200 and flow.json()["revision"] == 1, flow.text
    assert (await c.get(f"/api/v1/triggers/{behind.ns}/ryw")).status_code == 200
    assert (await c.get(f"/api/v1/flows/{behind.ns}/nope")).status_code == 404
    created = await c.post(f"/api/v1/executions/{behind.ns}/ryw")
    assert created.status_code == 200, created.text
    eid = created.json()["id"]
    got = await c.get(f"/api/v1/executions/{eid}")
    assert got.status_code == 200, got.text
    assert got.json()["id"] == eid and got.json()["namespace"] == behind.ns
    # A command on it is judged on the log's state too: it pauses, then it is killed.
    await _until_paused(behind, eid)
    assert (await c.get(f"/api/v1/executions/{eid}")).json()["state"]["current"] == "PAUSED"
    killed = await c.delete(f"/api/v1/executions/{eid}/kill")
    assert killed.status_code == 202, killed.text
    # Unknown ids still answer 404, whatever the indexer's lag.
    assert (await c.get("/api/v1/executions/doesnotexist")).status_code == 404
    assert (await c.get("/api/v1/executions/has space")).status_code == 404
    assert (await c.get("/api/v1/executions/a..b")).status_code == 404  # no subject of the log


async def _until_paused(api: Api, eid: str) -> None:
    done = asyncio.Event()

    async def on_events(events: list[object]) -> None:
        done.set()

    sub = await api.rt.store.watch_events(eid, on_events)
    try:
        for _ in range(100):
            done.clear()
            state = await api.rt.load_execution(eid)
            if state is not None and state.state == "PAUSED":
                return
            await asyncio.wait_for(done.wait(), 10)
    finally:
        await sub.unsubscribe()
    raise AssertionError(f"{eid} never paused")


async def test_kv_keys_and_namespace_files_just_written_are_readable_at_once(api: Api) -> None:
    c, ns = api.client, api.ns
    for i in range(20):
        put = await c.put(f"/api/v1/namespaces/{ns}/kv/k{i}", content=str(i))
        assert put.status_code == 200, put.text
        got = await c.get(f"/api/v1/namespaces/{ns}/kv/k{i}")
        assert got.status_code == 200 and got.json()["value"] == i, got.text
        path = f"dir/f{i}.txt"
        up = await c.post(f"/api/v1/namespaces/{ns}/files", params={"path": path}, content=f"v{i}".encode())
        assert up.status_code in (200, 201), up.text
        read = await c.get(f"/api/v1/namespaces/{ns}/files", params={"path": path})
        assert read.status_code == 200 and read.content == f"v{i}".encode(), read.text


async def test_logs_and_follows_of_an_execution_not_indexed_yet(behind: Api) -> None:
    c = behind.client
    await behind.rt.flows.deploy(f"""id: says
namespace: {behind.ns}
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: said it
""")
    eid = (await c.post(f"/api/v1/executions/{behind.ns}/says")).json()["id"]
    await behind.rt.wait_terminal(eid, timeout=30)
    logs = await c.get(f"/api/v1/logs/{eid}")
    assert logs.status_code == 200, logs.text
    async with c.stream("GET", f"/api/v1/logs/{eid}/follow") as followed:
        assert followed.status_code == 200
        text = "".join([chunk async for chunk in followed.aiter_text()])
    assert "said it" in text  # the whole stream, to the end the log shows
    async with c.stream("GET", f"/api/v1/executions/{eid}/follow") as watched:
        assert watched.status_code == 200
        text = "".join([chunk async for chunk in watched.aiter_text()])
    assert '"current":"SUCCESS"' in text.replace(" ", "")
    assert (await c.get("/api/v1/logs/doesnotexist")).status_code == 404


SCHEDULED = """
id: sched
namespace: {ns}
triggers:
  - id: hourly
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 * * * *"
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: hi
"""


async def test_a_trigger_query_right_after_a_save_sees_the_saved_flow(behind: Api) -> None:
    """A bulk toggle by query searches the flows' projection: it waits for every flow saved before
    it (CI answered {"count": 0} for a flow deployed just before, on a busy machine)."""
    ns = behind.ns + ".toggle"
    await behind.rt.store.put_flow(ns, "sched", SCHEDULED.format(ns=ns))  # the projection has not seen it

    async def catch_up_later() -> None:
        await asyncio.sleep(0.3)
        await behind.indexer.start()

    later = asyncio.create_task(catch_up_later())
    try:
        r = await behind.client.post(
            "/api/v1/triggers/set-disabled/by-query", params={"namespace": ns, "disabled": True}
        )
        assert r.status_code == 200 and r.json() == {"count": 1}, r.text
    finally:
        await later
        await behind.indexer.stop()
