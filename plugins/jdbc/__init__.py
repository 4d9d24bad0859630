"""SQL tasks under Kestra's ``io.kestra.plugin.jdbc.*`` names: DuckDB, SQLite, PostgreSQL."""

from __future__ import annotations

import importlib

from plugins.registry import Registry

_MODULES = ("duckdb", "sqlite", "postgresql")


def register(registry: Registry) -> None:
    for name in _MODULES:
        module = importlib.import_module(f"plugins.jdbc.{name}")
        for spec in module.SPECS:
            registry.add(spec)
