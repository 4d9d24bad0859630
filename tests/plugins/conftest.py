"""Fixtures for plugin tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from plugin_harness import FakeContext


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[FakeContext]:
    work = tmp_path / "work"
    work.mkdir()
    yield FakeContext(work)
