"""Inputs delivered twice (a retried publish past the dedup window, a redelivery) change nothing."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from integration_helpers import Engine

from engine.clock import utcnow
from engine.core import events as ev

pytestmark = pytest.mark.anyio


async def test_a_second_create_for_an_existing_execution_is_refused_by_the_log(eng: Engine) -> None:
    ns = f"it.idem{uuid.uuid4().hex[:8]}"
    flow = await eng.deploy(
        f"id: once\nnamespace: {ns}\ntasks:\n  - {{id: a, type: io.kestra.plugin.core.log.Log, message: x}}\n"
    )
    state = await eng.run(
        f"id: once\nnamespace: {ns}\ntasks:\n  - {{id: a, type: io.kestra.plugin.core.log.Log, message: x}}\n"
    )
    steps = len(await eng.rt.store.read(state.id))
    again = ev.ExecutionCreated(
        date=utcnow(),
        execution_id=state.id,
        namespace=flow.namespace,
        flow_id=flow.id,
        flow_revision=flow.revision,
    )
    # A different Nats-Msg-Id: only the log's optimistic concurrency can catch it.
    await eng.rt.store.send_input(state.id, again, msg_id=f"{state.id}:created-again")
    await eng.rt.store.send_input(
        state.id, ev.AttemptEnded(date=utcnow(), taskrun_id="nope", attempt=1, state="SUCCESS")
    )
    # Wait until the executor has taken both inputs off the work-queue inbox (acked = processed).
    from eventstore import subjects as S

    stream = f"{S.INBOX}_{S.shard(state.id)}"
    for _ in range(200):
        info = await eng.rt.store.js.stream_info(stream, subjects_filter=S.inbox(state.id))
        if not info.state.subjects:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the executor never consumed the duplicate inputs")
    assert len(await eng.rt.store.read(state.id)) == steps
    after = await eng.load(state.id)
    assert after.state == "SUCCESS" and len(after.taskruns) == 1
