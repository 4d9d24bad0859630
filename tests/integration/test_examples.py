"""Every flow in examples/ through the real CLI (``python -m engine run ... --output json``).

All runs but one use the session nats-server (ENGINE_NATS_URL); ``test_hello_embedded_server``
takes the default path: `engine run` starts and stops its own nats-server under ENGINE_HOME.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from integration_helpers import EXAMPLES, CliResult, pids_mentioning, run_cli, states, taskruns

Cli = Callable[..., CliResult]
ID = re.compile(r"^[0-9A-Za-z]{22}$")


def run_example(cli: Cli, name: str, *args: str, timeout: float = 20) -> tuple[int, dict[str, Any]]:
    res = cli(
        "run",
        str(EXAMPLES / name),
        "--output",
        "json",
        "--timeout",
        str(timeout),
        *args,
        timeout=timeout + 15,
    )
    assert res.stdout.strip(), f"{name}: exit {res.code}, no JSON; stderr:\n{res.stderr}"
    doc = res.json
    assert doc["state"]["current"] != "RUNNING", f"{name}: {res.diag}"
    return res.code, doc


def attempt_states(tr: dict[str, Any]) -> list[str]:
    return [a["state"]["current"] for a in tr["attempts"]]


def test_every_example_is_covered() -> None:
    covered = {
        "hello.yaml",
        "etl-shell.yaml",
        "branching.yaml",
        "foreach.yaml",
        "retry-timeout.yaml",
        "subflow-parent.yaml",
        "errors-finally.yaml",
        "kv.yaml",
        "subflows/child.yaml",
        "sql-duckdb.yaml",
    }
    found = {p.relative_to(EXAMPLES).as_posix() for p in EXAMPLES.rglob("*.yaml")}
    assert found == covered


def test_examples_validate(cli: Cli) -> None:
    res = cli("flow", "validate", str(EXAMPLES))
    assert res.code == 0, res.diag
    assert "10 flow(s) valid" in res.stderr


def test_examples_use_only_kestra_core_types() -> None:
    for path in EXAMPLES.rglob("*.yaml"):
        for type_ in re.findall(r"type:\s*(io\.kestra\.\S+)", path.read_text()):
            kestra_plugins = ("core", "scripts", "jdbc", "serdes")
            assert type_.startswith(tuple(f"io.kestra.plugin.{p}." for p in kestra_plugins)), (path, type_)


def test_hello_embedded_server(tmp_path: Path) -> None:
    home = tmp_path / "home"
    res = run_cli(
        "run",
        str(EXAMPLES / "hello.yaml"),
        "--input",
        "name=Ada",
        "--output",
        "json",
        home=home,
        nats_url=None,
        timeout=40,
    )
    assert res.code == 0, res.diag
    doc = res.json
    assert doc["state"]["current"] == "SUCCESS"
    assert doc["outputs"] == {"greeting": "ADA"}
    assert "Hello, Ada!" in res.stderr
    # The embedded server ran under ENGINE_HOME and is gone with the CLI.
    assert (home / "nats" / "js").is_dir()
    assert pids_mentioning(str(home)) == []


def test_hello(cli: Cli) -> None:
    code, doc = run_example(cli, "hello.yaml")
    assert code == 0
    assert doc["flowId"] == "hello" and doc["namespace"] == "company.team"
    assert doc["inputs"] == {"name": "world"}
    assert states(doc) == {"greet": "SUCCESS", "compute": "SUCCESS", "shout": "SUCCESS"}
    trs = taskruns(doc)
    assert trs["compute"]["outputs"] == {"value": "WORLD"}
    assert trs["shout"]["outputs"]["vars"] == {"length": 5}
    assert trs["shout"]["outputs"]["exitCode"] == 0
    assert doc["outputs"] == {"greeting": "WORLD"}


def test_etl_shell(cli: Cli) -> None:
    code, doc = run_example(cli, "etl-shell.yaml", "--input", "rows=4")
    assert code == 0
    assert doc["state"]["current"] == "SUCCESS"
    assert doc["inputs"] == {"rows": 4}
    trs = taskruns(doc)
    assert list(trs) == ["extract", "transform", "load"]
    assert trs["extract"]["outputs"]["vars"] == {"count": 4, "total": 10}
    assert trs["transform"]["outputs"] == {"value": "4 rows, total 10"}
    assert trs["load"]["outputs"]["vars"] == {"loaded": True, "bytes": len("4 rows, total 10")}
    assert doc["outputs"]["summary"] == "4 rows, total 10"


def test_etl_shell_typed_output(cli: Cli) -> None:
    code, doc = run_example(cli, "etl-shell.yaml", "--input", "rows=4")
    assert code == 0
    assert doc["outputs"]["total"] == 10  # `type: INT`


@pytest.mark.parametrize(
    ("environment", "size", "deploy", "plan", "deployment", "plan_text"),
    [
        ("dev", 5, "deploy_dev", "single", "deployed to a dev sandbox", "process 5 items at once"),
        ("prod", 25, "deploy_prod", "split", "deployed to production", "split 25 items into chunks"),
        ("staging", 11, "deploy_staging", "split", "deployed to staging", "split 11 items into chunks"),
    ],
)
def test_branching(
    cli: Cli, environment: str, size: int, deploy: str, plan: str, deployment: str, plan_text: str
) -> None:
    code, doc = run_example(cli, "branching.yaml", "-i", f"environment={environment}", "-i", f"size={size}")
    assert code == 0
    assert doc["state"]["current"] == "SUCCESS"
    assert states(doc) == {
        "route": "SUCCESS",
        deploy: "SUCCESS",
        "big_batch": "SUCCESS",
        plan: "SUCCESS",
        "fan_out": "SUCCESS",
        "notify_team": "SUCCESS",
        "checksum": "SUCCESS",
    }
    trs = taskruns(doc)
    assert trs[deploy]["parentTaskRunId"] == trs["route"]["id"]
    assert trs[plan]["parentTaskRunId"] == trs["big_batch"]["id"]
    assert trs["checksum"]["parentTaskRunId"] == trs["fan_out"]["id"]
    assert trs["checksum"]["outputs"]["vars"] == {"size": size}
    assert doc["outputs"] == {"deployment": deployment, "plan": plan_text}


def test_branching_rejects_unknown_select_value(cli: Cli) -> None:
    res = cli("run", str(EXAMPLES / "branching.yaml"), "-i", "environment=moon")
    assert res.code == 2, res.diag
    assert "environment" in res.stderr
    assert res.stdout == ""


def test_foreach(cli: Cli) -> None:
    code, doc = run_example(cli, "foreach.yaml")
    assert code == 0
    assert doc["state"]["current"] == "SUCCESS"
    regions = ["eu", "us", "apac", "latam"]
    expected = {"each_region": "SUCCESS", "report": "SUCCESS"}
    expected |= {f"size[{r}]": "SUCCESS" for r in regions} | {f"label[{r}]": "SUCCESS" for r in regions}
    assert states(doc) == expected
    trs = taskruns(doc)
    for r in regions:
        assert trs[f"size[{r}]"]["outputs"]["vars"] == {"len": len(r)}
        assert trs[f"label[{r}]"]["outputs"] == {"value": f"{r.upper()}:{len(r)}"}
        assert trs[f"label[{r}]"]["parentTaskRunId"] == trs["each_region"]["id"]
    assert doc["outputs"] == {"report": "EU:2 APAC:4"}

    # concurrencyLimit: 2 -> never more than two iterations between their first start and last end.
    def when(s: str) -> datetime:
        return datetime.fromisoformat(s.replace("Z", "+00:00"))

    spans = []
    for r in regions:
        start = when(trs[f"size[{r}]"]["state"]["startDate"])
        end = when(trs[f"label[{r}]"]["state"]["endDate"])
        spans.append((start, end))
    for start, _ in spans:
        assert sum(1 for s, e in spans if s <= start < e) <= 2


def test_retry_timeout(cli: Cli) -> None:
    code, doc = run_example(cli, "retry-timeout.yaml", timeout=10)
    assert code == 0
    assert doc["state"]["current"] == "WARNING"
    trs = taskruns(doc)
    assert attempt_states(trs["flaky"]) == ["FAILED", "FAILED", "SUCCESS"]
    assert trs["flaky"]["state"]["current"] == "SUCCESS"
    assert attempt_states(trs["too_slow"]) == ["FAILED"]
    assert trs["too_slow"]["state"]["current"] == "WARNING"
    assert attempt_states(trs["always"]) == ["FAILED", "FAILED"]
    assert trs["always"]["state"]["current"] == "WARNING"
    assert trs["after"]["outputs"] == {"value": "flaky succeeded after retries"}


def test_subflow_parent(cli: Cli) -> None:
    code, doc = run_example(
        cli, "subflow-parent.yaml", "--flows", str(EXAMPLES / "subflows"), "--input", "who=Ada"
    )
    assert code == 0
    assert states(doc) == {"call_child": "SUCCESS", "use_it": "SUCCESS"}
    call = taskruns(doc)["call_child"]["outputs"]
    assert call["state"] == "SUCCESS"
    assert ID.match(call["executionId"]) and call["executionId"] != doc["id"]
    assert call["outputs"] == {"greeting": "Hello, Ada!"}
    assert doc["outputs"] == {"message": "child said: Hello, Ada!"}


def test_errors_finally(cli: Cli) -> None:
    code, doc = run_example(cli, "errors-finally.yaml")
    assert code == 1
    assert doc["state"]["current"] == "FAILED"
    assert states(doc) == {"prepare": "SUCCESS", "load": "FAILED", "alert": "SUCCESS", "cleanup": "SUCCESS"}
    trs = taskruns(doc)
    assert attempt_states(trs["load"]) == ["FAILED"]
    assert trs["load"]["outputs"].get("exitCode", 3) == 3
    assert trs["alert"]["outputs"] == {"value": f"load failed in errors-finally ({doc['id']})"}
    # finally runs after errors.
    assert trs["cleanup"]["state"]["startDate"] >= trs["alert"]["state"]["endDate"]


def test_kv(cli: Cli) -> None:
    code, doc = run_example(cli, "kv.yaml", "--input", "value=42")
    assert code == 0
    assert states(doc) == {"store": "SUCCESS", "read_fn": "SUCCESS", "read_task": "SUCCESS"}
    assert doc["outputs"] == {"from_function": "42", "from_task": "42"}
    code, doc = run_example(cli, "kv.yaml", "--input", "value=second")
    assert doc["outputs"] == {"from_function": "second", "from_task": "second"}


def test_sql_duckdb(cli: Cli) -> None:
    code, doc = run_example(cli, "sql-duckdb.yaml", "--input", "min_amount=15", timeout=40)
    assert code == 0, doc
    trs = taskruns(doc)
    assert trs["top_customer"]["outputs"]["row"] == {"customer": "Ada", "total": 27.75}
    assert trs["big_orders"]["outputs"]["size"] == 2
    assert trs["to_csv"]["outputs"]["size"] == 2
    assert doc["outputs"]["best"] == "Ada"
    assert doc["outputs"]["orders_csv"] == trs["to_csv"]["outputs"]["uri"]
