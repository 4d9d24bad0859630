"""``engine cluster start|config``: a NATS cluster with JetStream for the engine (``eventstore.cluster``)."""

from __future__ import annotations

import secrets
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from engine.core.errors import ServerError
from eventstore.cluster import CLIENT_PORT, HTTP_PORT, ROUTE_PORT, LocalCluster, NodeSpec, cluster_config
from eventstore.server import write_config

cluster_app = typer.Typer(no_args_is_help=True, help="A NATS cluster with JetStream for the engine.")


def register(app: typer.Typer) -> None:
    """Add ``cluster start|config`` to the ``engine`` command."""
    app.add_typer(cluster_app, name="cluster")


def _default_dir() -> Path:
    from engine.settings import data_home

    return data_home() / "cluster"


@cluster_app.command("start")
def start_command(
    nodes: Annotated[int, typer.Option("--nodes", "-n", help="How many nats-server processes.")] = 3,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Store directories go here (default: ENGINE_HOME/cluster)."),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the meta leader.")] = 30.0,
) -> None:
    """Start a local cluster on free 127.0.0.1 ports and keep it running; Ctrl-C stops every node."""
    cluster = LocalCluster(data_dir or _default_dir(), size=nodes)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        try:
            cluster.start(timeout)
        except ServerError as exc:
            sys.stderr.write(f"{exc}\n")
            raise typer.Exit(1) from None
        sys.stdout.write(f"ENGINE_NATS_URL={cluster.url}\n")
        sys.stdout.flush()
        where = ", ".join(f"{n.spec.name} pid {n.pid} :{n.spec.client_port}" for n in cluster.nodes)
        sys.stderr.write(
            f"{nodes} nats-server nodes ({where}) under {cluster.data_dir}; "
            "start the roles with this ENGINE_NATS_URL and ENGINE_REPLICAS=3; Ctrl-C stops them\n"
        )
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        cluster.stop()


@cluster_app.command("config")
def config_command(
    host: Annotated[
        list[str], typer.Option("--host", help="NAME=ADDRESS of one node (repeat for each, 3 or 5).")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for NAME.conf files.")] = Path("."),
    store_dir: Annotated[str, typer.Option(help="JetStream store directory on each host.")] = "/var/lib/nats",
    token: Annotated[
        str, typer.Option(help="Client token; `$NAME` makes nats-server read it from the environment.")
    ] = "",
    route_password: Annotated[
        str, typer.Option(help="Password between nodes, letters and digits (default: random).")
    ] = "",
    client_port: Annotated[int, typer.Option()] = CLIENT_PORT,
    route_port: Annotated[int, typer.Option()] = ROUTE_PORT,
    http_port: Annotated[int, typer.Option()] = HTTP_PORT,
    listen: Annotated[str, typer.Option(help="Bind address on each host.")] = "0.0.0.0",
) -> None:
    """Write one nats-server config file per host (routes between all of them) and print ENGINE_NATS_URL."""
    specs = []
    for item in host:
        name, sep, address = item.partition("=")
        if not sep or not name or not address:
            sys.stderr.write(f"--host {item!r}: expected NAME=ADDRESS\n")
            raise typer.Exit(2)
        specs.append(
            NodeSpec(name, address, client_port, route_port, http_port, store_dir, listen_host=listen)
        )
    if len({s.name for s in specs}) != len(specs):
        sys.stderr.write("--host: node names must differ\n")
        raise typer.Exit(2)
    token = token or secrets.token_hex(16)
    route_password = route_password or secrets.token_hex(16)
    for spec in specs:
        header = [
            f"# node {spec.name} of {len(specs)}, written by `engine cluster config`;",
            "# the route password is shared by the nodes: write your own with that command.",
        ]
        lines = cluster_config(spec, specs, token=token, route_user="route", route_password=route_password)
        path = write_config(out / f"{spec.name}.conf", header + lines)
        sys.stderr.write(f"wrote {path}\n")
    sys.stdout.write(f"ENGINE_NATS_URL={','.join(s.client_url(token) for s in specs)}\n")
