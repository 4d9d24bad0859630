"""Every secrets backend (environment, directory, an external read-only store) feeds ``secret()``, and
what it returns is masked as everywhere else: task logs, task outputs, flow outputs, the stored events."""

from __future__ import annotations

import base64
import sqlite3
import textwrap
from pathlib import Path
from typing import Any

import pytest

from engine.core.errors import ExpressionError
from engine.secrets import read_secret
from engine.settings import SettingsError
from engine.testing.run import MemoryEngine

pytestmark = pytest.mark.anyio

SECRET = "correct-horse-battery-staple"

FLOW = """
id: masked
namespace: io.secrets
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: "connecting with {{ secret('DB_PASSWORD') }}"
  - id: keep
    type: io.kestra.plugin.core.debug.Return
    format: "pw={{ secret('DB_PASSWORD') }}"
outputs:
  - id: dsn
    type: STRING
    value: "db://app:{{ secret('DB_PASSWORD') }}@host"
"""

# An external store the engine knows nothing about: a module outside the engine, selected by
# ENGINE_SECRETS_BACKEND=module:factory, reading a SQLite database it is pointed at.
EXTERNAL = textwrap.dedent(
    """
    import os
    import sqlite3

    class SqliteSecrets:
        name = "sqlite"

        def __init__(self, path):
            self.path = path

        def get(self, key):
            with sqlite3.connect(self.path) as db:
                row = db.execute("SELECT value FROM secrets WHERE key = ?", (key,)).fetchone()
            return None if row is None else row[0]

        def hint(self, key):
            return f"insert it into {self.path}"

    def factory(settings):
        return SqliteSecrets(os.environ["SQLITE_SECRETS"])
    """
)


def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SECRET_DB_PASSWORD", base64.b64encode(SECRET.encode()).decode())


def _dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "DB_PASSWORD").write_text(SECRET + "\n")
    monkeypatch.setenv("ENGINE_SECRETS_BACKEND", "dir")
    monkeypatch.setenv("ENGINE_SECRETS_DIR", str(secrets))


def _external(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "sqlite_secrets.py").write_text(EXTERNAL)
    monkeypatch.syspath_prepend(str(tmp_path))
    db = tmp_path / "secrets.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE secrets (key TEXT PRIMARY KEY, value TEXT)")
        conn.execute("INSERT INTO secrets VALUES ('DB_PASSWORD', ?)", (SECRET,))
    conn.close()
    monkeypatch.setenv("SQLITE_SECRETS", str(db))
    monkeypatch.setenv("ENGINE_SECRETS_BACKEND", "sqlite_secrets:factory")


BACKENDS = {"env": _env, "dir": _dir, "external": _external}


@pytest.mark.parametrize("backend", list(BACKENDS))
async def test_each_backend_feeds_secret_and_is_masked_everywhere(
    backend: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    BACKENDS[backend](monkeypatch, tmp_path)
    assert read_secret("DB_PASSWORD") == SECRET
    async with MemoryEngine() as eng:
        flow = await eng.deploy(FLOW)
        state = await eng.run(flow)
    assert state.state == "SUCCESS", state
    lines = [line.message for line in await eng.store.read_logs(state.id)]
    assert "connecting with ********" in lines, lines
    outputs: dict[str, Any] = {tr.task_id: tr.outputs for tr in state.taskruns.values()}
    assert outputs["keep"] == {"value": "pw=********"}
    assert state.outputs == {"dsn": "db://app:********@host"}
    stored = repr(await eng.store.read(state.id)) + repr(lines)
    assert SECRET not in stored


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_a_missing_secret_names_the_backend_and_the_fix(
    backend: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    BACKENDS[backend](monkeypatch, tmp_path)
    with pytest.raises(ExpressionError, match="secret 'NOPE' not found: ") as info:
        read_secret("NOPE")
    expected = {"env": "SECRET_NOPE", "dir": "ENGINE_SECRETS_DIR", "external": "secrets.db"}[backend]
    assert expected in str(info.value)


@pytest.mark.parametrize("name", ["../etc/passwd", "a/b", ".hidden", "", "x" * 300])
def test_a_secret_name_is_never_a_path(name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _dir(monkeypatch, tmp_path)
    (tmp_path / "passwd").write_text("root")
    with pytest.raises(ExpressionError, match=r"secret name .* is invalid"):
        read_secret(name)


def test_the_directory_backend_bounds_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _dir(monkeypatch, tmp_path)
    (tmp_path / "secrets" / "BIG").write_bytes(b"x" * ((1 << 20) + 1))
    with pytest.raises(ExpressionError, match="over 1048576 bytes"):
        read_secret("BIG")


def test_a_bad_configuration_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ENGINE_SECRETS_BACKEND", "dir")
    with pytest.raises(SettingsError, match="ENGINE_SECRETS_BACKEND=dir needs ENGINE_SECRETS_DIR"):
        read_secret("X")
    monkeypatch.setenv("ENGINE_SECRETS_BACKEND", "vault")
    with pytest.raises(SettingsError, match="no such secrets backend; known: dir, env"):
        read_secret("X")
    monkeypatch.setenv("ENGINE_SECRETS_BACKEND", "nowhere_module:factory")
    with pytest.raises(SettingsError, match="cannot load it"):
        read_secret("X")


def test_an_external_backend_is_found_by_its_entry_point_name(tmp_path: Path) -> None:
    """What installing a backend package writes (its module and a dist-info naming the entry point)."""
    import os
    import subprocess
    import sys

    site = tmp_path / "site"
    site.mkdir()
    (site / "sqlite_secrets.py").write_text(EXTERNAL)
    info = site / "sqlite_secrets-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sqlite-secrets\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[engine.secrets]\nsqlite = sqlite_secrets:factory\n")
    db = tmp_path / "secrets.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE secrets (key TEXT PRIMARY KEY, value TEXT)")
        conn.execute("INSERT INTO secrets VALUES ('TOKEN', 'from-the-store')")
    conn.close()
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), str(root)]),
        "ENGINE_SECRETS_BACKEND": "sqlite",
        "SQLITE_SECRETS": str(db),
    }
    code = "from engine.secrets import read_secret, backend; print(backend().name, read_secret('TOKEN'))"
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert res.stdout.strip() == "sqlite from-the-store", res.stderr
