"""``engine server local|webserver|executor|scheduler|worker|nats``: the roles as long-lived processes."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import typer

from engine.aio import stop_tasks
from engine.cli.common import cancel_on_sigterm, command, fail, gc_started, print_issues
from engine.core.errors import EngineError, FlowValidationError

server_app = typer.Typer(no_args_is_help=True, help="Run the engine's roles as long-lived processes.")


async def _serve(
    roles: list[str],
    flows_dir: Path | None,
    group: str | None,
    concurrency: int,
    host: str = "127.0.0.1",
    port: int = 8080,
    watch: bool = False,
) -> int:
    """Run the given roles until SIGTERM/Ctrl-C; each role is an asyncio task of this process."""
    from engine.runtime import Runtime

    if "webserver" in roles:
        from webserver.auth import Auth, is_loopback

        if not is_loopback(host) and not Auth.from_env().enabled:
            # Before anything starts or says "running": nothing is left half up.
            fail(
                f"refusing to listen on {host} without authentication: set ENGINE_API_TOKENS, or "
                "ENGINE_API_USER and ENGINE_API_PASSWORD (or bind 127.0.0.1)",
                2,
            )
    cancel_on_sigterm()
    async with Runtime() as rt:
        if flows_dir is not None:
            deployed = await rt.flows.deploy_dir(flows_dir)
            sys.stderr.write(f"deployed {len(deployed)} flow(s) from {flows_dir}\n")
        if rt.server is not None and {"executor", "worker"} <= set(roles):
            rt.server.publish(roles=True)  # other commands on this data directory use these roles
        tasks = []
        if "executor" in roles:
            tasks.append(asyncio.create_task(rt.executor().run()))
        if "worker" in roles:
            tasks.append(asyncio.create_task(rt.worker(group=group, concurrency=concurrency).run()))
        if "triggers" in roles:
            from triggers.service import TriggerService

            tasks.append(asyncio.create_task(TriggerService(rt).run()))
        if watch and flows_dir is not None:
            tasks.append(asyncio.create_task(_watch_flows(rt, flows_dir)))
        if "webserver" in roles:
            from webserver.app import serve

            tasks.append(asyncio.create_task(serve(rt, host, port)))
            sys.stderr.write(f"API on http://{host}:{port}/api/v1 (OpenAPI: /api/v1/openapi.json)\n")
        gc_started()
        if rt.server:
            where = "embedded server " + rt.server.url
        elif rt.owner:
            where = f"the embedded server of engine pid {rt.owner['owner_pid']} (same data directory)"
        else:
            where = str(rt.nats_url)
        sys.stderr.write(f"engine {', '.join(roles)} running on {where} (pid {os.getpid()}); Ctrl-C stops\n")
        try:
            await asyncio.gather(*tasks)
        finally:
            await stop_tasks(tasks)
    return 0


@server_app.command("nats")
def server_nats() -> None:
    """Only the embedded NATS server of this data directory; prints its URL for ENGINE_NATS_URL."""
    from engine.settings import data_home
    from eventstore.server import EmbeddedServer

    server = EmbeddedServer(data_home() / "nats")
    try:
        server.start()
    except EngineError as exc:
        fail(str(exc), 1)
    sys.stdout.write(server.client_url + "\n")
    sys.stdout.flush()
    sys.stderr.write(f"nats-server pid {server.pid} on {server.url}; Ctrl-C stops it\n")
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        server.stop()


async def _watch_flows(rt: Any, flows_dir: Path) -> None:
    """Re-deploy a flow file the moment it changes (a new revision when its source changed)."""
    from watchfiles import awatch

    from engine.loader.loader import is_test_suite

    async for changes in awatch(flows_dir):
        for _, changed in sorted(changes):
            path = Path(changed)
            if path.suffix not in (".yml", ".yaml") or not path.is_file():
                continue
            source = path.read_text()
            if is_test_suite(source):  # a flow unit test beside the flows (engine test)
                continue
            try:
                flow = await rt.flows.deploy(source, file=str(path))
            except FlowValidationError as exc:
                print_issues(exc)
                continue
            sys.stderr.write(f"deployed {flow.namespace}.{flow.id} revision {flow.revision} from {path}\n")


_FLOWS = typer.Option(None, "--flows", help="Deploy every flow in this directory first.")
_WATCH = typer.Option(False, "--watch", help="Re-deploy a flow of --flows the moment its file changes.")
_GROUP = typer.Option(None, "--group", help="Worker group (tasks with workerGroup.key go to that group).")
_CONC = typer.Option(16, "--concurrency", help="Tasks this worker runs at once.")


_HOST = typer.Option("127.0.0.1", help="API bind address; not loopback needs ENGINE_API_TOKENS or a user.")
_PORT = typer.Option(8080, help="API port.")


@server_app.command("local")
def server_local(
    flows: Path | None = _FLOWS,
    concurrency: int = _CONC,
    host: str = _HOST,
    port: int = _PORT,
    watch: bool = _WATCH,
) -> None:
    """Everything in one process on the embedded server (or ENGINE_NATS_URL): executor, worker,
    scheduler, indexer and the REST API."""
    roles = ["executor", "worker", "triggers", "webserver"]
    command(_serve(roles, flows, None, concurrency, host, port, watch))


@server_app.command("webserver")
def server_webserver(host: str = _HOST, port: int = _PORT) -> None:
    """The indexer and the REST API only (/api/v1)."""
    command(_serve(["webserver"], None, None, 0, host, port))


@server_app.command("executor")
def server_executor(flows: Path | None = _FLOWS) -> None:
    """The executor role only: folds executions, decides, dispatches."""
    command(_serve(["executor"], flows, None, 0))


@server_app.command("node")
def server_node(flows: Path | None = _FLOWS, group: str | None = _GROUP, concurrency: int = _CONC) -> None:
    """An executor and a worker in one process. On one server (no replicas) the worker hands its
    reports to the executor in memory when the execution is in one of its partitions, and the
    executor, when it is the only one, its work (fewer writes per taskrun)."""
    command(_serve(["executor", "worker"], flows, group, concurrency))


@server_app.command("scheduler")
def server_scheduler(flows: Path | None = _FLOWS) -> None:
    """The trigger role only: schedules, Flow triggers (executions started by other executions' ends)."""
    command(_serve(["triggers"], flows, None, 0))


@server_app.command("worker")
def server_worker(group: str | None = _GROUP, concurrency: int = _CONC) -> None:
    """The worker role only: runs tasks."""
    command(_serve(["worker"], None, group, concurrency))


def register(app: typer.Typer) -> None:
    app.add_typer(server_app, name="server")
