"""Shared fixtures: a real nats-server on a free loopback port, started once per session."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from eventstore.server import EmbeddedServer


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    server = EmbeddedServer(tmp_path_factory.mktemp("nats"))
    server.start()
    try:
        yield server
    finally:
        pid = server.pid
        server.stop()
        if pid is not None:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)


@pytest.fixture(scope="session")
def nats_url(nats_server: EmbeddedServer) -> str:
    return nats_server.client_url


@pytest.fixture
def engine_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ENGINE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


__all__ = ["AsyncIterator", "run"]
