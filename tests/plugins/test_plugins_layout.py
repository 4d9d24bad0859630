"""The plugins' walls: a task gets the engine only through its RunContext (no store fished out of
the context, no NATS handle), and no plugin imports a role (workers, triggers, the executor, the API,
the wiring)."""

from __future__ import annotations

import ast
from pathlib import Path

from layout_walls import imported

import plugins

ROOT = Path(plugins.__file__).parent
ROLES = ("workers", "triggers", "webserver", "engine.runtime", "engine.executor", "engine.cli", "nats")


def modules() -> dict[str, ast.Module]:
    found = {str(p.relative_to(ROOT)): ast.parse(p.read_text()) for p in sorted(ROOT.rglob("*.py"))}
    assert len(found) >= 20
    return found


def test_no_role_imported() -> None:
    for name, tree in modules().items():
        for module in imported(tree):
            assert not module.startswith(ROLES), f"{name} imports {module}"


def test_the_engine_only_through_the_context() -> None:
    for name, tree in modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("js", "nc", "store"):
                raise AssertionError(f"{name} line {node.lineno} uses .{node.attr}")
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "getattr":
                raise AssertionError(f"{name} line {node.lineno}: {ast.unparse(node)}")


def test_modules_stay_small() -> None:
    for path in ROOT.rglob("*.py"):
        lines = len(path.read_text().splitlines())
        assert lines <= 700, f"{path.name} has {lines} lines"
