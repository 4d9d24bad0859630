"""Where ``{{ secret('NAME') }}`` reads its value: one backend per process, chosen by configuration.

``ENGINE_SECRETS_BACKEND`` selects it:

- ``env`` (default): Kestra OSS's convention, ``SECRET_<NAME>`` holding the base64-encoded value;
- ``dir``: one file per secret in ``ENGINE_SECRETS_DIR`` (the file's name is the secret's name, its
  content the value, one trailing newline dropped), the layout of Docker and Kubernetes mounted secrets;
- any other word: a read-only backend for an external store (Kestra 0.22's read-only secret managers),
  the factory registered under that name in the ``engine.secrets`` entry-point group, or
  ``package.module:factory``. The factory is called with the ``Settings`` and returns a
  ``SecretBackend``.

Every backend is reached through ``read_secret``, so every value it returns is masked exactly as the
env backend's (``engine.core.masking``: the worker masks what a task read, the decider flow outputs).
"""

from __future__ import annotations

import base64
import importlib
import os
import re
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Protocol, runtime_checkable

from engine.core.errors import ExpressionError
from engine.settings import Settings, SettingsError, settings

__all__ = [
    "DirectoryBackend",
    "EnvBackend",
    "SecretBackend",
    "backend",
    "read_secret",
]

# A secret name is a key, never a path: ``../`` in a flow must not read another file.
NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$")
MAX_SECRET = 1 << 20  # bytes: a secret is a password or a key, not a data set


@runtime_checkable
class SecretBackend(Protocol):
    """A read-only secret store. ``get`` returns None for a secret it does not hold.

    It is called synchronously where a template is rendered (the worker, the executor's flow
    outputs): a backend over the network should cache, and bound its own time.
    """

    name: str

    def get(self, key: str) -> str | None: ...

    def hint(self, key: str) -> str:
        """How to provide ``key`` (shown when it is missing)."""
        ...


class EnvBackend:
    """Kestra OSS: ``SECRET_<NAME>`` (or the name upper-cased), base64-encoded (line-wrapped decodes too)."""

    name = "env"

    def get(self, key: str) -> str | None:
        # Kestra upper-cases the name: secret('my_secret') reads SECRET_MY_SECRET
        raw = os.environ.get(f"SECRET_{key}")
        if raw is None:
            raw = os.environ.get(f"SECRET_{key.upper()}")
        if raw is None:
            return None
        try:
            return base64.b64decode(raw).decode()
        except ValueError as exc:
            raise ExpressionError(f"secret {key!r}: SECRET_{key} is not valid base64") from exc

    def hint(self, key: str) -> str:
        return f"set the environment variable SECRET_{key} to its base64-encoded value"


class DirectoryBackend:
    """One file per secret in a directory, its content the value (not encoded)."""

    name = "dir"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def get(self, key: str) -> str | None:
        path = self.directory / key
        try:
            with path.open("rb") as f:
                data = f.read(MAX_SECRET + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ExpressionError(f"secret {key!r}: cannot read {path}: {exc.strerror}") from None
        if len(data) > MAX_SECRET:
            raise ExpressionError(f"secret {key!r}: {path} is over {MAX_SECRET} bytes")
        try:
            text = data.decode()
        except UnicodeDecodeError:
            raise ExpressionError(f"secret {key!r}: {path} is not UTF-8 text") from None
        # An editor ends a file with a newline that is no part of the password.
        return text[:-1] if text.endswith("\n") else text

    def hint(self, key: str) -> str:
        return f"write its value to the file {self.directory / key} (ENGINE_SECRETS_DIR)"


Factory = Callable[[Settings], SecretBackend]


def _load_factory(spec: str) -> Factory:
    if ":" in spec:
        module, _, attr = spec.partition(":")
        try:
            factory: Factory = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise SettingsError(
                f"ENGINE_SECRETS_BACKEND={spec!r}: cannot load it ({exc}); "
                "name an installed module and its factory, or use env or dir"
            ) from None
        return factory
    found = [ep for ep in entry_points(group="engine.secrets") if ep.name == spec]
    if not found:
        known = sorted({"env", "dir", *(ep.name for ep in entry_points(group="engine.secrets"))})
        raise SettingsError(
            f"ENGINE_SECRETS_BACKEND={spec!r}: no such secrets backend; known: {', '.join(known)}"
        )
    loaded: Factory = found[0].load()
    return loaded


def make_backend(config: Settings) -> SecretBackend:
    """The backend ``config`` selects (``SettingsError`` naming the variable when it cannot be made)."""
    kind = config.secrets_backend
    if kind == "env":
        return EnvBackend()
    if kind == "dir":
        if config.secrets_dir is None:
            raise SettingsError("ENGINE_SECRETS_BACKEND=dir needs ENGINE_SECRETS_DIR (a directory)")
        if not config.secrets_dir.is_dir():
            raise SettingsError(f"ENGINE_SECRETS_DIR={str(config.secrets_dir)!r}: not a directory")
        return DirectoryBackend(config.secrets_dir)
    made = _load_factory(kind)(config)
    if not isinstance(made, SecretBackend):
        raise SettingsError(f"ENGINE_SECRETS_BACKEND={kind!r}: the factory did not return a SecretBackend")
    return made


_cache: tuple[Settings, SecretBackend] | None = None


def backend() -> SecretBackend:
    """The backend of the current settings (made again when they change)."""
    global _cache
    current = settings()
    if _cache is None or _cache[0] != current:
        _cache = (current, make_backend(current))
    return _cache[1]


def read_secret(name: str) -> str:
    """The value of secret ``name`` from the configured backend; ExpressionError when it is missing."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ExpressionError(
            f"secret name {name!r} is invalid: use letters, digits, '_', '.' and '-' (no '/', at most 255)"
        )
    store = backend()
    value = store.get(name)
    if value is None:
        raise ExpressionError(f"secret {name!r} not found: {store.hint(name)}")
    return value
