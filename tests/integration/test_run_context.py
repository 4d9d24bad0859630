"""The worker's RunContext on a real store: what tasks read and change beyond their own run
(other executions, their logs, resuming one, a trigger switch), and the tasks that use it."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from integration_helpers import Engine, by_task

from engine.core.model import Task
from engine.core.work import WorkItem
from eventstore.storage import InternalStorage
from eventstore.store import JetStreamKV
from eventstore.triggerstate import open_trigger_kv, schedule_key
from workers.context import TaskRunContext

pytestmark = pytest.mark.anyio


def ns() -> str:
    return f"ctx.t{uuid.uuid4().hex[:10]}"


def context(eng: Engine, tmp_path: Path, namespace: str = "company.team") -> TaskRunContext:
    item = WorkItem("exec-x", "tr-x", 1, Task(id="t", type="x"), namespace, "flow-x", 1, {})
    return TaskRunContext(
        item,
        1,
        tmp_path,
        JetStreamKV(eng.rt.store),
        eng.rt.expressions,
        lambda line: None,
        InternalStorage(eng.rt.store),
    )


LOGGER = """
id: logger
namespace: {space}
tasks:
  - {{id: say, type: io.kestra.plugin.core.log.Log, message: "hello {{{{ execution.id }}}}"}}
"""


async def test_context_reads_executions_and_logs(eng: Engine, tmp_path: Path) -> None:
    space = ns()
    st = await eng.run(LOGGER.format(space=space))
    ctx = context(eng, tmp_path, space)
    loaded = await ctx.load_execution(st.id)
    assert loaded is not None and loaded.state == "SUCCESS" and loaded.flow_id == "logger"
    assert await ctx.load_execution("no-such-execution") is None
    for _ in range(50):  # log lines are published asynchronously
        lines = await ctx.read_logs(st.id)
        if lines:
            break
        await asyncio.sleep(0.1)
    assert any(line.message == f"hello {st.id}" and line.task_id == "say" for line in lines)
    counts = await ctx.count_executions(lambda e: e.namespace == space)
    assert counts == {(space, "logger"): 1}


async def test_context_resumes_and_toggles(eng: Engine, tmp_path: Path) -> None:
    space = ns()
    ctx = context(eng, tmp_path, space)
    assert await ctx.resume_execution("no-such-execution", {}) is False
    await ctx.set_trigger_disabled(space, "f", "every", True)
    kv = await open_trigger_kv(eng.rt.store)
    state, _ = await kv.get(schedule_key(space, "f", "every"))
    assert state == {"disabled": True}
    await ctx.set_trigger_disabled(space, "f", "every", False)
    state, _ = await kv.get(schedule_key(space, "f", "every"))
    assert state == {"disabled": False}


async def test_resume_task_resumes_another_execution(eng: Engine) -> None:
    space = ns()
    paused = await eng.start(f"""
id: waiting
namespace: {space}
tasks:
  - {{id: wait, type: io.kestra.plugin.core.flow.Pause}}
  - {{id: after, type: io.kestra.plugin.core.log.Log, message: resumed}}
""")
    for _ in range(100):
        state = await eng.load(paused)
        if state is not None and state.state == "PAUSED":
            break
        await asyncio.sleep(0.05)
    st = await eng.run(
        f"""
id: resumer
namespace: {space}
inputs:
  - {{id: target, type: STRING}}
tasks:
  - {{id: go, type: io.kestra.plugin.core.execution.Resume, executionId: "{{{{ inputs.target }}}}"}}
""",
        {"target": paused},
    )
    assert st.state == "SUCCESS"
    done = await eng.wait(paused)
    assert done.state == "SUCCESS" and by_task(done)["after"].state == "SUCCESS"
