"""Every failure tells its reason where a person looks, and the engine's own lines stay out of it.

Each test runs the real CLI on its own data directory (the embedded server, no ENGINE_NATS_URL).
"""

from __future__ import annotations

from pathlib import Path

from integration_helpers import run_cli

PARENT = """
id: parent
namespace: t.reasons
tasks:
  - id: call
    type: io.kestra.plugin.core.flow.Subflow
    namespace: t.reasons
    flowId: never-deployed
"""

UNSERVED = """
id: unserved
namespace: t.reasons
tasks:
  - id: hi
    type: io.kestra.plugin.core.log.Log
    message: hello from the default group
    workerGroup:
      key: nobody-serves-this
"""


def test_a_parent_whose_subflow_is_not_deployed_says_so_in_its_log(tmp_path: Path) -> None:
    flow = tmp_path / "parent.yaml"
    flow.write_text(PARENT)
    home = tmp_path / "home"
    ran = run_cli("run", str(flow), "--output", "json", home=home, nats_url=None)
    assert ran.code == 1 and ran.json["state"]["current"] == "FAILED", ran.diag
    reason = "subflow t.reasons.never-deployed cannot start: flow t.reasons.never-deployed is not deployed"
    assert f"ERROR call {reason}" in ran.stderr, ran.stderr  # the terminal, live
    logs = run_cli("logs", ran.json["id"], home=home, nats_url=None)
    assert logs.code == 0 and f"ERROR call {reason}" in logs.stderr, logs.stderr  # the execution's log


def test_the_engines_own_warnings_stay_out_of_a_persons_terminal_unless_asked(tmp_path: Path) -> None:
    flow = tmp_path / "unserved.yaml"
    flow.write_text(UNSERVED)
    quiet = run_cli("run", str(flow), home=tmp_path / "a", nats_url=None)
    assert quiet.code == 0, quiet.diag
    assert "hello from the default group" in quiet.stderr
    assert "executor.worker_group_unserved" not in quiet.stderr and "{" not in quiet.stderr, quiet.stderr
    asked = run_cli("run", str(flow), home=tmp_path / "b", nats_url=None, env={"ENGINE_LOG_LEVEL": "warning"})
    assert asked.code == 0, asked.diag
    assert "executor.worker_group_unserved" in asked.stderr, asked.stderr
