"""What a start costs: the streams are only created or updated when missing or different, and the
embedded server's stop returns once the process has exited (reaped)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from eventstore import subjects as S
from eventstore.jetstream import Connection
from eventstore.server import EmbeddedServer, process_alive, wait_exit

pytestmark = pytest.mark.anyio


async def _ensured(conn: Connection) -> list[str]:
    """The streams a setup() sends through create-or-update."""
    names: list[str] = []
    ensure = conn._ensure_stream

    async def spy(cfg: Any) -> None:
        names.append(cfg.name)
        await ensure(cfg)

    conn._ensure_stream = spy  # type: ignore[method-assign]
    try:
        await conn.setup()
    finally:
        del conn._ensure_stream
    return names


async def test_setup_creates_only_what_is_missing_or_different(tmp_path: Path) -> None:
    server = EmbeddedServer(tmp_path / "nats")
    url = server.start()
    try:
        conn = await Connection.connect(url)
        try:
            assert await _ensured(conn) == []  # everything there, as connect() made it
            logs = (await conn.js.stream_info(S.LOGS)).config
            expected_age = logs.max_age
            logs.max_age = 3600.0
            await conn.js.update_stream(logs)  # changed behind the engine's back
            await conn.js.delete_stream(S.SNAPSHOTS)  # and one gone
            assert sorted(await _ensured(conn)) == sorted([S.LOGS, S.SNAPSHOTS])
            assert (await conn.js.stream_info(S.LOGS)).config.max_age == expected_age
            assert (await conn.js.stream_info(S.SNAPSHOTS)).config.name == S.SNAPSHOTS
            assert await _ensured(conn) == []
        finally:
            await conn.close()
    finally:
        server.stop()
    assert server.proc is None


def test_the_server_is_reaped_when_stop_returns(tmp_path: Path) -> None:
    server = EmbeddedServer(tmp_path / "nats")
    server.start()
    pid = server.pid
    assert pid is not None and process_alive(pid)
    server.stop()
    assert not process_alive(pid)


def test_wait_exit_returns_the_exit_and_times_out_on_a_live_process() -> None:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    wait_exit(done, timeout=30)
    assert done.returncode == 0
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            wait_exit(live, timeout=0.05)
        assert live.poll() is None
    finally:
        live.kill()
        live.wait()
