"""What every script task shares: properties, working-dir setup, the ``::{...}::`` protocol.

A script runs in ``ctx.workdir`` through its task runner (``plugins.scripts.runners``: a local
process by default, a Docker container on request). The command line is Kestra's: ``interpreter``
followed by one argument holding ``set -e`` (when ``failFast``), ``beforeCommands`` and
``commands`` joined by newlines.
"""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec

from engine.core.errors import TaskFailed
from engine.core.metrics import MetricRefused
from eventstore.storage import unique_name
from plugins.api import FileStorage, RunContext, TaskResult
from plugins.files import find_files, put_task_file  # Java globs, as Kestra: ``*`` in one part, ``**`` across
from plugins.scripts.process import MAX_LINE
from plugins.scripts.runners import DockerOptions, Runner, RunnerProps, choose
from plugins.scripts.runtime import OUTPUT_DIR_NAME, Localizer, execution_context, pythonpath

__all__ = ["OUTPUT_DIR_NAME", "ScriptProps", "run_script"]
LOG_PIECE = 1 << 20  # characters of one log line: a longer text line is logged in pieces, each storable
_PROTOCOL = re.compile(r"^::(\{.*\})::$")
_LEVELS = {
    "TRACE": "TRACE",
    "DEBUG": "DEBUG",
    "INFO": "INFO",
    "WARN": "WARN",
    "WARNING": "WARN",
    "ERROR": "ERROR",
}
DEFAULT_IMAGE = "ubuntu"  # Kestra's shell default image (a Docker runner without containerImage)


class ScriptProps(msgspec.Struct, frozen=True, kw_only=True):
    """Properties common to every script task (Kestra's AbstractExecScript)."""

    beforeCommands: list[str] | None = None
    env: dict[str, Any] | None = None
    interpreter: list[str] = msgspec.field(default_factory=lambda: ["/bin/sh", "-c"])
    failFast: bool = True
    warningOnStdErr: bool = True
    inputFiles: dict[str, Any] | str | None = None
    outputFiles: list[str] | None = None
    namespaceFiles: dict[str, Any] | None = None
    containerImage: str | None = None
    taskRunner: RunnerProps | None = None
    docker: DockerOptions | None = None
    runner: str | None = None
    targetOS: str | None = None
    outputDirectory: bool | None = None
    executionContext: bool = False  # also write .kestra-execution-context.json in the working directory


class Outcome:
    """Collects what a run prints: ``::{...}::`` outputs into ``vars``, line counts, last stderr line."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.vars: dict[str, Any] = {}
        self.stdout_lines = 0
        self.stderr_lines = 0
        self.last_stderr = ""
        self.error: str | None = None  # why the run must fail even if the process succeeds

    def _protocol(self, line: str) -> bool:
        m = _PROTOCOL.match(line)
        if m is None:
            return False
        try:
            command = json.loads(m.group(1))
        except ValueError as exc:
            self.ctx.log("WARN", f"Invalid outputs '{exc}'")
            return True
        if not isinstance(command, dict):
            self.ctx.log("WARN", f"Invalid outputs '{line}'")
            return True
        outputs = command.get("outputs")
        if isinstance(outputs, dict):
            self.vars.update(outputs)
        elif outputs is not None:
            self.ctx.log("WARN", f"Invalid outputs '{line}': `outputs` must be a map")
        metrics = command.get("metrics")
        if metrics is not None:
            self._metrics(metrics, line)
        for entry in command.get("logs") or ():
            if isinstance(entry, dict) and "message" in entry:
                level = _LEVELS.get(str(entry.get("level", "INFO")).upper(), "INFO")
                self.ctx.log(level, str(entry["message"]))
            else:
                self.ctx.log("WARN", f"Invalid log '{entry!r}'")
        return True

    def _metrics(self, metrics: Any, line: str) -> None:
        """Kestra's ``{"name", "type": "counter"|"timer", "value", "tags"}`` entries (a timer's value in
        seconds, as Jackson reads a Duration); what is not a metric is a warning, never a failure."""
        if not isinstance(metrics, list):
            self.ctx.log("WARN", f"Invalid metrics '{line:.200}': `metrics` must be a list")
            return
        for entry in metrics:
            if not isinstance(entry, dict):
                self.ctx.log("WARN", f"Invalid metric '{entry!r:.200}'")
                continue
            kind: Any = entry.get("type")
            name: Any = entry.get("name")
            value: Any = entry.get("value")
            tags: Any = entry.get("tags")
            try:
                self.ctx.metric(kind, name, value, tags)
            except MetricRefused as exc:
                self.ctx.log("WARN", f"Invalid metric: {exc}")

    def on_stdout(self, line: str) -> None:
        self.stdout_lines += 1
        if not self._protocol(line):
            self._text("INFO", line)

    def _text(self, level: str, line: str) -> None:
        for start in range(0, max(len(line), 1), LOG_PIECE):
            self.ctx.log(level, line[start : start + LOG_PIECE])

    def on_long_line(self, head: str, size: int) -> None:
        """A line over MAX_LINE: only its head was kept. A protocol line cut would lose outputs that
        later tasks read, so the task fails; a text line is logged cut, and says so."""
        if head.startswith("::{"):
            self.error = (
                f"an output line `::{{...}}::` of {size} bytes is over the limit of {MAX_LINE} bytes "
                "(write large values to a file and list it in `outputFiles`)"
            )
            self.ctx.log("ERROR", self.error)
            return
        self._text("INFO", head)
        self.ctx.log("WARN", f"the line above was {size} bytes, cut at the limit of {MAX_LINE} bytes")

    def on_stderr(self, line: str) -> None:
        self.stderr_lines += 1
        if not self._protocol(line):
            if line.strip():
                self.last_stderr = line
            self._text("ERROR", line)


def _inside(workdir: Path, name: str) -> Path:
    target = (workdir / name).resolve()
    root = workdir.resolve()
    if target != root and root not in target.parents:
        raise TaskFailed(f"inputFiles: {name!r} is outside the working directory", retryable=False)
    return target


async def write_input_files(
    workdir: Path, files: Mapping[str, Any] | str | None, storage: FileStorage | None = None
) -> list[str]:
    """Write ``inputFiles`` (name → content, or that map as a JSON string) into ``workdir``.

    A value that is a ``kestra://`` URI is downloaded from internal storage (Kestra's FilesService).
    """
    if files is None:
        return []
    if isinstance(files, str):
        try:
            files = json.loads(files)
        except ValueError as exc:
            raise TaskFailed(f"inputFiles: not a map nor a JSON object: {exc}", retryable=False) from None
        if not isinstance(files, dict):
            raise TaskFailed("inputFiles: expected a map of file name to content", retryable=False)
    written = []
    for name, content in files.items():
        target = _inside(workdir, str(name))
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str) and content.startswith("kestra://") and storage is not None:
            await storage.download(content.strip(), target)
            written.append(str(name))
            continue
        if isinstance(content, str):
            text = content
        elif content is None:
            text = ""
        else:
            text = json.dumps(content)
        target.write_text(text, encoding="utf-8")
        written.append(str(name))
    return written


def collect_output_files(workdir: Path, patterns: Sequence[str] | None) -> dict[str, str]:
    """``{relative name: absolute path}`` for files matching ``outputFiles`` globs, plus OUTPUT_DIR files."""
    root = workdir.resolve()
    found = {name: str(path) for name, path in find_files(root, patterns).items()}
    out_dir = root / OUTPUT_DIR_NAME
    if out_dir.is_dir():
        for path in sorted(out_dir.rglob("*")):
            if path.is_file():
                found.setdefault(path.relative_to(out_dir).as_posix(), str(path))
    return found


async def upload_output_files(ctx: RunContext, found: Mapping[str, str]) -> dict[str, str]:
    """Upload collected output files to the taskrun's internal storage: ``{name: kestra:// URI}``."""
    uris: dict[str, str] = {}
    for name, local in found.items():
        uris[name] = await put_task_file(ctx, Path(local), unique_name(local, Path(local).name))
    return uris


def runner_for(props: ScriptProps, ctx: RunContext, default_image: str = DEFAULT_IMAGE) -> Runner:
    """The task runner of this attempt (``plugins.scripts.runners.choose``)."""
    runner = choose(
        props.taskRunner,
        props.runner,
        props.docker,
        props.containerImage,
        default_image,
        (ctx.execution_id, ctx.taskrun_id, ctx.attempt),
    )
    if runner.local and props.containerImage is not None:
        ctx.log("DEBUG", f"containerImage {props.containerImage!r} unused: the Process runner runs no image")
    return runner


# What a script inherits of the worker's environment: what programs need to run (paths, locale,
# time zone, temporary files, proxies and certificates), nothing of the engine's (ENGINE_* holds API
# passwords and tokens, ENGINE_HOME the NATS credentials) and no SECRET_*. The flow gives the rest
# with `env`. Documented in the README.
INHERITED_ENV = frozenset(
    {
        "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TERM",
        "TMPDIR", "TEMP", "TMP", "SYSTEMROOT", "COMSPEC", "PATHEXT",
        "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
        "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE",
    }
)  # fmt: skip


def inherited_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k in INHERITED_ENV or k.startswith("LC_")}


def build_env(
    ctx: RunContext, props: ScriptProps, extra: Mapping[str, str] | None = None, *, local: bool = True
) -> dict[str, str]:
    """The allowed part of the worker's environment (a local process only: a container has its
    image's), WORKING_DIR/OUTPUT_DIR, ``extra`` and ``env``."""
    env = inherited_env() if local else {}
    env["WORKING_DIR"] = str(ctx.workdir)
    env["OUTPUT_DIR"] = str(ctx.workdir / OUTPUT_DIR_NAME)
    env.update(extra or {})
    for key, value in (props.env or {}).items():
        env[str(key)] = "" if value is None else value if isinstance(value, str) else json.dumps(value)
    return env


def exit_status(code: int) -> int:
    """Shell convention for a signal death (Python reports ``-N``, a shell ``128+N``)."""
    return 128 - code if code < 0 else code


async def run_script(
    props: ScriptProps,
    ctx: RunContext,
    commands: Sequence[str],
    *,
    extra_env: Mapping[str, str] | None = None,
    input_files: Mapping[str, Any] | None = None,
    interpreter: Sequence[str] | None = None,
    python: bool = False,
    output_dirs: Sequence[str] = (),
    runner: Runner | None = None,
) -> TaskResult:
    """Set up the working dir, run ``interpreter`` with the joined commands, build Kestra's ScriptOutput.

    Outputs: ``exitCode``, ``vars`` (from ``::{"outputs": ...}::`` lines) and ``outputFiles``.
    Non-zero exit raises TaskFailed carrying those outputs; stderr output with
    ``warningOnStdErr`` makes the state WARNING. ``runner``: the task runner (default: the one
    ``props`` select); ``extra_env`` goes to its process.
    """
    if runner is None:
        runner = runner_for(props, ctx)
    workdir = ctx.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / OUTPUT_DIR_NAME).mkdir(exist_ok=True)
    await write_input_files(workdir, props.inputFiles, ctx.storage)
    await write_input_files(workdir, input_files)

    for name in output_dirs:
        _inside(workdir, name).mkdir(parents=True, exist_ok=True)

    lines: list[str] = ["set -e"] if props.failFast else []
    lines += await Localizer(ctx).lines([*(props.beforeCommands or []), *commands])
    argv = [*(interpreter if interpreter is not None else props.interpreter), "\n".join(lines)]
    if not argv[0]:
        raise TaskFailed("interpreter: must not be empty", retryable=False)

    outcome = Outcome(ctx)
    env = build_env(ctx, props, extra_env, local=runner.local)
    if python and runner.local:  # the engine's kestra module is on this machine only
        env["PYTHONPATH"] = pythonpath(env.get("PYTHONPATH"))
    with execution_context(ctx, props.executionContext, private=python) as context_env:
        env.update(context_env)
        code = await runner.run(
            argv,
            workdir=workdir,
            env=env,
            on_stdout=outcome.on_stdout,
            on_stderr=outcome.on_stderr,
            on_long_line=outcome.on_long_line,
        )
    code = exit_status(code)
    if outcome.error is not None:
        raise TaskFailed(outcome.error, retryable=False)
    outputs: dict[str, Any] = {
        "exitCode": code,
        "vars": outcome.vars,
        "outputFiles": await upload_output_files(
            ctx,
            collect_output_files(workdir, [*(props.outputFiles or []), *(f"{d}/**" for d in output_dirs)]),
        ),
    }
    if code != 0:
        if code > 128 and code - 128 in (signal.SIGKILL, signal.SIGTERM):
            detail = f" (killed by signal {code - 128})"
        else:
            detail = f": {outcome.last_stderr}" if outcome.last_stderr else ""
        raise TaskFailed(f"Command failed with exit code {code}{detail}", outputs=outputs)
    ctx.log("DEBUG", f"Command succeeded with exit code {code}")
    if props.warningOnStdErr and outcome.stderr_lines > 0:
        return TaskResult(state="WARNING", outputs=outputs)
    return TaskResult(outputs=outputs)
