"""A real NATS cluster: N ``nats-server`` processes with JetStream, joined by routes.

``LocalCluster`` runs the nodes on free loopback ports, each with its own store directory under one
data directory and ``sync_interval: always``; it waits until JetStream has elected its meta leader and
returns the client URLs (``ENGINE_NATS_URL`` takes them comma-separated). Each node is stopped by its
PID; one node can be killed and restarted on the same ports (the chaos benchmark does).

``cluster_config`` writes the same configuration for real hosts. On the command line
(``engine.cli.cluster``)::

    engine cluster start            # 3 local nodes; prints ENGINE_NATS_URL=...; Ctrl-C stops
    engine cluster config --host n1=10.0.0.1 --host n2=10.0.0.2 --host n3=10.0.0.3 -o conf/

Streams are replicated by the engine itself (``ENGINE_REPLICAS=3``), not by this module.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.core.errors import ServerError
from eventstore.server import (
    common_lines,
    conf_value,
    jetstream_lines,
    kill_process,
    log_tail,
    reap_orphan,
    spawn_server,
    stop_process,
    token_lines,
    write_config,
)

CLUSTER_NAME = "engine"
CLIENT_PORT, ROUTE_PORT, HTTP_PORT = 4222, 6222, 8222  # nats-server's own defaults


@dataclass(frozen=True)
class NodeSpec:
    """Where one node listens and keeps its data."""

    name: str
    host: str  # the address other nodes and clients use
    client_port: int
    route_port: int
    http_port: int  # monitoring (/healthz, /jsz)
    store_dir: str
    listen_host: str = ""  # the address to bind (default: ``host``; ``0.0.0.0`` on real hosts)

    @property
    def bind(self) -> str:
        return self.listen_host or self.host

    def client_url(self, token: str | None = None) -> str:
        auth = f"{token}@" if token and not token.startswith("$") else ""
        return f"nats://{auth}{self.host}:{self.client_port}"

    @property
    def monitor_url(self) -> str:
        host = "127.0.0.1" if self.bind in ("0.0.0.0", "") else self.bind
        return f"http://{host}:{self.http_port}"


def cluster_config(
    node: NodeSpec,
    nodes: Sequence[NodeSpec],
    *,
    token: str,
    route_user: str,
    route_password: str,
    cluster_name: str = CLUSTER_NAME,
    sync: str | None = None,
) -> list[str]:
    """The config lines of ``node`` in a cluster of ``nodes`` (every node routes to every other).

    A token written ``$NAME`` is read by nats-server from that environment variable. The route
    credentials are literal: they are part of the route URLs, where nats-server expands no variable.
    """
    if route_password.startswith("$") or not route_password.isalnum() or not route_user.isalnum():
        raise ServerError("the route user and password must be letters and digits (they go in URLs)")
    routes = [
        f"nats-route://{route_user}:{route_password}@{n.host}:{n.route_port}"
        for n in nodes
        if n.name != node.name
    ]
    lines = [
        f"server_name: {conf_value(node.name)}",
        f"listen: {conf_value(f'{node.bind}:{node.client_port}')}",
        f"http: {conf_value(f'{node.bind}:{node.http_port}')}",
        *token_lines(token),
        "cluster {",
        f"  name: {conf_value(cluster_name)}",
        f"  listen: {conf_value(f'{node.bind}:{node.route_port}')}",
        f"  authorization {{ user: {conf_value(route_user)}, password: {conf_value(route_password)} }}",
        "  routes: [",
        *(f"    {conf_value(r)}" for r in routes),
        "  ]",
        "}",
        *jetstream_lines(node.store_dir, sync),
        *common_lines(),
    ]
    return lines


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports free on ``host`` right now (held open together, then released)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _get_json(url: str, timeout: float = 1.0) -> tuple[int, Any]:
    # Here, not at the top: every `engine` command imports this module (the `cluster` command's
    # defaults), and urllib.request with http.client and email costs ~7 ms of each start.
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status), json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"null")
        except ValueError:
            return exc.code, None
    except (OSError, ValueError):
        return 0, None


@dataclass
class Node:
    spec: NodeSpec
    conf: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def meta(self) -> dict[str, Any]:
        """The ``meta_cluster`` section of this node's ``/jsz`` (empty when it does not answer)."""
        code, data = _get_json(f"{self.spec.monitor_url}/jsz")
        if code != 200 or not isinstance(data, dict):
            return {}
        return dict(data.get("meta_cluster") or {})

    def meta_leader(self) -> str | None:
        """The JetStream meta leader this node knows of (None: no leader, or the node does not answer)."""
        leader = self.meta().get("leader")
        return str(leader) if leader else None

    def current_peers(self) -> set[str]:
        """On the meta leader: the other nodes it sees online and current (a stream is only placed on
        those: creating an R3 stream before they are fails with "no suitable peers for placement")."""
        replicas = self.meta().get("replicas") or []
        return {
            str(r.get("name"))
            for r in replicas
            if isinstance(r, dict) and r.get("current") and not r.get("offline")
        }

    def healthy(self, assets: bool = True) -> bool:
        """``/healthz``: the server is up and (``assets``) every stream and consumer it holds is current;
        without ``assets``, only that its JetStream runs and follows the meta leader."""
        query = "" if assets else "?js-server-only=true"
        code, _ = _get_json(f"{self.spec.monitor_url}/healthz{query}")
        return code == 200


@dataclass
class LocalCluster:
    """N nats-server processes on loopback ports, owned by this process (stopped by PID)."""

    data_dir: Path
    size: int = 3
    host: str = "127.0.0.1"
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    route_password: str = field(default_factory=lambda: secrets.token_hex(16))
    sync: str | None = None  # default: ENGINE_SYNC_INTERVAL, else ``always``
    nodes: list[Node] = field(default_factory=list)

    @property
    def _pid_file(self) -> Path:
        return self.data_dir / "cluster.pids"

    def _layout(self) -> list[NodeSpec]:
        ports = free_ports(3 * self.size, self.host)
        return [
            NodeSpec(
                name=f"n{i + 1}",
                host=self.host,
                client_port=ports[3 * i],
                route_port=ports[3 * i + 1],
                http_port=ports[3 * i + 2],
                store_dir=str(self.data_dir / f"n{i + 1}" / "js"),
            )
            for i in range(self.size)
        ]

    def start(self, timeout: float = 30.0) -> list[str]:
        """Start every node, wait for the meta leader, return the client URLs (with the token)."""
        if self.size < 1:
            raise ServerError("a cluster needs at least one node")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for i in range(self.size):  # nodes left by a process of ours that died are stopped
            reap_orphan(self._pid_file, self.data_dir / f"n{i + 1}" / "nats.conf", self.data_dir)
        specs = self._layout()
        self.nodes = []
        for spec in specs:
            node_dir = self.data_dir / spec.name
            conf = write_config(
                node_dir / "nats.conf",
                cluster_config(
                    spec,
                    specs,
                    token=self.token,
                    route_user="route",
                    route_password=self.route_password,
                    sync=self.sync,
                ),
            )
            self.nodes.append(Node(spec, conf, node_dir / "nats-server.log"))
        try:
            for i in range(self.size):
                self._spawn(i)
            deadline = time.monotonic() + timeout
            self.wait_ready(timeout)
            self.wait_placement(max(1.0, deadline - time.monotonic()))
        except BaseException:
            self.stop()
            raise
        return self.urls

    def _spawn(self, index: int) -> None:
        node = self.nodes[index]
        node.proc = spawn_server(node.conf, node.log)
        self._write_pids()

    def _write_pids(self) -> None:
        me = os.getpid()
        self._pid_file.write_text("".join(f"{n.pid} {me}\n" for n in self.nodes if n.pid is not None))

    def wait_ready(
        self, timeout: float = 30.0, nodes: Sequence[int] | None = None, assets: bool = True
    ) -> str:
        """Until every running node (or those of ``nodes``) is healthy and knows the same meta leader;
        returns the leader's name. ``assets``: each stream and consumer is current too."""
        deadline = time.monotonic() + timeout
        while True:
            running = [n for i, n in enumerate(self.nodes) if n.pid is not None]
            for n in self.nodes:
                if n.proc is not None and n.proc.poll() is not None:
                    raise ServerError(
                        f"nats-server {n.spec.name} exited with code {n.proc.returncode}:\n{log_tail(n.log)}"
                    )
            watched = [self.nodes[i] for i in nodes] if nodes is not None else running
            leaders = {n.meta_leader() for n in running}
            if len(leaders) == 1 and None not in leaders and all(n.healthy(assets) for n in watched):
                leader = leaders.pop()
                assert leader is not None
                head = next((n for n in running if n.spec.name == leader), None)
                others = {n.spec.name for n in running} - {leader}
                if head is not None and others <= head.current_peers():
                    return leader
            if time.monotonic() > deadline:
                raise ServerError(
                    f"the NATS cluster elected no JetStream meta leader within {timeout:.0f}s "
                    f"(leaders seen: {sorted(map(str, leaders))}; logs under {self.data_dir})"
                )
            time.sleep(0.05)

    def wait_placement(self, timeout: float = 30.0) -> None:
        """Until a replicated stream can be created (and is deleted again).

        A meta leader that sees its peers may not have their JetStream statistics yet; until it has,
        creating an R3 stream fails with "no suitable peers for placement, peer offline".
        """
        with concurrent.futures.ThreadPoolExecutor(1) as pool:  # its own event loop, whoever calls
            pool.submit(asyncio.run, self._probe(timeout)).result()

    async def _probe(self, timeout: float) -> None:
        import nats
        from nats.js import api as jsapi

        deadline = time.monotonic() + timeout
        name = f"ENGINE_PROBE_{secrets.token_hex(4)}"
        nc = await nats.connect(servers=self.urls, connect_timeout=2, max_reconnect_attempts=-1)
        try:
            js = nc.jetstream()
            config = jsapi.StreamConfig(
                name=name,
                subjects=[f"engine_probe.{name}"],
                storage=jsapi.StorageType.MEMORY,
                num_replicas=min(3, self.size),
            )
            while True:
                try:
                    await js.add_stream(config)
                    await js.delete_stream(name)
                    return
                except Exception as exc:
                    if time.monotonic() > deadline:
                        raise ServerError(f"the cluster cannot place a replicated stream: {exc}") from exc
                    await asyncio.sleep(0.1)
        finally:
            await nc.close()

    @property
    def urls(self) -> list[str]:
        return [n.spec.client_url(self.token) for n in self.nodes]

    @property
    def url(self) -> str:
        """The value for ENGINE_NATS_URL."""
        return ",".join(self.urls)

    @property
    def pids(self) -> list[int]:
        return [n.pid for n in self.nodes if n.pid is not None]

    def stop_node(self, index: int, timeout: float = 10.0) -> None:
        stop_process(self.nodes[index].proc, timeout)
        self.nodes[index].proc = None
        self._write_pids()

    def kill_node(self, index: int) -> None:
        """SIGKILL one node (a crash); its store stays for the restart."""
        kill_process(self.nodes[index].proc)
        self.nodes[index].proc = None
        self._write_pids()

    def restart_node(self, index: int, timeout: float = 30.0, assets: bool = False) -> None:
        """Start a stopped node again on the same ports and store, and wait until it follows the meta
        leader (``assets``: until its streams and consumers have caught up too, which under load, with
        hundreds of replicated consumers, can take minutes; they catch up in the background)."""
        if self.nodes[index].pid is not None:
            raise ServerError(f"node {self.nodes[index].spec.name} is running")
        self._spawn(index)
        self.wait_ready(timeout, nodes=[index], assets=assets)

    def stop(self, timeout: float = 10.0) -> None:
        """Every node, by PID (SIGTERM, then SIGKILL)."""
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                os.kill(node.proc.pid, signal.SIGTERM)
        for node in self.nodes:
            stop_process(node.proc, timeout)
            node.proc = None
        self._pid_file.unlink(missing_ok=True)

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_cluster(data_dir: Path, size: int = 3, *, timeout: float = 30.0) -> LocalCluster:
    """Start ``size`` loopback nodes under ``data_dir``; ``.url`` is for ENGINE_NATS_URL."""
    cluster = LocalCluster(Path(data_dir), size=size)
    cluster.start(timeout)
    return cluster
