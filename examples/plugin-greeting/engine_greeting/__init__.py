"""An example engine plugin: ``io.example.greeting.Hello`` in two versions installed side by side.

Version 1.0.0 greets with a fixed format; 2.0.0 (the latest, what a task gets without ``version:``)
adds ``punctuation`` and an upper-case option. A flow pins the old one with ``version: 1.0.0``.
"""

from __future__ import annotations

from engine_greeting import v1, v2
from plugins.registry import Registry


def register(registry: Registry) -> None:
    """The ``engine.plugins`` entry point: add every plugin (and version) of this package."""
    registry.add(v1.SPEC)
    registry.add(v2.SPEC)
