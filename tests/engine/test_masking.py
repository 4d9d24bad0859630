"""Secrets are masked where they are rendered: a worker's log lines and outputs, flow outputs."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from engine.core.masking import MASK, masked, masked_text
from engine.core.model import Task
from engine.core.work import WorkItem
from engine.expressions import Expressions
from engine.loader.loader import load_flow
from engine.runtime import make_expressions
from engine.testing import simulate
from eventstore.store import LogLine
from plugins.api import KVStore
from workers.context import TaskRunContext


def test_masked_replaces_every_secret_in_nested_values() -> None:
    value = {"a": "token=abc123!", "list": ["abc123", ("x abc123",)], "abc123": 1, "n": 5}
    assert masked(value, ["abc123"]) == {
        "a": f"token={MASK}!",
        "list": [MASK, (f"x {MASK}",)],
        MASK: 1,
        "n": 5,
    }


def test_a_secret_inside_another_is_masked_whole_and_tiny_values_are_left() -> None:
    assert masked_text("pass=hunter22 hunter2", ["hunter2", "hunter22"]) == f"pass={MASK} {MASK}"
    assert masked_text("a b", ["a"]) == "a b"


class _NoKV:
    def __getattr__(self, name: str) -> Any:  # the test renders no kv()
        raise AssertionError(name)


@pytest.mark.anyio
async def test_the_worker_context_masks_what_secret_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_API_TOKEN", base64.b64encode(b"s3cr3t-value").decode())
    lines: list[LogLine] = []
    item = WorkItem(
        execution_id="e",
        taskrun_id="t",
        attempt=1,
        task=Task(id="t", type="x"),
        namespace="n",
        flow_id="f",
        flow_revision=1,
        variables={},
        secrets=["input-secret"],
    )
    kv: KVStore = _NoKV()
    ctx = TaskRunContext(item, 1, None, kv, make_expressions(None), lines.append)
    rendered = await ctx.render("Bearer {{ secret('API_TOKEN') }}")
    assert rendered == "Bearer s3cr3t-value"  # the task itself gets the real value
    ctx.log("INFO", f"calling with {rendered} and input-secret")
    assert lines[0].message == f"calling with Bearer {MASK} and {MASK}"
    assert ctx.masked({"header": rendered}) == {"header": f"Bearer {MASK}"}


def test_flow_outputs_that_render_a_secret_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_DB_PASSWORD", base64.b64encode(b"pa55word-xyz").decode())
    flow = load_flow(
        """
id: f
namespace: n
tasks:
  - id: t
    type: io.kestra.plugin.core.debug.Return
    format: x
outputs:
  - id: dsn
    type: STRING
    value: "postgres://app:{{ secret('DB_PASSWORD') }}@db"
"""
    )
    sim = simulate(flow, renderer=make_expressions(None))
    assert sim.state.state == "SUCCESS"
    assert sim.state.outputs == {"dsn": f"postgres://app:{MASK}@db"}


def test_without_secret_nothing_changes() -> None:
    templates = Expressions().for_step("2026-01-01T00:00:00Z", "s")
    assert templates.masked({"a": "b"}) == {"a": "b"}
