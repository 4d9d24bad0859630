"""Script tasks (shell, python) run as local processes."""

from __future__ import annotations

from plugins.registry import Registry


def register(registry: Registry) -> None:
    del registry  # filled in by plugins.scripts.* modules
