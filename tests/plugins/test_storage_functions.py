"""read(), fileSize(), isFileEmpty(), fileExists(), fileURI(), FILE-input upload: in-memory storage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.core.errors import ExpressionError, InputError
from engine.expressions import Expressions
from engine.files import check_local_file_inputs, storage_functions, upload_file_inputs
from engine.loader.loader import load_flow
from eventstore.storage import MemoryStorage, namespace_file_uri, task_uri

pytestmark = pytest.mark.anyio


def variables(execution: str = "E1", **extra: Any) -> dict[str, Any]:
    return {"flow": {"namespace": "company.team", "id": "my_flow"}, "execution": {"id": execution}, **extra}


async def test_functions_read_the_current_executions_files() -> None:
    storage = MemoryStorage()
    expr = Expressions(functions=storage_functions(storage))
    uri = await storage.put(task_uri("company.team", "my_flow", "E1", "t", "tr", "a.txt"), "héllo")
    empty = await storage.put(task_uri("company.team", "my_flow", "E1", "t", "tr", "e.txt"), b"")
    v = variables(uri=uri, empty=empty)
    assert await expr.render_async("{{ read(uri) }}", v) == "héllo"
    assert await expr.render_async("{{ read(path=uri) }}", v) == "héllo"
    assert await expr.evaluate_async("fileSize(uri)", v) == 6
    assert await expr.evaluate_async("isFileEmpty(empty)", v) is True
    assert await expr.evaluate_async("isFileEmpty(uri)", v) is False
    assert await expr.evaluate_async("fileExists(uri)", v) is True
    assert (
        await expr.render_async("{{ fileURI('/dir/x.sql') }}", v) == "kestra:///company/team/_files/dir/x.sql"
    )
    await storage.put(namespace_file_uri("company.team", "q.sql"), "select 1")
    assert await expr.render_async("{{ read('q.sql') }}", v) == "select 1"


async def test_functions_refuse_other_executions_and_missing_files() -> None:
    storage = MemoryStorage()
    expr = Expressions(functions=storage_functions(storage))
    other = await storage.put(task_uri("company.team", "my_flow", "E2", "t", "tr", "a.txt"), "x")
    with pytest.raises(ExpressionError, match="didn't belong to the current execution"):
        await expr.render_async("{{ read(u) }}", variables(u=other))
    # the trigger's execution and the root execution of a subflow chain are readable
    trig = {"executionId": "E2", "namespace": "company.team", "flowId": "my_flow"}
    assert await expr.render_async("{{ read(u) }}", variables(u=other, trigger=trig)) == "x"
    labels = {"system.correlationId": "E2"}
    assert await expr.render_async("{{ read(u) }}", variables(u=other, labels=labels)) == "x"
    missing = task_uri("company.team", "my_flow", "E1", "t", "tr", "none.txt")
    with pytest.raises(ExpressionError, match="file not found in internal storage"):
        await expr.render_async("{{ fileSize(u) }}", variables(u=missing))
    assert await expr.evaluate_async("fileExists(u)", variables(u=missing)) is False
    with pytest.raises(ExpressionError, match="path"):
        await expr.render_async("{{ read() }}", variables())


FLOW = """
id: up
namespace: company.team
inputs:
  - id: f
    type: FILE
  - id: nested.g
    type: FILE
    required: false
  - id: s
    type: STRING
tasks:
  - id: x
    type: io.kestra.plugin.core.log.Log
    message: hi
"""


async def test_file_inputs_are_uploaded(tmp_path: Path) -> None:
    flow = load_flow(FLOW)
    local = tmp_path / "data.csv"
    local.write_text("1,2")
    storage = MemoryStorage()
    inputs = {"f": str(local), "nested": {"g": str(local)}, "s": "text"}
    out = await upload_file_inputs(flow, inputs, "E9", storage)
    assert out["f"] == "kestra:///company/team/up/executions/E9/inputs/f/data.csv"
    assert out["nested"]["g"] == "kestra:///company/team/up/executions/E9/inputs/nested.g/data.csv"
    assert out["s"] == "text" and inputs["f"] == str(local)
    assert await storage.get(out["f"]) == b"1,2"
    again = await upload_file_inputs(flow, out, "E9", storage)  # kestra:// values are kept
    assert again == out
    with pytest.raises(InputError, match="no file"):
        check_local_file_inputs(flow, {"f": str(tmp_path / "missing.csv"), "s": "x"})
