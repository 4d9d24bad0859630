"""Exit codes and output shapes of the CLI as documented (issue 13): whole outputs, useful revision
columns, unknown inputs refused with the declared names, a server that refuses to start says so
before anything runs."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from integration_helpers import CliResult, run_cli

LONG = "x" * 150 + "-middle-" + "y" * 150

RETURNS = f"""
id: long-output
namespace: t.shapes
inputs:
  - id: name
    type: STRING
    defaults: world
  - id: count
    type: INT
    required: false
tasks:
  - id: long
    type: io.kestra.plugin.core.debug.Return
    format: "{LONG}"
"""


def test_executions_get_shows_whole_outputs_and_max_cuts_them(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    flow = tmp_path / "long.yaml"
    flow.write_text(RETURNS)
    ran = cli("run", str(flow), "--output", "json")
    assert ran.code == 0, ran.diag
    eid = ran.json["id"]
    got = cli("executions", "get", eid)
    assert got.code == 0, got.stderr
    assert f"outputs of long: {json.dumps({'value': LONG})}" in got.stdout, got.stdout
    cut = cli("executions", "get", eid, "--max", "40")
    assert cut.code == 0 and LONG not in cut.stdout
    assert re.search(r"outputs of long: .{40}… \(\d+ characters; a larger --max shows more\)", cut.stdout)


def test_an_unknown_input_is_refused_with_the_declared_names(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    flow = tmp_path / "long.yaml"
    flow.write_text(RETURNS)
    ran = cli("run", str(flow), "--input", "nmae=Ada")
    assert ran.code == 2, ran.diag
    assert "unknown input 'nmae' for flow t.shapes.long-output; its inputs: name, count" in ran.stderr
    assert "execution" not in ran.stderr  # nothing was started


def test_flow_revisions_prints_revision_date_deleted_and_a_summary(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    ns = f"t.rev{tmp_path.name[-8:].replace('_', '').lower()}"
    flow = tmp_path / "f.yaml"
    flow.write_text(RETURNS.replace("t.shapes", ns))
    assert cli("flow", "deploy", str(flow)).code == 0
    flow.write_text(RETURNS.replace("t.shapes", ns) + "description: two\n")
    assert cli("flow", "deploy", str(flow)).code == 0
    listed = cli("flow", "revisions", ns, "long-output")
    assert listed.code == 0, listed.stderr
    header, first, second = listed.stdout.splitlines()
    assert header.split() == ["revision", "date", "deleted", "summary"]
    date = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}"
    assert re.fullmatch(rf"1\s+{date}\s+no\s+1 task, 2 inputs; created", first), first
    assert re.fullmatch(rf"2\s+{date}\s+no\s+1 task, 2 inputs; \+1 -0 lines", second), second


def test_a_server_on_all_interfaces_without_credentials_refuses_before_running(tmp_path: Path) -> None:
    home = tmp_path / "home"
    refused = run_cli("server", "local", "--host", "0.0.0.0", "--port", "0", home=home, nats_url=None)
    assert refused.code == 2, refused.stderr
    assert "refusing to listen on 0.0.0.0 without authentication" in refused.stderr
    assert "running" not in refused.stderr
    assert not (home / "nats").exists()  # no server was started
