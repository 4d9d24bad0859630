"""Script tasks (shell, python) run as local processes."""

from __future__ import annotations

import importlib

from plugins.registry import Registry

_MODULES = ("shell", "python", "legacy")


def register(registry: Registry) -> None:
    for name in _MODULES:
        module = importlib.import_module(f"plugins.scripts.{name}")
        for spec in module.SPECS:
            registry.add(spec)
