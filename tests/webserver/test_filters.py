"""Kestra's tenant path and query filters (``filters[field][OPERATION]=value``) on every search."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Api
from litestar.exceptions import HTTPException

from webserver.filters import EXECUTIONS, FLOWS, LOGS, TRIGGERS, parse

pytestmark = pytest.mark.anyio
YAML = {"content-type": "application/x-yaml"}


def flow(ns: str, fid: str, team: str, extra: str = "") -> str:
    return f"""id: {fid}
namespace: {ns}
labels:
  team: {team}
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: "{fid} says hi"
  - id: warn
    type: io.kestra.plugin.core.log.Log
    level: WARN
    message: "{fid} is careful"
{extra}"""


SCHEDULE = """triggers:
  - id: hourly
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "0 * * * *"
    disabled: true
"""


def refused(resource: Any, query: list[tuple[str, str]]) -> str:
    with pytest.raises(HTTPException) as info:
        resource.where(parse(query))
    assert info.value.status_code == 400
    return str(info.value.detail)


def test_parse_groups_and_maps() -> None:
    tree = parse(
        [
            ("filters[namespace][PREFIX]", "a"),
            ("filters[labels][EQUALS][team]", "data"),
            ("filters[labels][EQUALS][env]", "prod"),
            ("page", "1"),
        ]
    )
    assert tree is not None and tree.logical == "and" and len(tree.children) == 2
    sql, params = FLOWS.where(tree)
    assert params == ["a", "a.", "team:data", "env:prod"] and " AND " in sql
    tree = parse([("filters[or][0][flowId][EQUALS]", "x"), ("filters[or][1][flowId][EQUALS]", "y")])
    sql, params = FLOWS.where(tree)
    assert " OR " in sql and params == ["x", "y"]
    assert parse([("page", "1")]) is None


def test_a_wrong_filter_is_a_400_naming_it() -> None:
    assert "'nope'" in refused(FLOWS, [("filters[nope][EQUALS]", "x")])
    assert "'SAME'" in refused(FLOWS, [("filters[flowId][SAME]", "x")])
    message = refused(FLOWS, [("filters[state][EQUALS]", "SUCCESS")])  # a field of executions
    assert "flows search has no filter field 'state'" in message
    assert "GREATER_THAN is not supported for field 'flowId'" in refused(
        EXECUTIONS, [("filters[flowId][GREATER_THAN]", "x")]
    )
    assert "'DONE' is not a state" in refused(EXECUTIONS, [("filters[state][IN]", "SUCCESS,DONE")])
    assert "not supported" in refused(LOGS, [("filters[triggerId][EQUALS]", "x")])
    assert "not supported" in refused(TRIGGERS, [("filters[workerId][EQUALS]", "x")])
    assert "RE2" in refused(FLOWS, [("filters[flowId][REGEX]", "(?=a)b")])
    assert "not a regular expression" in refused(FLOWS, [("filters[flowId][REGEX]", "(a")])
    assert "ISO-8601" in refused(EXECUTIONS, [("filters[startDate][GREATER_THAN]", "yesterday")])
    assert "more than" in refused(FLOWS, [("filters[flowId][IN]", "x")] * 60)
    assert "not a filter" in refused(FLOWS, [("filters[flowId]x[EQUALS]", "x")])


async def ids(api: Api, path: str, params: list[tuple[str, str]], key: str = "id") -> list[str]:
    r = await api.client.get(path, params=params)
    assert r.status_code == 200, r.text
    return [x[key] for x in r.json()["results"]]


def test_webhooks_stay_open_under_the_tenant_path() -> None:
    from webserver.auth import PUBLIC_PATHS

    assert PUBLIC_PATHS.match("/api/v1/main/executions/webhook/ns/flow/key")
    assert PUBLIC_PATHS.match("/api/v1/executions/webhook/ns/flow/key")
    assert not PUBLIC_PATHS.match("/api/v1/main/flows/ns/flow")
    assert not PUBLIC_PATHS.match("/api/v1/main/x/executions/webhook/ns/flow/key")


async def test_tenant_path_and_alias(api: Api) -> None:
    c, ns = api.client, api.ns
    r = await c.post("/api/v1/main/flows", content=flow(ns, "a", "data"), headers=YAML)
    assert r.status_code == 200, r.text
    assert r.json()["updated"].endswith("Z")  # Kestra's flow ``updated``: when the revision was stored
    got = (await c.get(f"/api/v1/main/flows/{ns}/a")).json()
    assert got["id"] == "a" and got["updated"] == r.json()["updated"]
    assert (await c.get(f"/api/v1/flows/{ns}/a")).json()["id"] == "a"  # the alias
    r = await c.get(f"/api/v1/acme/flows/{ns}/a")
    assert r.status_code == 404 and "tenant 'acme' does not exist" in r.json()["message"]
    spec = (await c.get("/api/v1/openapi.json")).json()
    assert "/api/v1/{tenant}/flows/search" in spec["paths"] and "/api/v1/flows/search" not in spec["paths"]


async def test_filters_filter_flows_executions_logs_triggers(api: Api) -> None:
    c, ns = api.client, api.ns
    sources = (
        flow(ns, "alpha", "data", SCHEDULE),
        flow(ns, "beta", "ops"),
        flow(ns + ".sub", "gamma", "data"),
    )
    for source in sources:
        assert (await c.post("/api/v1/main/flows", content=source, headers=YAML)).status_code == 200
    search = "/api/v1/main/flows/search"
    nsf = ("filters[namespace][PREFIX]", ns)
    assert await ids(api, search, [nsf]) == ["alpha", "beta", "gamma"]
    assert await ids(api, search, [("filters[namespace][EQUALS]", ns)]) == ["alpha", "beta"]
    assert await ids(api, search, [nsf, ("filters[flowId][IN]", "alpha,gamma")]) == ["alpha", "gamma"]
    assert await ids(api, search, [nsf, ("filters[flowId][NOT_EQUALS]", "beta")]) == ["alpha", "gamma"]
    assert await ids(api, search, [nsf, ("filters[flowId][REGEX]", "^(b|g)")]) == ["beta", "gamma"]
    assert await ids(api, search, [nsf, ("filters[labels][EQUALS][team]", "data")]) == ["alpha", "gamma"]
    assert await ids(api, search, [nsf, ("filters[q][EQUALS]", "ETA")]) == ["beta"]
    assert await ids(api, search, [nsf, ("filters[flowId][EQUALS]", "nothing")]) == []  # matches none
    either = [nsf, ("filters[or][0][flowId][EQUALS]", "alpha"), ("filters[or][1][flowId][EQUALS]", "beta")]
    assert await ids(api, search, either) == ["alpha", "beta"]
    r = await c.get(search, params={"filters[colour][EQUALS]": "red"})
    assert r.status_code == 400 and "'colour'" in r.json()["message"]

    started = {}
    for fid, namespace in (("alpha", ns), ("beta", ns), ("gamma", ns + ".sub")):
        r = await c.post(f"/api/v1/main/executions/{namespace}/{fid}", params={"labels": [f"run:{fid}"]})
        started[fid] = r.json()["id"]
    for eid in started.values():
        done = await api.wait_state(eid, "SUCCESS")
        assert done["state"]["duration"].startswith("PT") and done["state"]["duration"].endswith("S")
    await api.settle()
    ex = "/api/v1/main/executions/search"
    assert sorted(await ids(api, ex, [nsf])) == sorted(started.values())
    assert await ids(api, ex, [nsf, ("filters[flowId][EQUALS]", "beta")]) == [started["beta"]]
    assert await ids(api, ex, [nsf, ("filters[state][EQUALS]", "FAILED")]) == []
    assert len(await ids(api, ex, [nsf, ("filters[state][IN]", "SUCCESS,WARNING")])) == 3
    assert await ids(api, ex, [nsf, ("filters[labels][EQUALS][run]", "gamma")]) == [started["gamma"]]
    assert await ids(api, ex, [nsf, ("filters[startDate][LESS_THAN]", "2000-01-01T00:00:00Z")]) == []
    assert len(await ids(api, ex, [nsf, ("filters[timeRange][EQUALS]", "PT1H")])) == 3
    assert len(await ids(api, ex, [nsf, ("filters[childFilter][EQUALS]", "MAIN")])) == 3
    by_flow = await ids(api, "/api/v1/main/executions", [("namespace", ns), ("flowId", "alpha")])
    assert by_flow == [started["alpha"]]

    logs = "/api/v1/main/logs/search"
    messages = await ids(api, logs, [nsf, ("filters[level][EQUALS]", "WARN")], "message")
    assert sorted(messages) == ["alpha is careful", "beta is careful", "gamma is careful"]
    one = [("filters[executionId][EQUALS]", started["beta"])]
    assert await ids(api, logs, one, "message") == ["beta is careful", "beta says hi"]
    assert await ids(api, logs, [*one, ("filters[flowId][EQUALS]", "alpha")], "message") == []

    tr = "/api/v1/main/triggers/search"
    r = await c.get(tr, params=[nsf, ("filters[triggerId][EQUALS]", "hourly")])
    assert [x["triggerContext"]["flowId"] for x in r.json()["results"]] == ["alpha"]
    r = await c.get(tr, params=[nsf, ("filters[triggerId][EQUALS]", "daily")])
    assert r.json() == {"results": [], "total": 0}


async def test_kv_listing_revision_and_inheritance(api: Api) -> None:
    c, ns = api.client, api.ns
    values = ((ns, "shared", "top"), (ns, "only_top", 1), (ns + ".team", "shared", "mine"))
    for namespace, key, value in values:
        r = await c.put(f"/api/v1/main/namespaces/{namespace}/kv/{key}", json=value)
        assert r.status_code == 200, r.text
    got = (await c.get(f"/api/v1/main/namespaces/{ns}.team/kv/shared")).json()
    assert got["value"] == "mine" and got["revision"] > 0 and got["updated"].endswith("Z")
    inherited = (await c.get(f"/api/v1/main/namespaces/{ns}.team/kv/inheritance")).json()
    assert [(e["namespace"], e["key"]) for e in inherited] == [(ns, "only_top"), (ns, "shared")]
    listed = (await c.get(f"/api/v1/main/namespaces/{ns}/kv")).json()
    assert [e["key"] for e in listed] == ["only_top", "shared"] and listed[0]["updateDate"]
    everything = await ids(api, "/api/v1/main/kv", [("filters[namespace][PREFIX]", ns)], "key")
    assert everything == ["only_top", "shared", "shared"]
    team = [("filters[namespace][EQUALS]", ns + ".team")]
    assert await ids(api, "/api/v1/main/kv", team, "key") == ["shared"]
    later = [("filters[namespace][PREFIX]", ns), ("filters[updated][GREATER_THAN]", "2999-01-01T00:00:00Z")]
    assert await ids(api, "/api/v1/main/kv", later, "key") == []
