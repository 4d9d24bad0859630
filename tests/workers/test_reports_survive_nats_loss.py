"""A worker's report that fails (its NATS cluster lost quorum for a moment) is sent again, not dropped.

Found by bench/chaos.py: a worker whose ``AttemptEnded`` publish failed while a NATS node died gave
up on it; being alive and heartbeating, it was never declared lost, so the taskrun stayed RUNNING.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest

from engine.testing import run_then_collect
from eventstore.cluster import LocalCluster


@pytest.mark.timeout(120)
def test_an_attempt_that_ends_while_the_cluster_has_no_quorum_is_still_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENGINE_REPLICAS", "3")
    run_then_collect(_scenario(tmp_path))


async def _scenario(tmp_path: Path) -> None:
    from engine.aio import stop_tasks
    from engine.ids import new_execution_id
    from engine.runtime import Runtime

    marks = tmp_path / "marks"
    marks.mkdir()
    source = f"""
id: quorum
namespace: t.quorum{uuid.uuid4().hex[:6]}
tasks:
  - id: long
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - echo started >> {marks}/started
      - sleep 2
      - echo "{{{{ taskrun.attemptsCount }}}}" >> {marks}/done
"""
    cluster = LocalCluster(tmp_path / "nats")
    cluster.start()
    try:
        async with Runtime(nats_url=cluster.url, home=tmp_path / "home") as rt:
            roles = [asyncio.create_task(rt.executor().run()), asyncio.create_task(rt.worker().run())]
            try:
                flow = await rt.flows.deploy(source)
                eid = new_execution_id()
                await rt.create_execution(flow, {}, execution_id=eid)
                deadline = time.monotonic() + 30
                while not (marks / "started").exists():
                    assert time.monotonic() < deadline, "the attempt never started"
                    await asyncio.sleep(0.05)
                # Two of three nodes go away while the script runs: no write can be acknowledged when
                # it ends. They come back after 4 s (less than the 10 s heartbeat TTL).
                await asyncio.to_thread(cluster.stop_node, 1)
                await asyncio.to_thread(cluster.stop_node, 2)
                await asyncio.sleep(4)
                assert (marks / "done").exists()  # ended during the outage
                await asyncio.to_thread(cluster.restart_node, 1, 60)
                await asyncio.to_thread(cluster.restart_node, 2, 60)
                state = await rt.wait_terminal(eid, timeout=60)
            finally:
                await stop_tasks(roles)
    finally:
        cluster.stop()
    assert state.state == "SUCCESS"
    long = next(tr for tr in state.taskruns.values() if tr.task_id == "long")
    assert [a.state for a in long.attempts] == ["SUCCESS"]
    assert (marks / "done").read_text().split() == ["0"]  # one attempt, run once
