"""A one-task flow whose task appends a line to a file each time it runs: the count of its runs,
whatever becomes of its reports (a stale report, and the log lines it carries, is dropped)."""

from __future__ import annotations

from pathlib import Path


def counting_flow(ran: Path, flow_id: str, namespace: str, then_sleep: float | None = None) -> str:
    sleep = f"\n      - sleep {then_sleep}" if then_sleep is not None else ""
    return f"""
id: {flow_id}
namespace: {namespace}
tasks:
  - id: side_effect
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - echo ran >> {ran}{sleep}
"""


def runs(ran: Path) -> int:
    return ran.read_text().count("ran\n") if ran.exists() else 0
