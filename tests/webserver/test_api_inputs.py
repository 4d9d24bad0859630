"""The API refuses an input name the flow does not declare, naming the ones it does (issue 13)."""

from __future__ import annotations

import pytest
from conftest import Api

pytestmark = pytest.mark.anyio


async def test_an_unknown_input_is_refused_with_the_declared_names(api: Api) -> None:
    await api.deploy(f"""id: typed
namespace: {api.ns}
inputs:
  - id: name
    type: STRING
    defaults: world
  - id: count
    type: INT
    required: false
tasks:
  - id: hi
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ inputs.name }}}}"
""")
    r = await api.client.post(f"/api/v1/executions/{api.ns}/typed", json={"nmae": "Ada"})
    assert r.status_code == 422, r.text
    body = r.json()
    assert f"unknown input 'nmae' for flow {api.ns}.typed; its inputs: name, count" in body["message"]
    assert [e["input"] for e in body["errors"]] == ["nmae"]
    r = await api.client.post(f"/api/v1/executions/{api.ns}/typed", json={"name": "Ada"})
    assert r.status_code == 200, r.text
    # multipart too, refused before any of its files is stored
    r = await api.client.post(
        f"/api/v1/executions/{api.ns}/typed", files={"nmae": ("a.txt", b"x")}, data={"name": "Ada"}
    )
    assert r.status_code == 422 and "its inputs: name, count" in r.json()["message"], r.text
