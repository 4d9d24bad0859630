"""Fixtures for the integration tests (helpers live in integration_helpers.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

import pytest
from integration_helpers import CliResult, Engine, engine_roles, run_cli


@pytest.fixture
def cli(tmp_path: Path, nats_url: str) -> Callable[..., CliResult]:
    """Run the CLI against the session server with a per-test ENGINE_HOME."""

    def call(*args: str, env: Mapping[str, str] | None = None, timeout: float = 30) -> CliResult:
        return run_cli(*args, home=tmp_path / "home", nats_url=nats_url, env=env, timeout=timeout)

    return call


@pytest.fixture
async def eng(nats_url: str, tmp_path: Path) -> AsyncIterator[Engine]:
    """An in-process engine (executor and worker as asyncio tasks) on the session server."""
    async with engine_roles(nats_url, tmp_path / "home") as engine:
        yield engine
