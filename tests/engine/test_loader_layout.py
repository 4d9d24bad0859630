"""The loader's walls: it reads only what sits below it (the core, the language, the plugin SDK),
imports at the top, stays in small modules and never hides a failed import."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import engine.loader

ROOT = Path(engine.loader.__file__).parent
# the layers under the loader; yamlpos (the bounded YAML parser) sits under the language too
BELOW = (
    "engine.core",
    "engine.yamlpos",
    "engine.expressions",
    "engine.inputs",
    "plugins.api",
    "plugins.registry",
)
THIRD_PARTY = ("yaml", "msgspec")


def modules() -> list[Path]:
    found = sorted(ROOT.glob("*.py"))
    assert len(found) >= 10
    return found


def imported(tree: ast.Module) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_imports_point_down() -> None:
    for path in modules():
        for name in imported(ast.parse(path.read_text())):
            top = name.split(".")[0]
            allowed = (
                top in sys.stdlib_module_names
                or top in THIRD_PARTY
                or name.startswith(("engine.loader", *BELOW))
            )
            assert allowed, f"{path.name} imports {name}"


def test_yamlpos_is_a_leaf() -> None:
    used = imported(ast.parse((ROOT.parent / "yamlpos.py").read_text()))
    assert {m for m in used if m.startswith(("engine", "plugins"))} == {"engine.core.errors"}


def test_imports_at_the_top_and_no_fallback() -> None:
    for path in modules():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                inner = [n for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom)]
                assert not inner, f"{path.name}: {node.name} imports inside a function"
            if isinstance(node, ast.ExceptHandler) and node.type is not None:
                caught = ast.unparse(node.type)
                assert "ImportError" not in caught, f"{path.name} line {node.lineno} hides a failed import"
        assert "importlib" not in imported(tree), f"{path.name} imports modules dynamically"


def test_modules_and_classes_stay_small() -> None:
    for path in modules():
        tree = ast.parse(path.read_text())
        lines = len(path.read_text().splitlines())
        assert lines <= 500, f"{path.name} has {lines} lines"
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                assert size <= 300, f"{path.name}: class {node.name} has {size} lines"
