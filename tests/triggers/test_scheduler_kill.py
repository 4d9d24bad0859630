"""A scheduler process killed -9 and restarted: every slot of a per-second schedule fires exactly once."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from triggers_helpers import Engine, Recorder

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]


def _scheduler(nats_url: str, home: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ENGINE_NATS_URL": nats_url, "ENGINE_HOME": str(home)}
    return subprocess.Popen(
        [sys.executable, "-m", "engine", "server", "scheduler"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _stop(proc: subprocess.Popen[bytes], sig: int) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


async def test_every_slot_once_across_a_kill_9_of_the_scheduler(
    eng: Engine, rec: Recorder, namespace: str, nats_url: str, tmp_path: Path
) -> None:
    await eng.deploy(f"""
id: tick
namespace: {namespace}
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{{{ trigger.date }}}}"
triggers:
  - id: every-second
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "* * * * * *"
    withSeconds: true
""")
    first = _scheduler(nats_url, tmp_path / "s1")
    try:
        await rec.wait(lambda: len(rec.of("tick")) >= 3, timeout=30, what="3 slots from the first scheduler")
    finally:
        _stop(first, signal.SIGKILL)  # no goodbye: whatever it was doing stays half done
    await asyncio.sleep(2.5)  # slots fall due while no scheduler runs (recovered: ALL is the default)
    second = _scheduler(nats_url, tmp_path / "s2")
    try:
        before = len(rec.of("tick"))
        await rec.wait(lambda: len(rec.of("tick")) >= before + 4, timeout=30, what="slots after the restart")
    finally:
        _stop(second, signal.SIGTERM)
    await asyncio.sleep(0.5)

    assert len(rec.creates) == len(set(rec.creates)), "an execution was created twice"
    dates = sorted(
        datetime.fromisoformat(str(c.trigger["variables"]["date"]).replace("Z", "+00:00"))
        for c in rec.of("tick")
        if c.trigger is not None
    )
    assert len(dates) == len(rec.of("tick"))
    assert len(set(dates)) == len(dates), "a slot fired twice"
    gaps = [b for a, b in itertools.pairwise(dates) if b - a != timedelta(seconds=1)]
    assert not gaps, f"slots skipped before {gaps} (fired: {[d.isoformat() for d in dates]})"
