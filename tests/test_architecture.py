"""The walls of the house (DESIGN.md): layers, a pure core, NATS only in eventstore, no god modules."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("engine", "eventstore", "workers", "triggers", "plugins", "webserver")
MAX_LINES = 700

# The standard library modules the core may use: computation only, nothing that reads the
# world (no os, time, random, socket, subprocess, asyncio, logging...).
PURE_STDLIB = frozenset(
    {
        "__future__",
        "abc",
        "collections",
        "dataclasses",
        "datetime",
        "decimal",
        "enum",
        "functools",
        "hashlib",
        "itertools",
        "json",
        "math",
        "re",
        "typing",
    }
)


def _py_files(*packages: str) -> list[Path]:
    return sorted(p for pkg in packages for p in (ROOT / pkg).rglob("*.py"))


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module a file imports, function-local imports included."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                package = ".".join(path.relative_to(ROOT).with_suffix("").parts[: -node.level])
                module = f"{package}.{module}" if module else package
            # `from pkg import name`: name may be a module of pkg (callers trim unknown tails).
            found.extend((node.lineno, f"{module}.{alias.name}") for alias in node.names)
    return found


def test_the_core_imports_only_pure_modules_msgspec_and_itself() -> None:
    offending = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path in _py_files("engine/core")
        for line, module in _imports(path)
        if module.split(".")[0] not in PURE_STDLIB
        and module.split(".")[0] != "msgspec"
        and not (module == "engine.core" or module.startswith("engine.core."))
    ]
    assert not offending, "the core must stay pure:\n" + "\n".join(offending)


_NATS_HANDLE = re.compile(r"\.(js|nc)\.|\bimport nats\b|\bfrom nats\b|\bnats\.js\b")


def test_nothing_outside_eventstore_touches_nats() -> None:
    offending = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in _py_files(*(p for p in PRODUCT if p != "eventstore"))
        for n, line in enumerate(path.read_text().splitlines(), start=1)
        if _NATS_HANDLE.search(line) and not line.lstrip().startswith("#")
    ]
    assert not offending, "NATS handles belong to eventstore/:\n" + "\n".join(offending)


def test_no_product_module_is_a_god_module() -> None:
    sizes = {path: len(path.read_text().splitlines()) for path in _py_files(*PRODUCT)}
    over = [f"{p.relative_to(ROOT)}: {n} lines" for p, n in sizes.items() if n > MAX_LINES]
    assert not over, f"modules over {MAX_LINES} lines:\n" + "\n".join(over)


def test_the_layers_hold() -> None:
    """import-linter's contracts (pyproject.toml): imports point down only, no circles between layers."""
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.fail("lint-imports is missing: install the dev extras (pip install -e '.[dev]')")
    done = subprocess.run(
        [exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_no_import_circle_between_product_modules() -> None:
    """Module-level imports form no circle (a circle hides a missing wall)."""
    graph: dict[str, set[str]] = {}
    names = {}
    for path in _py_files(*PRODUCT):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        names[name] = path
    for name, path in names.items():
        targets: set[str] = set()
        for _, module in _imports(path):
            # `from pkg import mod` names a module too: take the longest known prefix.
            while module and module not in names:
                module = module.rpartition(".")[0]
            if module and module != name:
                targets.add(module)
        graph[name] = targets
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    circles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                circles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not circles, "import circles:\n" + "\n".join(" -> ".join(c) for c in circles)


def test_every_log_goes_through_engine_logs() -> None:
    """One logging configuration (engine.logs): no module takes structlog's defaults, which print
    rich tracebacks with local variables."""
    offending = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in _py_files(*PRODUCT)
        if path.relative_to(ROOT).as_posix() != "engine/logs.py"
        for line, module in _imports(path)
        if module.split(".")[0] == "structlog"
    ]
    assert not offending, "use engine.logs.get_logger:\n" + "\n".join(offending)
