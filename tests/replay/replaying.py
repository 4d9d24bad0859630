"""Replaying golden files with the engine's flow loader and step-bound templates (shared by the
tests and the recorder, which replays what it has just written)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.core.model import Flow
from engine.core.ports import Templates
from engine.core.replay import ReplayMismatch, TemplatesFor, load, replay
from engine.expressions import Expressions
from engine.loader.loader import load_flow_revision

HISTORIES = Path(__file__).parent / "histories"

EXPRESSIONS = Expressions()


def parse(source: str, revision: int) -> Flow:
    """As the executor's flow cache parses a stored revision."""
    return load_flow_revision(source, revision)


def bound(now: str, seed: str, envs: Mapping[str, str]) -> Templates:
    return EXPRESSIONS.for_step(now, seed, envs)


def replay_file(path: Path, templates_for: TemplatesFor = bound) -> int:
    """Replay one golden file; the number of steps, or ReplayMismatch."""
    header, steps = load(path.read_bytes())
    return replay(path.name, header, steps, parse, templates_for)


def mismatches(paths: list[Path], templates_for: Any = bound) -> list[str]:
    """The message of every history that does not replay."""
    found = []
    for path in paths:
        try:
            replay_file(path, templates_for)
        except ReplayMismatch as exc:
            found.append(str(exc))
    return found
