"""Outputs too large for the event store fail their task, naming the size and the limit: never a hang."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from integration_helpers import Engine, by_task

from engine.aio import stop_tasks
from engine.core import events as ev
from engine.core.errors import PayloadTooLarge
from engine.ids import new_execution_id
from engine.runtime import Runtime
from workers.worker import MAX_OUTPUTS

pytestmark = pytest.mark.anyio


def big_return(chars: int) -> str:
    return f"""
id: big
namespace: trust.outputs
tasks:
  - id: big
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ 'x' * {chars} }}}}"
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ outputs.big.value | length }}}}"
"""


async def attempt_errors(store: Any, execution_id: str) -> list[str | None]:
    return [
        e.error for _, step in await store.read(execution_id) for e in step if isinstance(e, ev.AttemptEnded)
    ]


async def test_outputs_over_the_servers_max_payload_fail_the_task_instead_of_retrying_forever(
    nats_url: str, tmp_path: Path
) -> None:
    async with Runtime(nats_url=nats_url, home=tmp_path / "home") as rt:
        # No limit of the worker's own: the server's max_payload (8 MB) is what refuses the report.
        worker = rt.worker(max_outputs=1 << 30)
        roles = [asyncio.create_task(rt.executor().run()), asyncio.create_task(worker.run())]
        try:
            state = await Engine(rt).run(big_return(9_000_000), timeout=30)
        finally:
            await stop_tasks(roles)
        errors = await attempt_errors(rt.store, state.id)
        logs = [line.message for line in await rt.store.read_logs(state.id)]
    assert state.state == "FAILED"
    assert by_task(state)["big"].state == "FAILED" and "after" not in by_task(state)
    assert len(errors) == 1 and errors[0] is not None
    assert "the task's outputs are 9000" in errors[0] and "over the limit of 8388608 bytes" in errors[0]
    assert errors[0] in logs


async def test_outputs_over_the_workers_limit_fail_the_task(eng: Engine) -> None:
    state = await eng.run(big_return(2_000_000), timeout=30)
    assert state.state == "FAILED"
    assert by_task(state)["big"].state == "FAILED" and "after" not in by_task(state)
    errors = await attempt_errors(eng.rt.store, state.id)
    assert errors[0] is not None and f"over the limit of {MAX_OUTPUTS} bytes" in errors[0]


async def test_outputs_under_the_limit_pass(eng: Engine) -> None:
    state = await eng.run(big_return(900_000), timeout=30)
    assert state.state == "SUCCESS"
    assert by_task(state)["after"].outputs["value"] == "900000"


def many_returns(tasks: int, chars: int) -> str:
    lines = ["id: many", "namespace: trust.outputs", "tasks:"]
    for i in range(tasks):
        lines += [
            f"  - id: t{i}",
            "    type: io.kestra.plugin.core.debug.Return",
            f"    format: \"{{{{ 'x' * {chars} }}}}\"",
        ]
    lines += ["  - id: last", "    type: io.kestra.plugin.core.debug.Return", '    format: "never"']
    return "\n".join(lines) + "\n"


async def test_work_whose_variables_are_over_the_limit_fails_its_task(eng: Engine) -> None:
    # Each output is under the worker's limit; together, in the variables of the last task's work,
    # they are over the server's max_payload: that work can never be sent.
    state = await eng.run(many_returns(9, 990_000), timeout=60)
    assert state.state == "FAILED"
    tasks = by_task(state)
    assert all(tasks[f"t{i}"].state == "SUCCESS" for i in range(9))
    assert tasks["last"].state == "FAILED"
    errors = await attempt_errors(eng.rt.store, state.id)
    assert errors[-1] is not None and "task last: its work is" in errors[-1]
    assert "over the limit of 8388608 bytes" in errors[-1]


async def test_the_store_refuses_a_step_over_max_payload_at_once(eng: Engine) -> None:
    huge = ev.ExecutionOutputs(date="2026-01-01T00:00:00Z", outputs={"a": "x" * 9_000_000})
    with pytest.raises(PayloadTooLarge) as refused:
        await eng.rt.store.append(new_execution_id(), [huge], 0)
    assert refused.value.limit == 8 * 1024 * 1024 and refused.value.size > 9_000_000
