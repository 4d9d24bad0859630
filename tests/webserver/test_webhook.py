"""Kestra's Webhook trigger through the API: body, headers and parameters reach `trigger`."""
# ruff: noqa: E501 - flow YAML inside

from __future__ import annotations

import pytest
from conftest import Api

pytestmark = pytest.mark.anyio


def hooked(ns: str, wait: bool) -> str:
    return f"""
id: hooked
namespace: {ns}
tasks:
  - id: echo
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ trigger.body.name }}}}-{{{{ trigger.parameters.lang[0] }}}}-{{{{ trigger.headers['x-team'][0] }}}}"
outputs:
  - id: said
    type: STRING
    value: "{{{{ outputs.echo.value }}}}"
triggers:
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: s3cr3t
    wait: {str(wait).lower()}
    returnOutputs: true
"""


async def test_webhook_starts_an_execution_with_the_request(api: Api) -> None:
    c, ns = api.client, api.ns
    await api.deploy(hooked(ns, wait=True))
    r = await c.post(
        f"/api/v1/executions/webhook/{ns}/hooked/s3cr3t",
        params={"lang": "fr"},
        json={"name": "ada"},
        headers={"X-Team": "data"},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"said": "ada-fr-data"}
    wrong = await c.post(f"/api/v1/executions/webhook/{ns}/hooked/nope", json={})
    assert wrong.status_code == 404 and "Webhook" in wrong.json()["message"]


async def test_webhook_without_wait_answers_at_once(api: Api) -> None:
    c, ns = api.client, api.ns
    await api.deploy(hooked(ns, wait=False))
    r = await c.get(f"/api/v1/executions/webhook/{ns}/hooked/s3cr3t", params={"lang": "en"})
    assert r.status_code == 200, r.text
    state = await api.wait_state(r.json()["id"], "FAILED", "SUCCESS")
    assert state["state"]["current"] == "FAILED"  # no body: `trigger.body.name` is undefined, an error
