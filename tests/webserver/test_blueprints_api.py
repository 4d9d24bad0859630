"""``GET /api/v1/blueprints`` and ``/api/v1/blueprints/{id}`` serve the shipped blueprints."""

from __future__ import annotations

import pytest
from conftest import Api

from engine.blueprints import all_blueprints, blueprint

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


async def test_list_filter_and_get(api: Api) -> None:
    r = await api.client.get("/api/v1/blueprints")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["total"] == len(all_blueprints()) >= 25
    assert [b["id"] for b in doc["results"]] == [b.id for b in all_blueprints()]

    r = await api.client.get("/api/v1/blueprints", params={"tags": ["kv"], "q": "counter"})
    assert [b["id"] for b in r.json()["results"]] == ["kv-counter"]

    r = await api.client.get("/api/v1/blueprints/python-etl")
    assert r.status_code == 200
    one = r.json()
    assert one["flow"] == blueprint("python-etl").source
    assert "io.kestra.plugin.scripts.python.Script" in one["includedTasks"]

    r = await api.client.get("/api/v1/blueprints/nope")
    assert r.status_code == 404 and "no blueprint 'nope'" in r.json()["message"]


async def test_a_blueprint_from_the_api_deploys_and_runs(api: Api) -> None:
    source = (await api.client.get("/api/v1/blueprints/hello-world")).json()["flow"]
    await api.deploy(source)
    r = await api.client.post("/api/v1/executions/company.team/hello-world")
    assert r.status_code == 200, r.text
    done = await api.wait_state(r.json()["id"], "SUCCESS", "FAILED")
    assert done["state"]["current"] == "SUCCESS"
