"""The API's walls: a route module imports the shared helpers, never another route module nor the app,
and nothing in ``webserver`` holds a NATS handle (``eventstore.admin`` does that)."""

from __future__ import annotations

import ast
from pathlib import Path

import webserver

ROOT = Path(webserver.__file__).parent


def imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_routes_import_helpers_only() -> None:
    routes = sorted((ROOT / "routes").glob("*.py"))
    names = {f"webserver.routes.{p.stem}" for p in routes if p.stem != "__init__"}
    assert len(names) >= 10
    for path in routes:
        used = imports(path)
        assert not used & names, f"{path.name} imports another route module: {sorted(used & names)}"
        assert "webserver.app" not in used, f"{path.name} imports the app"


def test_helpers_import_no_route_nor_app() -> None:
    for path in ROOT.glob("*.py"):
        if path.stem in ("app", "__main__"):
            continue
        bad = {m for m in imports(path) if m.startswith(("webserver.routes", "webserver.app"))}
        assert not bad, f"{path.name} imports {sorted(bad)}"


def test_no_nats_handle_in_webserver() -> None:
    for path in ROOT.rglob("*.py"):
        text = path.read_text()
        assert not any(m.split(".")[0] == "nats" for m in imports(path)), f"{path} imports nats"
        for handle in (".js.", ".nc.", "store.js", "store.nc"):
            assert handle not in text, f"{path} uses a NATS handle ({handle})"


def test_modules_stay_small() -> None:
    for path in ROOT.rglob("*.py"):
        lines = len(path.read_text().splitlines())
        assert lines <= 700, f"{path} has {lines} lines"
