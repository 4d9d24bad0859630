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


async def test_with_api_auth_on_the_webhook_is_open_and_its_key_is_the_secret(api: Api) -> None:
    """As in Kestra: a webhook caller has no API credentials; a wrong key finds nothing."""
    from conftest import asgi_client

    from webserver.app import Auth, create_app

    await api.deploy(hooked(api.ns, wait=True))
    app = create_app(api.rt, api.indexer, Auth(tokens=frozenset({"tok123"})))
    async with asgi_client(app) as c:
        url = f"/api/v1/executions/webhook/{api.ns}/hooked"
        r = await c.post(
            f"{url}/s3cr3t", params={"lang": "fr"}, json={"name": "ada"}, headers={"X-Team": "d"}
        )
        assert r.status_code == 200, r.text
        assert (await c.post(f"{url}/s3cr3", json={})).status_code == 404
        assert (await c.get("/api/v1/flows/search")).status_code == 401  # the rest of the API is not


async def test_a_webhook_body_over_the_limit_is_refused_with_413(api: Api) -> None:
    from webserver.http import MAX_BODY

    await api.deploy(hooked(api.ns, wait=False))
    big = b"x" * (MAX_BODY + 1)
    r = await api.client.post(f"/api/v1/executions/webhook/{api.ns}/hooked/s3cr3t", content=big)
    assert r.status_code == 413 and "limit" in r.json()["message"]
