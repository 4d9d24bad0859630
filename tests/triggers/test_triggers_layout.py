"""The trigger role's walls: it reaches NATS only through ``eventstore`` adapters, imports only what
sits below it (the core, the language, the loader, the adapters, the plugin declarations), at the
top of its modules, with no circle between them, and stays in modules of at most 700 lines."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from layout_walls import imported

import triggers

ROOT = Path(triggers.__file__).parent
BELOW = (
    "engine.core",
    "engine.clock",
    "engine.logs",
    "engine.expressions",
    "engine.inputs",
    "engine.loader",
    "engine.flows",
    "eventstore",
    "plugins.core.trigger_types",
)
THIRD_PARTY = ("msgspec", "croniter", "httpx")
NATS_HANDLES = ("js", "nc")


def modules() -> dict[str, ast.Module]:
    found = {f"triggers.{p.stem}": ast.parse(p.read_text()) for p in sorted(ROOT.glob("*.py"))}
    assert len(found) >= 10
    return found


def test_no_nats_handle() -> None:
    for name, tree in modules().items():
        assert not {m for m in imported(tree) if m.split(".")[0] == "nats"}, f"{name} imports nats"
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in NATS_HANDLES:
                raise AssertionError(f"{name} line {node.lineno} uses .{node.attr}")


def test_imports_point_down() -> None:
    for name, tree in modules().items():
        for module in imported(tree):
            top = module.split(".")[0]
            allowed = (
                top in sys.stdlib_module_names
                or top in THIRD_PARTY
                or module.startswith(("triggers", *BELOW))
                or module == "engine"  # ``from engine.x import y`` lists ``engine.x`` too
            )
            assert allowed, f"{name} imports {module}"


def test_imports_at_the_top() -> None:
    for name, tree in modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                inner = [n for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom)]
                assert not inner, f"{name}: {node.name} imports inside a function"


def test_no_import_circle() -> None:
    found = modules()
    graph = {name: {m for m in imported(tree) if m in found and m != name} for name, tree in found.items()}
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, " -> ".join((*path, name))
        if name in done:
            return
        for dep in graph[name]:
            visit(dep, (*path, name))
        done.add(name)

    for name in graph:
        visit(name, ())


def test_modules_stay_small() -> None:
    for path in ROOT.glob("*.py"):
        lines = len(path.read_text().splitlines())
        assert lines <= 700, f"{path.name} has {lines} lines"
