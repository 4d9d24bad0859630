"""Golden event histories replayed through ``evolve`` (see tests/golden/regen.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from engine.core import events as ev
from engine.core.execution import Execution, evolve
from engine.core.shape import execution_json

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
CASES = sorted(p.stem for p in GOLDEN.glob("*.json"))


def test_golden_cases_exist() -> None:
    assert len(CASES) >= 3


@pytest.mark.parametrize("name", CASES)
def test_replaying_a_golden_history_gives_the_recorded_execution(name: str) -> None:
    data: dict[str, Any] = json.loads((GOLDEN / f"{name}.json").read_text())
    events = msgspec.json.decode(json.dumps(data["events"]).encode(), type=list[ev.Event])
    state: Execution | None = None
    for event in events:
        state = evolve(state, event)
    assert state is not None
    assert execution_json(state) == data["execution"]


@pytest.mark.parametrize("name", CASES)
def test_the_decider_still_produces_the_golden_history(name: str) -> None:
    """Same flow, same outcomes: the decider emits exactly the recorded events."""
    import sys

    sys.path.insert(0, str(GOLDEN))
    try:
        import regen
    finally:
        sys.path.remove(str(GOLDEN))
    data = json.loads((GOLDEN / f"{name}.json").read_text())
    assert regen.record(name)["events"] == data["events"]
