"""What Kestra gives a script besides its commands: the ``kestra`` module, the execution context, the
variables of its working directory, and the files its ``kestra://`` URIs name.

- ``kestra``: ``plugins/scripts/pythonlib`` goes on a Python script's ``PYTHONPATH`` (after the flow's
  own), and the older ``io.kestra.core.tasks.scripts.Python`` also gets ``kestra.py`` beside its script,
  as Kestra wrote it there.
- The execution context (``from kestra import context``): the run variables (but ``envs``) as JSON in
  a private file named by ``KESTRA_EXECUTION_CONTEXT_FILE``, outside the working directory (so no
  ``outputFiles`` glob uploads it); with ``executionContext: true`` also ``.kestra-execution-context.json``
  in the working directory, as Kestra writes it.
- ``{{ workingDir }}`` and ``{{ outputDir }}`` while the task's properties are rendered; for the older
  tasks ``{{ outputFiles.NAME }}`` (``NAME`` in the working directory, uploaded after the run) and
  ``{{ outputDirs.NAME }}`` (a directory made before the run, each file uploaded).
- Every ``kestra://`` URI in the rendered commands (and a script's text) is downloaded into the working
  directory and replaced by that file's absolute path (Kestra's ``ScriptService.replaceInternalStorage``).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from engine.core.errors import TaskFailed
from plugins.api import RunContext
from plugins.scripts.pythonlib import DIRECTORY as PYTHONLIB
from plugins.scripts.pythonlib import KESTRA_MODULE

CONTEXT_FILE = ".kestra-execution-context.json"
CONTEXT_ENV = "KESTRA_EXECUTION_CONTEXT_FILE"
OUTPUT_DIR_NAME = "_output"
# Kestra's pattern: the URI ends at the first character that cannot be in a storage path.
_INTERNAL_URI = re.compile(r"kestra://[-a-zA-Z0-9%._+~#=/]*")
MAX_URIS = 100  # distinct kestra:// URIs one task may have downloaded


def pythonpath(current: str | None = None) -> str:
    """``PYTHONPATH`` with the ``kestra`` module's directory last (the flow's own paths win)."""
    return os.pathsep.join(p for p in (current, str(PYTHONLIB)) if p)


def write_kestra_module(workdir: Path) -> None:
    """``kestra.py`` beside the script (the older Python task's runtime)."""
    (workdir / "kestra.py").write_bytes(KESTRA_MODULE.read_bytes())


def work_variables(ctx: RunContext, props: Mapping[str, Any], legacy: bool = False) -> dict[str, Any]:
    """The variables a script task's properties may use besides the run's."""
    workdir = ctx.workdir
    out: dict[str, Any] = {"workingDir": str(workdir), "outputDir": str(workdir / OUTPUT_DIR_NAME)}
    if legacy:
        names = [*(props.get("outputFiles") or []), *(props.get("outputsFiles") or [])]
        out["outputFiles"] = {str(n): str(workdir / str(n)) for n in names if isinstance(n, str)}
        dirs = [d for d in props.get("outputDirs") or [] if isinstance(d, str)]
        out["outputDirs"] = {d: str(workdir / d) for d in dirs}
        out["temp"] = {str(n): str(workdir / str(n)) for n in props.get("files") or [] if isinstance(n, str)}
    return out


def context_data(ctx: RunContext) -> dict[str, Any]:
    return {k: v for k, v in ctx.variables.items() if k != "envs" and not k.startswith("__")}


@contextmanager
def execution_context(ctx: RunContext, in_workdir: bool, private: bool) -> Iterator[dict[str, str]]:
    """Write the execution context for the script (in its working directory, in a private file);
    yields the environment that names the private file."""
    if not (in_workdir or private):
        yield {}
        return
    text = json.dumps(context_data(ctx), default=str)
    if in_workdir:
        (ctx.workdir / CONTEXT_FILE).write_text(text, encoding="utf-8")
    if not private:
        yield {}
        return
    with tempfile.TemporaryDirectory(prefix="engine-ctx-") as directory:
        private_dir = directory
        path = Path(private_dir) / CONTEXT_FILE
        path.write_text(text, encoding="utf-8")
        path.chmod(0o600)
        yield {CONTEXT_ENV: str(path)}


class Localizer:
    """Downloads the ``kestra://`` files a task's commands name, each once, into its working directory."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.local: dict[str, str] = {}

    async def text(self, text: str) -> str:
        uris = list(dict.fromkeys(_INTERNAL_URI.findall(text)))
        for uri in uris:
            if uri in self.local:
                continue
            if len(self.local) >= MAX_URIS:
                raise TaskFailed(
                    f"the commands name more than {MAX_URIS} kestra:// files: pass them with inputFiles",
                    retryable=False,
                )
            handle, name = tempfile.mkstemp(suffix=".tmp", dir=self.ctx.workdir)
            os.close(handle)
            await self.ctx.storage.download(uri, Path(name))
            self.local[uri] = name
        if not uris:
            return text
        return _INTERNAL_URI.sub(lambda m: self.local[m.group(0)], text)

    async def lines(self, lines: Sequence[str]) -> list[str]:
        return [await self.text(line) for line in lines]
