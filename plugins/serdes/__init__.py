"""File format conversions under Kestra's ``io.kestra.plugin.serdes.*`` names (CSV, JSON lines, ION)."""

from __future__ import annotations

import importlib

from plugins.registry import Registry

_MODULES = ("csv_tasks", "json_tasks")


def register(registry: Registry) -> None:
    for name in _MODULES:
        module = importlib.import_module(f"plugins.serdes.{name}")
        for spec in module.SPECS:
            registry.add(spec)
