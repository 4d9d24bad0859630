"""The executor's and the worker's walls: they reach the store through ``engine.core.ports`` only
(no NATS import, no NATS handle), the ports stay pure, and the store's modules stay small."""

from __future__ import annotations

import ast
from pathlib import Path

import engine
import eventstore
import workers

ENGINE, EVENTSTORE, WORKERS = (Path(m.__file__).parent for m in (engine, eventstore, workers))
ROLES = [
    ENGINE / "executor.py",
    ENGINE / "partitions.py",
    ENGINE / "flows.py",
    ENGINE / "runtime.py",
    WORKERS / "worker.py",
    *sorted((ENGINE / "testing").glob("*.py")),
]


def imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_the_roles_hold_no_nats_handle() -> None:
    for path in ROLES:
        text = path.read_text()
        assert not any(m.split(".")[0] == "nats" for m in imports(path)), f"{path} imports nats"
        for handle in (".js.", ".nc.", "store.js", "store.nc"):
            assert handle not in text, f"{path} uses a NATS handle ({handle})"


PURE = ("__future__", "collections", "dataclasses", "typing", "msgspec")


def test_the_ports_import_only_the_core() -> None:
    for module in imports(ENGINE / "core" / "ports.py"):
        assert module.startswith(("engine.core.", *PURE)), f"engine/core/ports.py imports {module}"


def test_the_store_modules_stay_small() -> None:
    for name in ("store", "jetstream", "history", "messaging", "reader"):
        path = EVENTSTORE / f"{name}.py"
        lines = len(path.read_text().splitlines())
        assert lines <= 700, f"{path} has {lines} lines"
