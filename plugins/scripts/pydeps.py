"""Python ``dependencies`` installed into virtual environments cached by their requirement set.

A venv is keyed by the SHA-256 of the sorted, de-duplicated requirements and the interpreter (the
engine's own: its path and full version; or the ``pythonVersion`` asked for). It lives under
``$ENGINE_HOME/cache/python`` (else the per-user cache directory) and is shared by every task and
every worker process of the machine:

- a published venv is used without any lock: ``<key>`` is a symlink to a fully built directory;
- a builder takes ``<key>.lock`` (``flock``: the kernel releases it when a worker dies), checks
  again, builds into ``<key>.build-<random>``, writes ``.complete`` and only then publishes it by
  renaming a new symlink over ``<key>`` (atomic). The directory itself never moves, because a venv
  holds its own path (console scripts, ``activate``);
- what a crashed builder left (a build directory no symlink points to) is never used, and is
  removed by the next builder of that key;
- at most ``MAX_VENVS`` are kept: publishing one more removes the least recently used ones (each use
  touches ``.complete``) that nobody used for ``EVICT_IDLE_S`` and nobody is building.

The installer is ``uv`` (the PyPI wheel's binary) when present, else pip: installing
``tabulate==0.9.0`` into a new venv took 0.86 s with uv and 2.1 s with pip on the development
machine (``requests`` and ``pyyaml``: 0.6 s and 9.1 s; see the README). Its output goes to the
task's log; a failed install fails the task with the installer's own message.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import anyio
import platformdirs

from engine.core.errors import TaskFailed
from engine.settings import settings
from plugins.api import RunContext
from plugins.scripts.common import inherited_env
from plugins.scripts.process import run_process

__all__ = ["Environment", "cache_root", "find_uv", "prepare"]

MAX_REQUIREMENTS = 200  # packages of one task
# Venvs kept: beyond it the least recently used are removed (each flow may ask for its own set, and the
# disk is not the flow author's to fill), unless used within EVICT_IDLE_S (a running task may use it).
MAX_VENVS = 32
EVICT_IDLE_S = 600.0
MAX_REQUIREMENT_LENGTH = 1000
COMPLETE = ".complete"
_LOCK_POLL_S = 0.1
_ERROR_LINES = 12  # the installer's last lines quoted in the task's error
_VERSION = re.compile(r"\d+(\.\d+){0,2}")


@dataclass(frozen=True)
class Environment:
    """A ready virtual environment."""

    path: Path

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def env(self) -> dict[str, str]:
        """What a script needs to run in it (``$VIRTUAL_ENV`` picks its python, PATH its tools)."""
        path = os.environ.get("PATH", "")
        return {
            "VIRTUAL_ENV": str(self.path),
            "PATH": str(self.path / "bin") + (os.pathsep + path if path else ""),
        }


def cache_root() -> Path:
    home = settings().home
    if home is not None:
        return home / "cache" / "python"
    return Path(platformdirs.user_cache_dir("engine", appauthor=False)) / "python"


def find_uv() -> str | None:
    """The uv binary: the PyPI wheel's (a dependency of the engine), else one on PATH."""
    try:
        from uv import find_uv_bin
    except ImportError:
        return shutil.which("uv")
    try:
        return str(find_uv_bin())
    except FileNotFoundError:
        return shutil.which("uv")


def _requirements(packages: Sequence[str]) -> tuple[str, ...]:
    if len(packages) > MAX_REQUIREMENTS:
        raise TaskFailed(f"dependencies: {len(packages)} packages, over the limit of {MAX_REQUIREMENTS}")
    cleaned = []
    for item in packages:
        text = str(item).strip()
        if len(text) > MAX_REQUIREMENT_LENGTH or "\n" in text:
            raise TaskFailed(f"dependencies: {text[:80]!r}... is not one requirement", retryable=False)
        if text.startswith("-"):
            # an option (--index-url, -r file, -e path) would change where code comes from
            raise TaskFailed(
                f"dependencies: {text!r} is an installer option, not a requirement — "
                "write requirements such as 'tabulate==0.9.0'",
                retryable=False,
            )
        if text:
            cleaned.append(text)
    return tuple(sorted(set(cleaned)))


def _interpreter_id(python: str | None) -> str:
    if python is None:
        return f"{os.path.realpath(sys.executable)} {sys.version}"
    return os.path.realpath(python) if os.sep in python else f"python{python}"


def cache_key(packages: Sequence[str], python_version: str | None) -> str:
    text = json.dumps([list(packages), _interpreter_id(python_version)])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class _Installer:
    """Creates a venv and installs into it, logging every line to the task."""

    def __init__(self, ctx: RunContext, manager: str | None) -> None:
        self.ctx = ctx
        uv = find_uv()
        wanted = (manager or "").upper()
        if wanted == "UV" and uv is None:
            raise TaskFailed(
                "packageManager UV: the uv binary is not installed on this worker — "
                "pip install uv, or use packageManager: PIP",
                retryable=False,
            )
        self.uv = None if wanted == "PIP" else uv
        self.name = "uv" if self.uv else "pip"
        self.tail: list[str] = []

    def _env(self, cache: Path) -> dict[str, str]:
        # The operator's installer settings (index, certificates) go to the installer, not the script.
        env = inherited_env()
        env.update({k: v for k, v in os.environ.items() if k.startswith(("PIP_", "UV_"))})
        env.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        env.setdefault("PIP_NO_INPUT", "1")
        env.setdefault("PIP_ROOT_USER_ACTION", "ignore")
        env.setdefault("UV_CACHE_DIR", str(cache / "uv-cache"))
        env.setdefault("UV_NO_PROGRESS", "1")
        return env

    def _line(self, line: str) -> None:
        if line.strip():
            self.tail = [*self.tail[-(_ERROR_LINES - 1) :], line.rstrip()]
        self.ctx.log("INFO", line)

    async def _run(self, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.tail = []
        try:
            code = await run_process(argv, cwd=cwd, env=env, on_stdout=self._line, on_stderr=self._line)
        except (FileNotFoundError, PermissionError) as exc:
            raise TaskFailed(f"cannot start {argv[0]!r}: {exc}", retryable=False) from None
        if code != 0:
            message = "\n".join(self.tail) or f"exit code {code}"
            # retryable: an index or a network down now may answer on the task's next attempt
            raise TaskFailed(f"installing dependencies with {self.name} failed: {message}")

    def _base_python(self, python_version: str | None) -> str:
        if python_version is None:
            return sys.executable
        if os.sep in python_version:
            return python_version
        found = shutil.which(f"python{python_version}")
        if found is None:
            raise TaskFailed(
                f"pythonVersion {python_version}: no python{python_version} on the worker's PATH "
                "(pip cannot fetch an interpreter; with uv installed, uv downloads it)",
                retryable=False,
            )
        return found

    async def build(
        self, target: Path, packages: Sequence[str], python_version: str | None, cache: Path
    ) -> None:
        env = self._env(cache)
        self.ctx.log(
            "INFO",
            f"creating a Python environment with {self.name}"
            + (f" (Python {python_version})" if python_version else "")
            + (": " + " ".join(packages) if packages else ""),
        )
        python = target / "bin" / "python"
        if self.uv is not None:
            interpreter = python_version or sys.executable
            await self._run([self.uv, "venv", "--python", interpreter, str(target)], target.parent, env)
            if packages:
                install = [self.uv, "pip", "install", "--python", str(python), *packages]
                await self._run(install, target.parent, env)
            return
        base = self._base_python(python_version)
        if base == sys.executable:
            # No pip inside the venv: the engine's pip installs into it (--python), seconds faster.
            await self._run([base, "-m", "venv", "--without-pip", str(target)], target.parent, env)
            if packages:
                install = [base, "-m", "pip", "--python", str(python), "install", *packages]
                await self._run(install, target.parent, env)
            return
        await self._run([base, "-m", "venv", str(target)], target.parent, env)
        if packages:
            await self._run([str(python), "-m", "pip", "install", *packages], target.parent, env)


@asynccontextmanager
async def _locked(path: Path, ctx: RunContext, what: str) -> AsyncIterator[None]:
    """An exclusive ``flock`` on ``path``, polled so that a cancelled task stops waiting."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        waiting = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waiting:
                    ctx.log("INFO", f"waiting for another task building the same environment ({what})")
                    waiting = True
                await anyio.sleep(_LOCK_POLL_S)
        yield
    finally:
        os.close(fd)  # releases the lock


def _published(link: Path) -> Path | None:
    """The built directory ``link`` points to, when it is complete."""
    try:
        target = link.parent / os.readlink(link)
    except OSError:
        return None
    return target if (target / COMPLETE).is_file() and (target / "bin" / "python").exists() else None


def _touch(venv: Path) -> None:
    with suppress(OSError):
        os.utime(venv / COMPLETE)


def _evict(root: Path, keep: str, now: float) -> list[str]:
    """Remove the least recently used venvs beyond MAX_VENVS; the keys removed."""
    published: list[tuple[float, str, Path]] = []
    for entry in root.iterdir():
        if entry.name == keep or not entry.is_symlink():
            continue
        target = _published(entry)
        if target is None:
            continue
        try:
            published.append(((target / COMPLETE).stat().st_mtime, entry.name, target))
        except OSError:
            continue
    published.sort()
    removed = []
    for used, key, target in published[: max(0, len(published) + 1 - MAX_VENVS)]:
        if now - used < EVICT_IDLE_S:
            break
        fd = os.open(root / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # being rebuilt: not idle
            (root / key).unlink(missing_ok=True)
            shutil.rmtree(target, ignore_errors=True)
            removed.append(key)
        finally:
            os.close(fd)  # the lock file stays: a waiter may hold it open
    return removed


def _remove_leftovers(root: Path, key: str, keep: Path | None) -> None:
    for stale in root.glob(f"{key}.build-*"):
        if keep is None or stale.name != keep.name:
            shutil.rmtree(stale, ignore_errors=True)


async def prepare(
    ctx: RunContext,
    packages: Sequence[str],
    *,
    python_version: str | None = None,
    manager: str | None = None,
    cached: bool = True,
) -> Environment:
    """A venv with ``packages`` (and ``python_version``, a version such as 3.12 or an interpreter's
    path): the cached one, or one built now.

    ``cached`` False (Kestra's ``dependencyCacheEnabled: false``) builds a private venv in the
    task's working directory, removed with it.
    """
    requirements = _requirements(packages)
    if python_version is not None and os.sep not in python_version and not _VERSION.fullmatch(python_version):
        raise TaskFailed(
            f"pythonVersion {python_version!r}: expected a version such as 3.12", retryable=False
        )
    what = " ".join(requirements) or f"Python {python_version}"
    if not cached:
        target = ctx.workdir / ".venv"
        await _Installer(ctx, manager).build(target, requirements, python_version, cache_root())
        return Environment(target)
    root = cache_root()
    key = cache_key(requirements, python_version)
    link = root / key
    ready = _published(link)
    if ready is not None:
        _touch(ready)
        ctx.log("DEBUG", f"Python environment {key} from the cache ({what})")
        return Environment(ready)
    try:
        root.mkdir(parents=True, exist_ok=True)
        os.close(os.open(root / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o600))
    except OSError as exc:
        raise TaskFailed(
            f"the Python environment cache {root} is not usable: {exc} — give the worker a writable "
            "ENGINE_HOME"
        ) from None
    async with _locked(root / f"{key}.lock", ctx, what):
        ready = _published(link)
        if ready is not None:  # built by the task we waited for
            _touch(ready)
            ctx.log("INFO", f"Python environment {key} built by another task ({what})")
            return Environment(ready)
        _remove_leftovers(root, key, None)
        build = root / f"{key}.build-{uuid.uuid4().hex[:12]}"
        installer = _Installer(ctx, manager)
        try:
            await installer.build(build, requirements, python_version, root)
            (build / COMPLETE).write_text(
                json.dumps({"requirements": list(requirements), "python": _interpreter_id(python_version)}),
                encoding="utf-8",
            )
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(shutil.rmtree, build, True)
            raise
        staged = root / f".{key}.{uuid.uuid4().hex[:12]}.link"
        os.symlink(build.name, staged)
        os.replace(staged, link)
        ctx.log("INFO", f"Python environment {key} ready and cached ({what})")
    evicted = await anyio.to_thread.run_sync(_evict, root, key, time.time())
    if evicted:
        ctx.log("DEBUG", f"removed {len(evicted)} Python environment(s) unused for the longest time")
    return Environment(build)
