"""Kestra's core task types."""

from __future__ import annotations

import importlib

from plugins.registry import Registry

_MODULES = (
    "flow",
    "log",
    "debug",
    "output",
    "execution",
    "sleep",
    "kv",
    "state",
    "http",
    "storage",
    "log_fetch",
    "foreachitem",
    "trigger",
    "download",
)


def register(registry: Registry) -> None:
    for name in _MODULES:
        module = importlib.import_module(f"plugins.core.{name}")
        for spec in module.SPECS:
            registry.add(spec)
