"""A secret never reaches the log or the API: what a task renders with secret() is masked in its log
lines and outputs, a flow output that renders one is masked, and the raw events carry the mask."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from integration_helpers import Engine

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

SECRET = "hunter2-is-the-password"

FLOW = """
id: masked
namespace: io.secrets
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: "connecting with {{ secret('DB_PASSWORD') }}"
  - id: keep
    type: io.kestra.plugin.core.debug.Return
    format: "pw={{ secret('DB_PASSWORD') }}"
  - id: script
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - echo "script saw $PW"
      - echo '::{"outputs":{"echoed":"'"$PW"'"}}::'
    env:
      PW: "{{ secret('DB_PASSWORD') }}"
outputs:
  - id: dsn
    type: STRING
    value: "db://app:{{ secret('DB_PASSWORD') }}@host"
"""


async def test_a_secret_is_masked_in_logs_task_outputs_and_flow_outputs(
    eng: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRET_DB_PASSWORD", base64.b64encode(SECRET.encode()).decode())
    state = await eng.run(FLOW)
    assert state.state == "SUCCESS", state
    lines = [line.message for line in await eng.rt.store.read_logs(state.id)]
    assert any("connecting with ********" in m for m in lines), lines
    assert any("script saw ********" in m for m in lines), lines
    outputs: dict[str, Any] = {tr.task_id: tr.outputs for tr in state.taskruns.values()}
    assert outputs["keep"] == {"value": "pw=********"}
    assert outputs["script"]["vars"]["echoed"] == "********"
    assert state.outputs == {"dsn": "db://app:********@host"}
    everything = repr([events for _, events in await eng.rt.store.read(state.id)]) + repr(lines)
    assert SECRET not in everything
