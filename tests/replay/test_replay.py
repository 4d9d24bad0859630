"""Recorded real histories replayed through the pure core: the same events and effects, byte for byte.

Each file of histories/ is one execution as a real executor ran it (``python -m tests.replay.record``
writes them). Replaying folds it again from nothing: every step's inputs go through ``accept`` and
``settle`` (and ``redispatch`` where the executor did) at the recorded time with the step's seed,
and must produce exactly the recorded bytes. No server is needed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
import pytest
from replaying import EXPRESSIONS, HISTORIES, bound, mismatches, parse, replay_file

from engine.core.ports import Templates
from engine.core.replay import Header, ReplayMismatch, Step, load, replay
from engine.inputs import load_yaml

REPO = Path(__file__).resolve().parents[2]
FILES = sorted(HISTORIES.glob("*.jsonl"))


class Unbound:
    """The expressions NOT bound to the step: ``now()`` is the wall clock, ``uuid()`` is random."""

    def __init__(self, envs: Mapping[str, str]) -> None:
        self.envs = envs

    def render_value(self, value: Any, variables: Mapping[str, Any]) -> Any:
        return EXPRESSIONS.render_value(value, variables)

    def load_yaml(self, text: str) -> Any:
        return load_yaml(text)


def unbound(now: str, seed: str, envs: Mapping[str, str]) -> Templates:
    return Unbound(envs)


def test_there_are_histories() -> None:
    assert 50 <= len(FILES) <= 80, f"{len(FILES)} golden histories in {HISTORIES}"


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_replay(path: Path) -> None:
    assert replay_file(path) > 0


STEP_FUNCTIONS = next((p for p in FILES if p.name.endswith(".step-functions.jsonl")), None)


def test_unbound_templates_are_caught() -> None:
    """Decisions rendered with the wall clock and a random generator are not the recorded ones."""
    assert STEP_FUNCTIONS is not None, "the step-functions history is missing: record it (make record)"
    with pytest.raises(ReplayMismatch) as caught:
        replay_file(STEP_FUNCTIONS, unbound)
    message = str(caught.value)
    assert message.startswith(f"{STEP_FUNCTIONS.name}: step "), message
    assert "differs\n  recorded: " in message, message
    assert "\n  replayed: " in message, message


def _tampered(change: Any) -> str:
    """The message of replaying the first history with more than one step, changed by ``change``."""
    path = next(p for p in FILES if len(load(p.read_bytes())[1]) > 2)
    header, steps = load(path.read_bytes())
    header, steps = change(header, steps)
    with pytest.raises(ReplayMismatch) as caught:
        replay(path.name, header, steps, parse, bound)
    return str(caught.value)


def test_a_differing_event_is_named() -> None:
    def change(header: Header, steps: list[Step]) -> tuple[Header, list[Step]]:
        events = list(steps[1].events)
        events[0] = msgspec.Raw(bytes(events[0]).replace(b'"date":"', b'"date":"X', 1))
        steps[1] = msgspec.structs.replace(steps[1], events=events)
        return header, steps

    message = _tampered(change)
    assert re.match(r"\S+\.jsonl: step 2 \(seq \d+, now [^)]+\): event 0 differs\n  recorded: ", message)
    assert '"date":"X' in message.split("\n")[1] and '"date":"X' not in message.split("\n")[2], message


def test_a_missing_event_is_named() -> None:
    def change(header: Header, steps: list[Step]) -> tuple[Header, list[Step]]:
        steps[0] = msgspec.structs.replace(steps[0], events=steps[0].events[:-1])
        return header, steps

    message = _tampered(change)
    expected = r": step 1 \(.*\): \d+ events recorded, \d+ replayed; first extra \(replayed\): "
    assert re.search(expected, message), message


def test_an_unrecorded_flow_is_named() -> None:
    message = _tampered(lambda header, steps: (msgspec.structs.replace(header, flows=[]), steps))
    assert re.search(r"\.jsonl: flow \S+ revision \d+ was not recorded$", message), message


def test_replay_does_not_depend_on_the_hash_seed() -> None:
    """A set of strings iterates in an order of its process (PYTHONHASHSEED): a decision built from
    one would be other bytes in another process. Replayed under two other seeds, nothing changes."""
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO)}
        done = subprocess.run(
            [sys.executable, __file__], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, f"PYTHONHASHSEED={seed}:\n{done.stdout}{done.stderr}"


if __name__ == "__main__":  # every history, in this process (the hash-seed test runs this)
    found = mismatches(FILES)
    print("\n".join(found))
    sys.exit(1 if found else 0)
