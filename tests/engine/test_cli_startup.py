"""``python -m engine`` collects less while it starts, then freezes what start-up built and goes back
to Python's thresholds once the command's roles are up; in-process callers (tests) are untouched."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from engine.cli import common


@pytest.fixture
def restored() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    yield before
    gc.set_threshold(*before)
    gc.unfreeze()
    common._default_gc = None


def test_start_up_collects_less_then_python_s_thresholds_come_back(restored: tuple[int, int, int]) -> None:
    common.gc_for_startup()
    assert gc.get_threshold()[0] == common._STARTUP_GC_THRESHOLD
    assert gc.get_threshold()[1:] == restored[1:]
    common.gc_started()
    assert gc.get_threshold() == restored
    assert gc.get_freeze_count() > 0
    gc.unfreeze()
    common.gc_started()  # once only: a second session of the same process changes nothing
    assert gc.get_freeze_count() == 0


def test_without_the_command_line_s_start_nothing_changes(restored: tuple[int, int, int]) -> None:
    common.gc_started()
    assert gc.get_threshold() == restored
    assert gc.get_freeze_count() == 0
