"""Flows of Kestra's public examples repository whose scripts import ``kestra``, run unchanged through
the real CLI on the session nats-server, ending as Kestra ends them (state, taskruns, outputs, metrics).
The flows and their licence are in ``kestra_examples/``; one more example runs without its Docker option."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from integration_helpers import CliResult, states, taskruns

Cli = Callable[..., CliResult]
FLOWS = Path(__file__).resolve().parent / "kestra_examples"


def run(cli: Cli, name: str, timeout: float = 30) -> tuple[CliResult, dict[str, Any]]:
    res = cli("run", str(FLOWS / name), "--output", "json", "--timeout", str(timeout), timeout=timeout + 20)
    assert res.stdout.strip(), f"{name}: {res.diag}"
    return res, res.json


def test_the_flows_validate(cli: Cli) -> None:
    # one by one: two of them share an id in Kestra's repository
    for flow in sorted(FLOWS.glob("*.yml")):
        res = cli("flow", "validate", str(flow))
        assert res.code == 0, res.stdout + res.stderr


def test_older_python_task_outputs_reach_the_next_task(cli: Cli) -> None:
    res, doc = run(cli, "passOutputsReturnLog.yml")
    assert doc["state"]["current"] == "SUCCESS", res.diag
    assert states(doc) == {"passOutput": "SUCCESS", "pythonVars": "SUCCESS", "takeInput": "SUCCESS"}
    assert taskruns(doc)["pythonVars"]["outputs"]["vars"] == {"somekey": "some value"}
    assert "data from previous tasks - hello world! and some value" in res.stdout + res.stderr


# Kestra's passDataBetweenTasks.yml without its `docker:` option (which needs a Docker daemon and an image
# from the internet): a python.Script's outputs, {{ outputDir }}, and a kestra:// URI in a shell command.
PASS_DATA = """id: passDataBetweenTasksLocal
namespace: blueprint

tasks:
    - id: passOutput
      type: io.kestra.core.tasks.debugs.Return
      format: "hello"

    - id: pyOutputs
      type: io.kestra.plugin.scripts.python.Script
      script: |
        import json
        from kestra import Kestra

        my_kv_pair = {'mykey': 'from Kestra'}
        Kestra.outputs(my_kv_pair)

        with open('{{outputDir}}/myoutput.json', 'w') as f:
            json.dump(my_kv_pair, f)

    - id: takeInputs
      type: io.kestra.core.tasks.log.Log
      message: |
        data from previous tasks: {{outputs.passOutput.value}} and {{outputs.pyOutputs.vars.mykey}}

    - id: checkOutputFile
      type: io.kestra.plugin.scripts.shell.Commands
      runner: PROCESS
      commands:
        - cat {{outputs.pyOutputs.outputFiles['myoutput.json']}}
"""


def test_script_outputs_output_dir_and_a_kestra_uri_in_a_command(cli: Cli, tmp_path: Path) -> None:
    flow = tmp_path / "passDataBetweenTasksLocal.yml"
    flow.write_text(PASS_DATA)
    res = cli("run", str(flow), "--output", "json", "--timeout", "30", timeout=50)
    doc = res.json
    assert doc["state"]["current"] == "SUCCESS", res.diag
    runs = taskruns(doc)
    assert len(runs) == 4 and set(states(doc).values()) == {"SUCCESS"}
    assert runs["pyOutputs"]["outputs"]["vars"] == {"mykey": "from Kestra"}
    assert runs["pyOutputs"]["outputs"]["outputFiles"]["myoutput.json"].startswith("kestra://")
    # `cat {{ outputs.pyOutputs.outputFiles['myoutput.json'] }}`: the URI was fetched, the file printed
    logs = res.stdout + res.stderr
    assert json.dumps({"mykey": "from Kestra"}) in logs
    assert "data from previous tasks: hello and from Kestra" in logs


@pytest.mark.timeout(150)
def test_each_parallel_partitions_report_their_metrics(cli: Cli) -> None:
    res, doc = run(cli, "pythonPartitions.yml", timeout=110)
    assert doc["state"]["current"] == "SUCCESS", res.diag
    runs = taskruns(doc)
    parts = {k: tr for k, tr in runs.items() if k.startswith("partition[")}
    assert len(runs) == 11 and len(parts) == 9
    for key, tr in parts.items():
        value = key[len("partition[") : -1]
        metrics = {m["name"]: m for m in tr["attempts"][-1]["metrics"]}
        assert set(metrics) == {"nr_rows", "processing_time"}
        assert metrics["nr_rows"]["type"] == "counter" and 1 <= metrics["nr_rows"]["value"] <= 1000
        assert metrics["nr_rows"]["tags"] == {"partition": value}
        assert metrics["processing_time"]["type"] == "timer"
        assert metrics["processing_time"]["value"].startswith("PT")
