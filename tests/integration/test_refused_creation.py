"""On the real store: a creation that can never succeed ends FAILED once, and says why."""

from __future__ import annotations

import pytest
from integration_helpers import Engine

from engine.clock import utcnow
from engine.core import events as ev
from engine.ids import new_execution_id

pytestmark = pytest.mark.anyio

FLOW = """
id: deployed
namespace: trust.poison
tasks:
  - id: t
    type: io.kestra.plugin.core.debug.Return
    format: x
"""


async def test_a_creation_for_a_revision_not_deployed_ends_failed(eng: Engine) -> None:
    flow = await eng.deploy(FLOW)
    eid = new_execution_id()
    created = ev.ExecutionCreated(
        date=utcnow(), execution_id=eid, namespace=flow.namespace, flow_id=flow.id, flow_revision=99
    )

    async def start() -> None:
        await eng.rt.store.send_input(eid, created, msg_id=f"{eid}:created")

    state = await eng.rt.wait_terminal(eid, on_start=start, timeout=15)
    assert state.state == "FAILED" and not state.taskruns
    steps = await eng.rt.store.read(eid)
    reasons = [e.reason for _, step in steps for e in step if isinstance(e, ev.ExecutionStateChanged)]
    assert reasons == ["flow trust.poison.deployed revision 99 is not deployed"]
    logs = [line.message for line in await eng.rt.store.read_logs(eid)]
    assert reasons[0] in logs
