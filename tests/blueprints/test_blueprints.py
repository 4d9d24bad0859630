"""Every shipped blueprint validates and runs here without the internet, and ``engine blueprints
list|show|use`` serve them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.blueprints import all_blueprints, blueprint, search
from engine.cli import app
from engine.inputs import resolve_inputs
from engine.loader.loader import load_flow
from engine.testing.run import MemoryEngine

pytestmark = pytest.mark.anyio

IDS = [b.id for b in all_blueprints()]


def test_at_least_25_blueprints_with_titles_tags_and_descriptions() -> None:
    assert len(IDS) >= 25
    for b in all_blueprints():
        assert b.title != b.id and b.tags and b.description, b.id
        assert b.included_tasks, b.id


@pytest.mark.parametrize("blueprint_id", IDS)
def test_each_blueprint_validates_strictly(blueprint_id: str) -> None:
    flow = load_flow(blueprint(blueprint_id).source, file=blueprint_id, strict_expressions=True)
    assert flow.id == blueprint_id


@pytest.mark.parametrize("blueprint_id", IDS)
async def test_each_blueprint_runs_to_its_expected_state(blueprint_id: str) -> None:
    item = blueprint(blueprint_id)
    async with MemoryEngine() as eng:
        for other in all_blueprints():  # a parent's subflow is another blueprint
            await eng.deploy(other.source)
        flow = await eng.deploy(item.source)
        state = await eng.run(flow, resolve_inputs(flow, {}, eng.expressions.render), timeout=45)
        logs = await eng.store.read_logs(state.id)
    errors = [f"{line.task_id}: {line.message}" for line in logs if line.level == "ERROR"]
    assert state.state == item.expect, errors
    assert state.taskruns


def test_search_by_text_and_tag() -> None:
    assert {b.id for b in search(tags=["kv"])} == {"kv-counter", "kv-last-run"}
    assert [b.id for b in search("duckdb", ["python"])] == ["python-duckdb-csv", "python-etl"]
    assert search("no such thing anywhere") == []


runner = CliRunner()


def test_cli_list_json_show_and_use(tmp_path: Path) -> None:
    res = runner.invoke(app, ["blueprints", "list", "--output", "json"])
    assert res.exit_code == 0, res.output
    listed = json.loads(res.stdout)
    assert [b["id"] for b in listed] == IDS
    assert {"id", "title", "description", "tags", "includedTasks"} <= set(listed[0])

    res = runner.invoke(app, ["blueprints", "show", "kv-counter"])
    assert res.exit_code == 0 and "KV store counter" in res.stdout and "kv.Set" in res.stdout

    target = tmp_path / "flows" / "counter.yaml"
    res = runner.invoke(app, ["blueprints", "use", "kv-counter", "-o", str(target)])
    assert res.exit_code == 0, res.output
    assert target.read_text() == blueprint("kv-counter").source
    res = runner.invoke(app, ["blueprints", "use", "kv-counter", "-o", str(target)])
    assert res.exit_code == 1 and "exists" in res.output

    res = runner.invoke(app, ["blueprints", "use", "hello-wrld"])
    assert res.exit_code == 1 and "did you mean hello-world" in res.output
