"""Fixtures for the trigger tests (helpers live in triggers_helpers.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from triggers_helpers import Engine, Recorder, engine_roles, ns


@pytest.fixture
async def eng(nats_url: str, tmp_path: Path) -> AsyncIterator[Engine]:
    async with engine_roles(nats_url, tmp_path / "home") as engine:
        yield engine


@pytest.fixture
def namespace() -> str:
    return ns()


@pytest.fixture
async def rec(eng: Engine, namespace: str) -> AsyncIterator[Recorder]:
    recorder = await Recorder(eng.rt.store.nc, namespace).start()
    try:
        yield recorder
    finally:
        await recorder.stop()
