"""End to end on the real nats-server: a Python Script using Kestra's ``kestra`` module unchanged, its
outputs read by the next task, its metrics served by ``/api/v1/metrics/{executionId}`` and ``/metrics``."""

from __future__ import annotations

import pytest
from conftest import Api

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


def flow(ns: str) -> str:
    return f"""id: metrics
namespace: {ns}
tasks:
  - id: py
    type: io.kestra.plugin.scripts.python.Script
    script: |
      from kestra import Kestra
      Kestra.outputs({{"rows": 10, "table": "orders"}})
      Kestra.counter("rows", 10)
      Kestra.counter("rows", 2, {{"table": "orders"}})
      Kestra.timer("load", 1.5)
      Kestra.gauge("ratio", 0.5)
      Kestra.gauge("ratio", 0.75)
  - id: use
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ outputs.py.vars.rows }}}} rows of {{{{ outputs.py.vars.table }}}}"
"""


async def test_script_outputs_and_metrics_reach_the_api(api: Api) -> None:
    c, ns = api.client, api.ns
    await api.deploy(flow(ns))
    r = await c.post(f"/api/v1/executions/{ns}/metrics")
    assert r.status_code == 200, r.text
    eid = r.json()["id"]
    doc = await api.wait_state(eid, "SUCCESS")
    runs = {t["taskId"]: t for t in doc["taskRunList"]}
    assert runs["use"]["outputs"]["value"] == "10 rows of orders"
    assert {m["name"] for m in runs["py"]["attempts"][0]["metrics"]} == {"rows", "load", "ratio"}

    r = await c.get(f"/api/v1/metrics/{eid}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == 5  # the script's 4 and debug.Return's `length`
    entries = {(e["name"], tuple(sorted(e["tags"].items()))): e for e in body["results"]}
    rows = entries[("rows", ())]
    assert rows["value"] == 10.0 and rows["type"] == "counter"
    assert rows["executionId"] == eid and rows["taskId"] == "py" and rows["namespace"] == ns
    assert rows["taskRunId"] == runs["py"]["id"] and rows["flowId"] == "metrics" and rows["timestamp"]
    assert entries[("rows", (("table", "orders"),))]["value"] == 2.0
    assert entries[("load", ())]["value"] == 1500.0 and entries[("load", ())]["type"] == "timer"
    assert entries[("ratio", ())]["value"] == 0.75 and entries[("ratio", ())]["type"] == "gauge"

    page = (await c.get(f"/api/v1/metrics/{eid}", params={"size": 1, "page": 2})).json()
    assert page["total"] == 5 and len(page["results"]) == 1
    used = (await c.get(f"/api/v1/metrics/{eid}", params={"taskId": "use"})).json()
    assert used["total"] == 1 and used["results"][0]["name"] == "length"
    assert used["results"][0]["value"] == len("10 rows of orders")
    by_run = (await c.get(f"/api/v1/metrics/{eid}", params={"taskRunId": runs["py"]["id"]})).json()
    assert by_run["total"] == 4
    assert (await c.get("/api/v1/metrics/nosuchexecution")).status_code == 404
    tenant = await c.get(f"/api/v1/main/metrics/{eid}")  # Kestra's path, tenant `main`
    assert tenant.status_code == 200 and tenant.json() == body

    await api.settle()
    text = (await c.get("/metrics")).text
    labels = f'flow_id="metrics",name="rows",namespace="{ns}",task_id="py"'
    assert f"engine_task_counter_total{{{labels}}} 12.0" in text
    timer = f'flow_id="metrics",name="load",namespace="{ns}",task_id="py"'
    assert f"engine_task_timer_seconds_sum{{{timer}}} 1.5" in text
    assert f"engine_task_timer_seconds_count{{{timer}}} 1.0" in text
    gauge = f'flow_id="metrics",name="ratio",namespace="{ns}",task_id="py"'
    assert f"engine_task_gauge{{{gauge}}} 0.75" in text
