"""Every ``ENGINE_*`` environment variable, parsed and checked in one place.

``settings()`` is the one reader: each module asks it for the value it needs when it needs it, so a
malformed value is refused with one line that names the variable, what it holds and what it takes,
instead of a traceback deep in a role. An unset or empty variable takes its default.

==========================  ==========================================  ======================================
variable                    takes                                       default (used by)
==========================  ==========================================  ======================================
``ENGINE_HOME``             a directory                                 the per-user data directory (runtime:
                                                                        embedded server, index, cluster)
``ENGINE_NATS_URL``         nats:// URLs, comma-separated               the embedded nats-server (runtime)
``ENGINE_REPLICAS``         1 to 5                                      3 given 3+ URLs, else 1 (store)
``ENGINE_SYNC_INTERVAL``    ``always`` or a duration (``1s``, ``2m``)   ``always`` (nats-server's fsync)
``ENGINE_EXECUTOR_ID``      a name, unique per executor process         random per process (executor)
``ENGINE_LEASE_TTL``        seconds, 1 to 60                            3 (executor partitions)
``ENGINE_SNAPSHOT_EVERY``   steps, 1 or more                            100 (executor snapshots)
``ENGINE_LOG_FORMAT``       ``json`` or ``console``                     console on a terminal, else json
``ENGINE_LOG_LEVEL``        debug, info, warning, error, critical       warning (the engine's own logs)
                                                                        (error in a command that is not
                                                                        ``engine server``/``cluster``)
``ENGINE_API_USER``         a user name (with ``ENGINE_API_PASSWORD``)  none: no basic auth (webserver)
``ENGINE_API_PASSWORD``     its password                                none
``ENGINE_API_TOKENS``       bearer tokens, comma-separated              none (webserver)
``ENGINE_SERVER``           an engine API URL                           local mode (the CLI's ``--server``)
``ENGINE_TOKEN``            a bearer token                              none (the CLI's ``--token``)
``ENGINE_DUCKDB_MEMORY``    a size: 128MB, 512MB, 2GB                   128MB (DuckDB Query's memory_limit)
``ENGINE_DOCKER_VOLUMES``   ``true`` or ``false``                       false: a Docker task runner's host
                                                                        ``volumes`` are refused (worker)
``ENGINE_SECRETS_BACKEND``  ``env``, ``dir``, an ``engine.secrets``     ``env`` (``SECRET_*``; engine.secrets)
                            entry point or ``module:factory``
``ENGINE_SECRETS_DIR``      a directory, one file per secret            none (the ``dir`` backend)
==========================  ==========================================  ======================================

``ENGINE_SERVER`` and ``ENGINE_TOKEN`` are read by the CLI's options themselves (typer's ``envvar``, which
also shows them in ``--help``); they are named here so that this table lists every variable.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

import msgspec

from engine.core.errors import EngineError

PREFIX = "ENGINE_"
SERVER = "ENGINE_SERVER"
TOKEN = "ENGINE_TOKEN"

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}
# nats-server reads the value as a Go duration, written unquoted in its config file
_DURATION = re.compile(r"(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+")
_SIZE = re.compile(r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", re.I)

T = TypeVar("T")


class SettingsError(EngineError):
    """An ``ENGINE_*`` variable holds a value the engine cannot use."""


class Settings(msgspec.Struct, frozen=True):
    """The parsed ``ENGINE_*`` variables (see the module's table); None: unset, the default applies."""

    home: Path | None = None
    nats_url: str | None = None
    replicas: int | None = None
    sync_interval: str = "always"
    executor_id: str | None = None
    lease_ttl: float = 3.0
    snapshot_every: int = 100
    log_format: str | None = None
    log_level: int = logging.WARNING
    log_level_given: bool = False  # ENGINE_LOG_LEVEL is set: a person's command shows that level too
    api_user: str | None = None
    api_password: str | None = None
    api_tokens: frozenset[str] = frozenset()
    duckdb_memory: str = "128MB"
    docker_volumes: bool = False
    secrets_backend: str = "env"
    secrets_dir: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Parse ``env`` (default: the process environment); a bad value raises ``SettingsError``."""
        env = os.environ if env is None else env

        def text(name: str) -> str | None:
            return env.get(name) or None  # as given: a password may hold spaces

        def parse(name: str, convert: Callable[[str], T | None], expected: str, default: T) -> T:
            value = env.get(name, "").strip()
            if not value:
                return default
            result = convert(value)
            if result is None:
                raise SettingsError(f"{name}={value!r}: expected {expected}; fix it or unset it")
            return result

        home = text("ENGINE_HOME")
        return cls(
            home=Path(home).expanduser() if home else None,
            nats_url=text("ENGINE_NATS_URL"),
            replicas=parse(
                "ENGINE_REPLICAS", _int_within(1, 5), "a number from 1 to 5 (3 on a cluster)", None
            ),
            sync_interval=parse(
                "ENGINE_SYNC_INTERVAL",
                lambda v: v if v == "always" or _DURATION.fullmatch(v) else None,
                "always or a duration such as 1s, 500ms or 2m (default always)",
                "always",
            ),
            executor_id=text("ENGINE_EXECUTOR_ID"),
            lease_ttl=parse(
                "ENGINE_LEASE_TTL", _float_within(1, 60), "seconds from 1 to 60 (default 3)", 3.0
            ),
            snapshot_every=parse(
                "ENGINE_SNAPSHOT_EVERY", _int_within(1, None), "a number of steps >= 1 (default 100)", 100
            ),
            log_format=parse(
                "ENGINE_LOG_FORMAT",
                lambda v: v if v in ("json", "console") else None,
                "json or console (default: console on a terminal, else json)",
                None,
            ),
            log_level=parse(
                "ENGINE_LOG_LEVEL",
                lambda v: _LEVELS.get(v.lower()),
                "debug, info, warning, error or critical (default warning)",
                logging.WARNING,
            ),
            log_level_given=bool(env.get("ENGINE_LOG_LEVEL", "").strip()),
            api_user=text("ENGINE_API_USER"),
            api_password=text("ENGINE_API_PASSWORD"),
            api_tokens=frozenset(t.strip() for t in env.get("ENGINE_API_TOKENS", "").split(",") if t.strip()),
            duckdb_memory=parse(
                "ENGINE_DUCKDB_MEMORY",
                lambda v: v if _SIZE.fullmatch(v) else None,
                "a size such as 128MB, 512MB or 2GB (default 128MB)",
                "128MB",
            ),
            docker_volumes=parse(
                "ENGINE_DOCKER_VOLUMES",
                lambda v: {"true": True, "false": False}.get(v.lower()),
                "true or false (default false)",
                False,
            ),
            secrets_backend=parse(
                "ENGINE_SECRETS_BACKEND",
                lambda v: v if re.fullmatch(r"[A-Za-z0-9_.-]+(:[A-Za-z0-9_.]+)?", v) else None,
                "env, dir, the name of an engine.secrets entry point or module:factory (default env)",
                "env",
            ),
            secrets_dir=Path(sdir).expanduser() if (sdir := text("ENGINE_SECRETS_DIR")) else None,
        )


def _int_within(low: int, high: int | None) -> Callable[[str], int | None]:
    def convert(value: str) -> int | None:
        if not value.isdigit():
            return None
        number = int(value)
        return number if number >= low and (high is None or number <= high) else None

    return convert


def _float_within(low: float, high: float) -> Callable[[str], float | None]:
    def convert(value: str) -> float | None:
        try:
            number = float(value)
        except ValueError:
            return None
        return number if low <= number <= high else None

    return convert


_cache: tuple[tuple[tuple[str, str], ...], Settings] | None = None


def settings() -> Settings:
    """The settings of the current environment.

    Parsed again only when an ``ENGINE_*`` variable changed since the last call: tests set them with
    monkeypatch between two calls, and a process that never changes them parses them once.
    """
    global _cache
    key = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(PREFIX)))
    if _cache is None or _cache[0] != key:
        _cache = (key, Settings.from_env(dict(key)))
    return _cache[1]


def data_home() -> Path:
    """ENGINE_HOME, else the per-user data directory."""
    home = settings().home
    if home:
        return home
    import platformdirs

    return Path(platformdirs.user_data_dir("engine", appauthor=False))
