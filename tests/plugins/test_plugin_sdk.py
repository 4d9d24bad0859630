"""The plugin SDK end to end: the example package in examples/plugin-greeting, its own tests, and the
engine finding it through the ``engine.plugins`` entry-point group (two versions side by side)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.core.errors import PluginNotFound
from engine.loader.plugindoc import plugin_doc, render_doc
from plugins.api import runnable
from plugins.registry import Registry, default_registry

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "plugin-greeting"


def _run(args: list[str], pythonpath: list[Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in pythonpath)}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_example_plugins_own_tests_pass() -> None:
    res = _run(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], [EXAMPLE, ROOT], cwd=EXAMPLE)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "4 passed" in res.stdout


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """What ``pip install examples/plugin-greeting`` puts on the path: the package and its dist-info
    (metadata and the entry point). Written directly: this machine has no wheel builder offline."""
    site = tmp_path / "site"
    shutil.copytree(EXAMPLE / "engine_greeting", site / "engine_greeting")
    info = site / "engine_plugin_greeting-2.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: engine-plugin-greeting\nVersion: 2.0.0\n")
    (info / "entry_points.txt").write_text("[engine.plugins]\ngreeting = engine_greeting:register\n")
    return site


def test_an_installed_plugin_is_listed_documented_and_runs_by_version(site: Path, tmp_path: Path) -> None:
    path = [site, ROOT]
    res = _run(["-m", "engine", "plugins", "list"], path, tmp_path)
    assert "io.example.greeting.Hello [runnable] (versions: 1.0.0, 2.0.0)" in res.stdout, res.stderr

    res = _run(["-m", "engine", "plugins", "doc", "io.example.greeting.Hello"], path, tmp_path)
    assert res.returncode == 0, res.stderr
    text = res.stdout
    assert "version 2.0.0 (installed: 1.0.0, 2.0.0" in text
    assert "  name: string  [required]" in text and "Who to greet" in text
    assert "  style: one of 'plain', 'upper'  [default \"plain\"]" in text
    assert "  length: integer" in text  # outputs
    assert "style: upper" in text  # the plugin's example

    res = _run(
        [
            "-m",
            "engine",
            "plugins",
            "doc",
            "io.example.greeting.Hello",
            "--version",
            "1.0.0",
            "--output",
            "json",
        ],
        path,
        tmp_path,
    )
    doc = json.loads(res.stdout)
    assert doc["version"] == "1.0.0" and [f["name"] for f in doc["properties"]] == ["name"]
    assert doc["outputs"] == [
        {"name": "greeting", "type": "string", "required": True, "description": "The greeting, as logged"}
    ]

    res = _run(
        ["-m", "engine", "plugins", "doc", "io.example.greeting.Hello", "--version", "9"], path, tmp_path
    )
    assert res.returncode == 1 and "installed: 1.0.0, 2.0.0" in res.stderr

    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "greet.yaml").write_text(
        "id: greet\nnamespace: company.team\ntasks:\n"
        "  - id: new\n    type: io.example.greeting.Hello\n    name: Ada\n    punctuation: '?'\n"
        "  - id: old\n    type: io.example.greeting.Hello\n    version: 1.0.0\n    name: Ada\n"
    )
    (flows / "greet_test.yaml").write_text(
        "id: greet_test\nnamespace: company.team\nflowId: greet\ntestCases:\n"
        "  - id: versions\n    type: io.kestra.core.tests.flow.UnitTest\n    assertions:\n"
        "      - value: '{{ outputs.new.greeting }}'\n        equalTo: Hello, Ada?\n"
        "      - value: '{{ outputs.old.greeting }}'\n        equalTo: Hello, Ada!\n"
        "      - value: '{{ outputs.old.length ?? null }}'\n        isNull: true\n"
    )
    res = _run(["-m", "engine", "test", str(flows)], path, tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr


def _spec(version: str | None, type_: str = "io.example.T") -> object:
    import msgspec

    class Props(msgspec.Struct):
        x: int = 0

    async def run(props: object, ctx: object) -> object:
        raise AssertionError("not run here")

    return runnable(type_, Props, run, "t", version=version)  # type: ignore[arg-type]


def test_versions_order_by_pep_440_and_unversioned_plugins_refuse_a_version() -> None:
    reg = Registry()
    for v in ("1.9.0", "1.10.0", "1.10.0rc1"):
        reg.add(_spec(v))  # type: ignore[arg-type]
    assert reg.versions("io.example.T") == ["1.9.0", "1.10.0rc1", "1.10.0"]
    assert reg.resolve("io.example.T").version == "1.10.0"
    reg.add(_spec(None, "io.example.U"))  # type: ignore[arg-type]
    with pytest.raises(PluginNotFound, match=r"installed: none \(this plugin is not versioned\)"):
        reg.resolve("io.example.U", "1.0")


def test_an_entry_point_plugin_without_its_own_version_takes_its_distributions() -> None:
    spec = default_registry().resolve("io.kestra.plugin.core.log.Log")
    assert spec.version is not None  # the engine's own distribution version


def test_every_installed_plugin_has_a_doc_with_an_example() -> None:
    registry = default_registry()
    for spec in registry.specs():
        doc = plugin_doc(spec, registry)
        text = render_doc(doc)
        assert spec.type in text and "Example:" in text, spec.type
        assert f"type: {spec.type}" in doc["examples"][0] or spec.examples, spec.type


def test_the_schema_offers_the_installed_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLE))
    from engine_greeting import register

    from engine.loader.schema import flow_json_schema
    from engine.testing.run import plugin_registry

    schema = flow_json_schema(plugin_registry(register))
    hello = next(d for d in schema["$defs"].values() if d.get("title") == "Hello")
    assert hello["properties"]["version"]["enum"] == ["1.0.0", "2.0.0", "LATEST", "OLDEST"]
