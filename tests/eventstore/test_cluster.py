"""The local NATS cluster helper: three real nats-server processes joined by routes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.testing import run_then_collect
from eventstore.cluster import LocalCluster, NodeSpec, cluster_config
from eventstore.server import nats_server_binary

ROOT = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    c = LocalCluster(tmp_path / "cluster")
    c.start()
    pids = list(c.pids)
    try:
        yield c
    finally:
        c.stop()
        assert not [p for p in pids if _alive(p)], "a node outlived stop()"


def test_three_nodes_elect_a_meta_leader_and_route_to_each_other(cluster: LocalCluster) -> None:
    assert len(cluster.pids) == 3 and len(set(cluster.pids)) == 3
    leaders = {n.meta_leader() for n in cluster.nodes}
    assert len(leaders) == 1 and leaders.pop() in {"n1", "n2", "n3"}
    ports = {p for n in cluster.nodes for p in (n.spec.client_port, n.spec.route_port, n.spec.http_port)}
    assert len(ports) == 9
    assert cluster.url.count("nats://") == 3 and cluster.token in cluster.url
    for node in cluster.nodes:
        conf = node.conf.read_text()
        assert "sync_interval: always" in conf
        others = [n for n in cluster.nodes if n is not node]
        assert all(f"127.0.0.1:{o.spec.route_port}" in conf for o in others)
        assert f'127.0.0.1:{node.spec.route_port}"\n  authorization' in conf  # listens on its own


def test_replicated_streams_survive_the_kill_of_a_node(cluster: LocalCluster) -> None:
    run_then_collect(_kill_the_stream_leader(cluster))


async def _kill_the_stream_leader(cluster: LocalCluster) -> None:
    from engine.core import events as ev
    from eventstore import subjects as S
    from eventstore.store import Store

    store = await Store.connect(cluster.url, replicas=3)
    try:
        info = await store.js.stream_info(f"{S.EVENTS}_0")
        assert info.config.num_replicas == 3
        assert info.cluster is not None and len(info.cluster.replicas or []) == 2
        eid = next(f"c{i}" for i in range(1000) if S.shard(f"c{i}") == 0)
        created = ev.ExecutionCreated(
            date="2026-01-01T00:00:00Z", execution_id=eid, namespace="t", flow_id="f", flow_revision=1
        )
        seq = await store.append(eid, [created], 0)
        # Kill the node that leads the stream: the others elect a new leader, the write is kept.
        leader = info.cluster.leader
        victim = next(i for i, n in enumerate(cluster.nodes) if n.spec.name == leader)
        cluster.kill_node(victim)
        assert cluster.nodes[victim].pid is None
        seq2 = 0
        for _ in range(100):
            try:
                seq2 = await store.append(eid, [created], seq)
                break
            except Exception:  # no leader yet (503 / timeout): try again
                await asyncio.sleep(0.2)
        assert seq2 > seq
        # A direct get may be answered by a replica a moment behind the leader: wait for it, bounded.
        seqs: list[int] = []
        for _ in range(100):
            seqs = [s for s, _ in await store.read(eid)]
            if seqs == [seq, seq2]:
                break
            await asyncio.sleep(0.05)
        assert seqs == [seq, seq2]
        port = cluster.nodes[victim].spec.client_port
        cluster.restart_node(victim)
        assert cluster.nodes[victim].spec.client_port == port and cluster.nodes[victim].healthy(assets=False)
        info = await store.js.stream_info(f"{S.EVENTS}_0")
        assert info.state.last_seq == seq2
    finally:
        await store.close()


def test_config_writes_valid_files_for_real_hosts(tmp_path: Path) -> None:
    out = tmp_path / "conf"
    proc = subprocess.run(
        [sys.executable, "-m", "engine", "cluster", "config", "-o", str(out), "--token", "$NATS_TOKEN"]
        + [f"--host=nats{i}=10.0.0.{i}" for i in (1, 2, 3)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        "ENGINE_NATS_URL=nats://10.0.0.1:4222,nats://10.0.0.2:4222,nats://10.0.0.3:4222"
    )
    files = sorted(p.name for p in out.iterdir())
    assert files == ["nats1.conf", "nats2.conf", "nats3.conf"]
    text = (out / "nats2.conf").read_text()
    assert "token: $NATS_TOKEN" in text
    assert "@10.0.0.1:6222" in text and "@10.0.0.3:6222" in text and "@10.0.0.2:6222" not in text
    # nats-server itself parses each file (-t: test the configuration and exit).
    for name in files:
        check = subprocess.run(
            [nats_server_binary(), "-t", "-c", str(out / name)],
            capture_output=True,
            text=True,
            env={**os.environ, "NATS_TOKEN": "s3cret"},
            timeout=30,
            check=False,
        )
        assert check.returncode == 0, check.stdout + check.stderr


def test_route_credentials_must_fit_in_a_url() -> None:
    from engine.core.errors import ServerError

    spec = NodeSpec("a", "h", 1, 2, 3, "/s")
    with pytest.raises(ServerError):
        cluster_config(spec, [spec], token="t", route_user="route", route_password="p@ss")


def test_a_role_started_without_a_majority_gets_one_clear_error(
    cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    import eventstore.jetstream as store_module
    from engine.core.errors import ServerError

    async def connect_first() -> None:  # the streams exist: a later start only checks them
        from eventstore.store import Store

        store = await Store.connect(cluster.url, replicas=3)
        await store.close()

    run_then_collect(connect_first())
    cluster.kill_node(1)
    cluster.kill_node(2)
    monkeypatch.setattr(store_module, "_SETUP_DEADLINE_S", 1.0)

    async def connect_alone() -> str:
        from eventstore.store import Store

        try:
            store = await Store.connect(cluster.nodes[0].spec.client_url(cluster.token), replicas=3)
        except ServerError as exc:
            return str(exc)
        await store.close()
        return ""

    message = run_then_collect(connect_alone())
    assert "is a majority of the cluster up?" in message
