"""What the layout tests (the walls of each package) read from a module: the names it imports."""

from __future__ import annotations

import ast


def imported(tree: ast.AST) -> set[str]:
    """Every module ``tree`` imports, and for ``from m import n`` also ``m.n`` (n may be a module)."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out
