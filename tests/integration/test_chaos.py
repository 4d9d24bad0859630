"""Chaos, small: a 3-node cluster and separate role processes; one kill of each kind; nothing lost or doubled.

The checks themselves (bench/chaos.py's ``analyse``) are first shown to catch what they are meant to catch.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime
from pathlib import Path

import pytest

from engine.testing import run_then_collect

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.chaos import (  # noqa: E402
    ChaosConfig,
    Created,
    Kill,
    analyse,
    concurrency_violations,
    run_chaos,
)
from engine.core import events as ev  # noqa: E402

D = "2026-01-01T00:00:00Z"


def _history(eid: str, *attempts: tuple[int, str, bool, str | None], ended: int = 1) -> list[object]:
    out: list[object] = [
        ev.ExecutionCreated(date=D, execution_id=eid, namespace="chaos", flow_id="shell", flow_revision=1),
        ev.TaskRunCreated(date=D, taskrun_id="tr", task_id="first"),
    ]
    for number, state, final, error in attempts:
        out.append(
            ev.AttemptEnded(date=D, taskrun_id="tr", attempt=number, state=state, final=final, error=error)
        )
    out += [ev.TaskRunStateChanged(date=D, taskrun_id="tr", state="SUCCESS")] * ended
    out.append(ev.ExecutionStateChanged(date=D, state="SUCCESS"))
    return out


def test_the_checks_catch_what_they_count() -> None:
    created = [Created("e1", "shell"), Created("e2", "shell"), Created("e3", "shell")]
    lost_attempt = (1, "FAILED", False, "worker w lost")
    histories = {
        # e1: attempt 1's worker (pid 10) wrote its line and was killed at t=5; attempt 2 completed: fine.
        "e1": _history("e1", lost_attempt, (2, "SUCCESS", True, None)),
        # e2: same lines, but pid 20 was never killed: the script ran to its end twice.
        "e2": _history("e2", lost_attempt, (2, "SUCCESS", True, None)),
        # e3: the history itself ends the taskrun twice.
        "e3": _history("e3", (1, "SUCCESS", True, None), (2, "SUCCESS", True, None), ended=2),
    }
    done = "\n".join(
        [
            "e1 tr 0 10 4.0",
            "e1 tr 1 11 9.0",
            "e2 tr 0 20 4.0",
            "e2 tr 1 21 9.0",
            "e3 tr 0 30 1.0",
            "e3 tr 1 30 2.0",
        ]
    )
    report = analyse(created, histories, done, "", [Kill("worker-1", 10, 5.0)])
    assert (report.terminal, report.lost, report.stuck) == (3, 0, 0)
    assert report.duplicate_completions == 2  # e2 (side file) and e3 (history); not e1
    # A kill of pid 20 *before* its line does not excuse it either (the kill must come in between).
    report = analyse(created[1:2], {"e2": histories["e2"]}, done, "", [Kill("worker-2", 20, 3.0)])
    assert report.duplicate_completions == 1
    # A finished task run again: its line comes after the history ended the taskrun, even with a kill of
    # the first holder in between (its report had left: the work message came back after its death).
    end = datetime.fromisoformat(D.replace("Z", "+00:00")).timestamp()
    rerun = f"e1 tr 1 10 {end - 1}\ne1 tr 1 11 {end + 30}"
    report = analyse(
        created[:1],
        {"e1": _history("e1", (1, "SUCCESS", True, None))},
        rerun,
        "",
        [Kill("worker-1", 10, end)],
    )
    assert report.duplicate_completions == 1 and "ran again" in " ".join(report.problems)
    # Lost: acknowledged but without history; stuck: a history that never ends.
    stuck = _history("e2", (1, "SUCCESS", True, None))[:-1]
    report = analyse(created[:2], {"e1": [], "e2": stuck}, "e2 tr 0 20 1.0", "", [])
    assert (report.lost, report.stuck, report.terminal, report.ok) == (1, 1, 0, False)
    # A success whose script never wrote its line is unbacked.
    report = analyse(created[:1], {"e1": _history("e1", (1, "SUCCESS", True, None))}, "", "", [])
    assert report.unbacked == 1 and not report.ok


def test_concurrency_spans() -> None:
    spans = {"a": (0.0, 2.0), "b": (1.0, 3.0), "c": (2.0, 4.0)}
    assert concurrency_violations(spans, 2) == 0  # c starts as a ends
    assert concurrency_violations({**spans, "d": (1.5, 1.8)}, 2) == 1
    assert concurrency_violations(spans, 1) == 2


@pytest.mark.timeout(240)
def test_small_chaos_run_loses_and_doubles_nothing() -> None:
    keep = os.environ.get("ENGINE_CHAOS_KEEP")  # a directory: keep the logs and side files there
    cfg = ChaosConfig(
        executions=30, duration=24.0, wait=120.0, seed=7, kill_every=8.0, keep=Path(keep) if keep else None
    )
    lines: list[str] = []
    report = run_then_collect(run_chaos(cfg, say=lines.append))
    detail = "\n".join([*lines, report.line()])
    assert report.kills == {"worker": 2, "executor": 2, "nats": 1}, detail
    assert report.replicas == 3, detail
    assert report.executions == report.terminal == 30, detail
    assert report.lost == report.stuck == 0, detail
    assert report.duplicate_completions == 0, detail
    assert report.concurrency_violations == 0, detail
    assert report.unbacked == report.unexplained_lines == 0, detail
    assert report.survivors == [], detail
    assert report.subflow_executions > 0 and set(report.states) == {"SUCCESS"}, detail
