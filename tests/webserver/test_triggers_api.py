"""/api/v1/triggers: listing with state, enable/disable, backfill, and their bad input."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import Api

pytestmark = pytest.mark.anyio


def scheduled(ns: str, fid: str = "sched", extra: str = "") -> str:
    return f"""id: {fid}
namespace: {ns}
inputs:
  - id: n
    type: INT
    defaults: 1
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: "slot {{{{ trigger.date }}}} n={{{{ inputs.n }}}}"
triggers:
  - id: hourly
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 * * * *"
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: abc
{extra}"""


async def kv_state(api: Api, ns: str, fid: str, tid: str) -> dict[str, Any]:
    from eventstore.triggerstate import TriggerKV, schedule_key

    kv = TriggerKV(api.rt.store)
    await kv.setup()
    state, _ = await kv.get(schedule_key(ns, fid, tid))
    return dict(state or {})


async def test_search_lists_every_trigger_with_its_state(api: Api) -> None:
    c, ns = api.client, api.ns
    await api.deploy(scheduled(ns))
    await api.deploy(scheduled(ns + ".sub", "other"))
    await api.deploy(
        f"id: plain\nnamespace: {ns}\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n"
        "    message: hi\n"
    )
    r = await c.get("/api/v1/triggers/search", params={"namespace": ns, "sort": "flowId:asc"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == 4
    keys = [(x["triggerContext"]["flowId"], x["triggerContext"]["triggerId"]) for x in body["results"]]
    assert sorted(keys) == [("other", "hook"), ("other", "hourly"), ("sched", "hook"), ("sched", "hourly")]
    hourly = next(x for x in body["results"] if x["triggerContext"]["triggerId"] == "hourly")
    assert hourly["abstractTrigger"]["cron"] == "0 * * * *"
    ctx = hourly["triggerContext"]
    assert ctx["disabled"] is False and ctx["date"] is None
    nxt = datetime.fromisoformat(ctx["nextExecutionDate"].replace("Z", "+00:00"))
    now = datetime.now(UTC)
    assert now < nxt and (nxt - now).total_seconds() <= 3600 and nxt.minute == 0 and nxt.second == 0

    r = await c.get("/api/v1/triggers/search", params={"namespace": ns, "q": "hook", "size": 1, "page": 2})
    assert r.json()["total"] == 2 and len(r.json()["results"]) == 1
    r = await c.get("/api/v1/triggers/search", params={"namespace": ns, "flowId": "other"})
    assert {x["triggerContext"]["namespace"] for x in r.json()["results"]} == {ns + ".sub"}

    r = await c.get(f"/api/v1/triggers/{ns}/sched")
    assert r.status_code == 200 and r.json()["total"] == 2
    assert {x["triggerId"] for x in r.json()["results"]} == {"hourly", "hook"}

    # the scheduler's state shows: last slot and execution (written where the scheduler writes them)
    from eventstore.triggerstate import TriggerKV, schedule_key

    kv = TriggerKV(api.rt.store)
    await kv.setup()
    await kv.put(
        schedule_key(ns, "sched", "hourly"), {"last_slot": "2026-01-01T10:00:00Z", "last_execution": "X1"}
    )
    r = await c.get(f"/api/v1/triggers/{ns}/sched", params={"q": "hour"})
    [ctx] = r.json()["results"]
    assert ctx["date"] == "2026-01-01T10:00:00Z" and ctx["executionId"] == "X1"

    # bad input: 4xx with a message
    for params in ({"sort": "nope"}, {"sort": "flowId:sideways"}, {"page": 0}, {"size": 5000}):
        r = await c.get("/api/v1/triggers/search", params=params)
        assert r.status_code == 400 and r.json()["message"], (params, r.text)
    r = await c.get(f"/api/v1/triggers/{ns}/missing")
    assert r.status_code == 404 and "not deployed" in r.json()["message"]


async def test_disable_and_enable_a_schedule_trigger(api: Api) -> None:
    c, ns = api.client, api.ns
    await api.deploy(scheduled(ns))
    body = {"namespace": ns, "flowId": "sched", "triggerId": "hourly", "disabled": True}
    r = await c.put("/api/v1/triggers", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["disabled"] is True and r.json()["disabledReason"]
    assert (await kv_state(api, ns, "sched", "hourly"))["disabled"] is True
    r = await c.get(f"/api/v1/triggers/{ns}/sched", params={"q": "hourly"})
    assert r.json()["results"][0]["disabled"] is True

    r = await c.put("/api/v1/triggers", json={**body, "disabled": False})
    assert r.status_code == 200 and r.json()["disabled"] is False
    assert (await kv_state(api, ns, "sched", "hourly"))["disabled"] is False

    # bulk: by listed triggers, then by query
    refs = {"triggers": [{"namespace": ns, "flowId": "sched", "triggerId": "hourly"}], "disabled": True}
    r = await c.post("/api/v1/triggers/set-disabled/by-triggers", json=refs)
    assert r.status_code == 200 and r.json() == {"count": 1}
    assert (await kv_state(api, ns, "sched", "hourly"))["disabled"] is True
    # A query searches the flows' projection: the route waits for every flow saved before it.
    r = await c.post("/api/v1/triggers/set-disabled/by-query", params={"namespace": ns, "disabled": False})
    assert r.status_code == 200 and r.json() == {"count": 1}  # the webhook is not toggled
    assert (await kv_state(api, ns, "sched", "hourly"))["disabled"] is False

    # bad input
    r = await c.put("/api/v1/triggers", json={**body, "triggerId": "hook"})
    assert r.status_code == 422 and "Schedule" in r.json()["message"]
    r = await c.put("/api/v1/triggers", json={**body, "triggerId": "nope"})
    assert r.status_code == 404 and "hourly" in r.json()["message"]  # names the triggers it has
    r = await c.put("/api/v1/triggers", json={**body, "flowId": "nope"})
    assert r.status_code == 404
    r = await c.put("/api/v1/triggers", json={"namespace": ns, "flowId": "sched", "triggerId": "hourly"})
    assert r.status_code == 400 and "nothing to update" in r.json()["message"]
    r = await c.put("/api/v1/triggers", json={"namespace": ns})
    assert r.status_code == 400 and r.json()["message"]
    r = await c.put("/api/v1/triggers", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    bad_refs = {"triggers": [*refs["triggers"], {"namespace": ns, "flowId": "sched", "triggerId": "hook"}]}
    r = await c.post("/api/v1/triggers/set-disabled/by-triggers", json=bad_refs)
    assert r.status_code == 422
    assert (await kv_state(api, ns, "sched", "hourly"))["disabled"] is False  # nothing changed

    # a trigger disabled in the YAML is not enabled through the API
    await api.deploy(
        scheduled(ns, "off").replace('cron: "0 * * * *"', 'cron: "0 * * * *"\n    disabled: true')
    )
    r = await c.put("/api/v1/triggers", json={**body, "flowId": "off", "disabled": False})
    assert r.status_code == 409 and "YAML" in r.json()["message"]


async def test_backfill_creates_one_execution_per_slot(api: Api) -> None:
    from triggers.schedule import slot_execution_id

    c, ns = api.client, api.ns
    await api.deploy(scheduled(ns))
    body = {
        "namespace": ns,
        "flowId": "sched",
        "triggerId": "hourly",
        "backfill": {
            "start": "2026-01-01T00:00:00Z",
            "end": "2026-01-01T02:30:00Z",
            "inputs": {"n": 7},
            "labels": [{"key": "origin", "value": "backfill"}],
        },
    }
    r = await c.put("/api/v1/triggers", json=body, params={"wait": True})
    assert r.status_code == 200, r.text
    backfill = r.json()["backfill"]
    assert backfill["status"] == "DONE" and backfill["total"] == 3 and backfill["created"] == 3, backfill
    slots = [datetime(2026, 1, 1, h, tzinfo=UTC) for h in range(3)]
    ids = [slot_execution_id(ns, "sched", "hourly", s) for s in slots]
    for eid in ids:
        doc = await api.wait_state(eid, "SUCCESS")
        assert doc["inputs"]["n"] == 7
        assert {"key": "origin", "value": "backfill"} in doc["labels"]
    r = await c.get("/api/v1/executions/search", params={"namespace": ns, "flowId": "sched"})
    assert r.json()["total"] == 3

    again = await c.put("/api/v1/triggers", json=body, params={"wait": True})  # idempotent
    assert again.status_code == 200 and again.json()["backfill"]["created"] == 3
    await api.settle()
    r = await c.get("/api/v1/executions/search", params={"namespace": ns, "flowId": "sched"})
    assert r.json()["total"] == 3

    # bad input: 4xx, and nothing is created
    cases = [
        ({"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, 400, "before"),
        ({"start": "yesterday"}, 400, "ISO"),
        ({"end": "2026-01-01T00:00:00Z"}, 400, "start"),
        (
            {"start": "2026-02-01T00:00:00Z", "end": "2026-02-01T01:00:00Z", "inputs": {"n": "x"}},
            422,
            "input",
        ),
        ({"start": "2026-02-01T00:00:00Z", "labels": [{"key": "k"}]}, 400, "labels"),
    ]
    for window, status, word in cases:
        r = await c.put("/api/v1/triggers", json={**body, "backfill": window})
        assert r.status_code == status and word in r.json()["message"], (window, r.text)
    r = await c.put("/api/v1/triggers", json={**body, "triggerId": "hook"})
    assert r.status_code == 422 and "Schedule" in r.json()["message"]
    await api.settle()
    r = await c.get("/api/v1/executions/search", params={"namespace": ns, "flowId": "sched"})
    assert r.json()["total"] == 3


async def test_backfill_pause_unpause_delete(api: Api) -> None:
    c, ns = api.client, api.ns
    await api.deploy(scheduled(ns))
    ref = {"namespace": ns, "flowId": "sched", "triggerId": "hourly"}
    r = await c.put("/api/v1/triggers/backfill/pause", json=ref)
    assert r.status_code == 400 and "no backfill" in r.json()["message"]

    window = {"start": "2025-01-01T00:00:00Z", "end": "2025-03-01T00:00:00Z"}  # 1,417 hourly slots
    r = await c.put("/api/v1/triggers", json={**ref, "backfill": window})
    assert r.status_code == 200 and r.json()["backfill"]["status"] == "RUNNING", r.text
    r = await c.put("/api/v1/triggers/backfill/pause", json=ref)
    assert r.status_code == 200 and r.json()["backfill"]["status"] == "PAUSED", r.text
    assert r.json()["backfill"]["paused"] is True
    r = await c.get(f"/api/v1/triggers/{ns}/sched", params={"q": "hourly"})
    assert r.json()["results"][0]["backfill"]["status"] == "PAUSED"
    r = await c.put("/api/v1/triggers", json={**ref, "backfill": {**window, "end": "2025-02-01T00:00:00Z"}})
    assert r.status_code == 409 and "cancel it first" in r.json()["message"]  # another window: refused

    r = await c.put("/api/v1/triggers/backfill/unpause", json=ref)
    assert r.status_code == 200 and r.json()["backfill"]["status"] == "RUNNING"
    r = await c.post("/api/v1/triggers/backfill/delete", json=ref)
    assert r.status_code == 200 and r.json()["backfill"]["status"] == "CANCELLED"
    created = r.json()["backfill"]["created"]
    assert created < r.json()["backfill"]["total"]
    r = await c.put("/api/v1/triggers/backfill/pause", json=ref)
    assert r.status_code == 409 and "CANCELLED" in r.json()["message"]
    r = await c.post("/api/v1/triggers/backfill/pause/by-triggers", json=[ref])
    assert r.status_code == 200 and r.json() == {"count": 0}  # nothing to pause: skipped

    # a new window after a cancelled one, then the bulk routes
    r = await c.put("/api/v1/triggers", json={**ref, "backfill": window})
    assert r.status_code == 200 and r.json()["backfill"]["status"] == "RUNNING"
    r = await c.post("/api/v1/triggers/backfill/pause/by-triggers", json=[ref])
    assert r.json() == {"count": 1}
    r = await c.post("/api/v1/triggers/backfill/delete/by-triggers", json=[ref])
    assert r.json() == {"count": 1}
    r = await c.get(f"/api/v1/triggers/{ns}/sched", params={"q": "hourly"})
    assert r.json()["results"][0]["backfill"]["status"] == "CANCELLED"

    # bad input
    r = await c.put("/api/v1/triggers/backfill/pause", json={**ref, "triggerId": "hook"})
    assert r.status_code == 422
    r = await c.put("/api/v1/triggers/backfill/pause", json={**ref, "flowId": "nope"})
    assert r.status_code == 404
    r = await c.post("/api/v1/triggers/backfill/delete", json={"namespace": ns})
    assert r.status_code == 400


async def test_a_trigger_is_found_before_the_indexer_projects_its_flow(api: Api) -> None:
    """The PUT and the flow's trigger list right after a flow's save: the projection may not have
    it yet (a busy indexer answered "its triggers: none"); the stored flow decides."""
    c, ns = api.client, api.ns
    projecting = api.indexer._task  # the projection stops; the index's connection stays open
    assert projecting is not None
    projecting.cancel()
    await asyncio.gather(projecting, return_exceptions=True)
    await api.deploy(scheduled(ns))
    body = {"namespace": ns, "flowId": "sched", "triggerId": "hourly", "disabled": True}
    r = await c.put("/api/v1/triggers", json=body)
    assert r.status_code == 200, r.text
    assert (await kv_state(api, ns, "sched", "hourly")).get("disabled") is True
    r = await c.put("/api/v1/triggers", json={**body, "triggerId": "nope"})
    assert r.status_code == 404 and "its triggers: hourly, hook" in r.json()["message"]
    r = await c.get(f"/api/v1/triggers/{ns}/sched", params={"q": "hourly"})
    assert r.status_code == 200 and r.json()["total"] == 1, r.text
    assert r.json()["results"][0]["disabled"] is True
