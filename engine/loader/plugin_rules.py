"""What Kestra's plugin classes require beyond the shape of a value: enum values, integers where a
plugin Struct must also take an expression (``int | str``), properties Kestra marks ``@NotNull``;
and the properties Kestra has that the engine does not build yet (refused, never ignored).

The plugins' Structs say what a value looks like; these rules say which values run: a value the
plugin would refuse at run time (``level: LOUD``) or silently misread (``concurrencyLimit: "lots"``
ran unlimited) is refused here, at validation, with the field, the value and the fix. Any rule
accepts an expression (rendered at run time) and matches case the way the plugin does at run time.
"""

from __future__ import annotations

import re
from typing import Any

from engine.loader.checker import Checker, is_expression, show
from engine.yamlpos import child_path

__all__ = ["LOG_LEVELS", "check_rules", "rendered_elsewhere", "schema_rules"]

_CORE = "io.kestra.plugin.core."
_SCRIPTS = "io.kestra.plugin.scripts."
_LEGACY_SCRIPTS = ("io.kestra.core.tasks.scripts.Bash", "io.kestra.core.tasks.scripts.Python")
_SCRIPT_TASKS = tuple(
    _SCRIPTS + name for name in ("shell.Commands", "shell.Script", "python.Script", "python.Commands")
)
LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR")

# type -> property -> (Kestra's values, other spellings the plugin accepts upper-cased)
_ENUMS: dict[str, dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    _CORE + "log.Log": {"level": (LOG_LEVELS, ("WARNING",))},
    _CORE + "log.Fetch": {"level": (LOG_LEVELS, ("WARNING",))},
    _CORE + "debug.Echo": {"level": (LOG_LEVELS, ("WARNING",))},
    _CORE + "kv.Set": {
        "kvType": (("STRING", "NUMBER", "BOOLEAN", "DATETIME", "DATE", "DURATION", "JSON"), ())
    },
    _CORE + "execution.Exit": {
        "state": (("SUCCESS", "WARNING", "KILLED", "FAILED", "CANCELED"), ("CANCELLED",))
    },
    # Kestra's deprecated runner switch; the taskRunner property is checked by its own Structs
    **{
        name: {
            "runner": (("PROCESS", "DOCKER"), ()),
            **({"packageManager": (("PIP", "UV"), ())} if ".python." in name else {}),
        }
        for name in _SCRIPT_TASKS
    },
}

# type -> the properties that take a whole number >= 0 (or an expression)
_COUNTS: dict[str, tuple[str, ...]] = {
    _CORE + "flow.ForEach": ("concurrencyLimit",),
    _CORE + "flow.Parallel": ("concurrent",),
    _CORE + "flow.EachParallel": ("concurrent",),
    _CORE + "flow.Dag": ("concurrent",),
}

# type -> the paths (property, sub-property...) that take an ISO-8601 duration (or an expression)
_DURATIONS: dict[str, tuple[tuple[str, ...], ...]] = {
    _CORE + "flow.WorkingDirectory": (("cache", "ttl"),),
}

# type -> (property, why Kestra needs it, an example)
_REQUIRED: dict[str, tuple[tuple[str, str], ...]] = {
    _CORE + "flow.Switch": (("value", 'value: "{{ inputs.choice }}" (the value the cases match)'),),
}


_DOCKER_FIX = (
    "here — the pre-0.10 script tasks run as local processes; for a container use "
    "io.kestra.plugin.scripts.shell.Commands with "
    "'taskRunner: {type: io.kestra.plugin.scripts.runner.docker.Docker}'"
)
# type -> (property, why and what to do instead): accepted by Kestra, not built here; refusing beats ignoring
_NAMESPACE_FILES_FIX = (
    "yet — namespace files are not copied into a working directory; pass them with "
    "'inputFiles: {NAME: \"{{ read('path/in/namespace') }}\"}' (or 'namespaceFiles: {enabled: false}')"
)
_NOT_SUPPORTED: dict[str, tuple[tuple[str, str], ...]] = {
    **{name: (("dockerOptions", _DOCKER_FIX),) for name in _LEGACY_SCRIPTS},
    **{
        name: (("namespaceFiles", _NAMESPACE_FILES_FIX),)
        for name in (*_SCRIPT_TASKS, _CORE + "flow.WorkingDirectory")
    },
}
# type -> (property, the pattern its value must match, an example)
_PATTERNS: dict[str, tuple[tuple[str, re.Pattern[str], str], ...]] = {
    _SCRIPTS + name: (("pythonVersion", re.compile(r"\d+(\.\d+){0,2}"), "'3.12'"),)
    for name in ("python.Script", "python.Commands")
}
# type -> (property, its property, why and what to do instead): the same, one level down
_NOT_SUPPORTED_WITHIN: dict[str, tuple[tuple[str, str, str], ...]] = {
    name: tuple(
        (where, "deviceRequests", "here — the Docker runner passes no device requests (GPUs) yet")
        for where in ("taskRunner", "docker")
    )
    for name in _SCRIPT_TASKS
}
_VENV_FIX = (
    "here — the engine never installs into an interpreter it runs on; remove 'virtualEnv: false' "
    "(requirements then go to a cached virtual environment)"
)
# type -> (property, the values refused (upper-cased), why and what to do instead)
_REFUSED_VALUES: dict[str, tuple[tuple[str, tuple[str, ...], str], ...]] = {
    name: (("runner", ("DOCKER",), _DOCKER_FIX),) for name in _LEGACY_SCRIPTS
}


# type -> the properties rendered in another execution: a Subflow's deprecated ``outputs`` are
# rendered by the child, so their ``inputs`` are the child's
_RENDERED_BY_CHILD: dict[str, tuple[str, ...]] = {_CORE + "flow.Subflow": ("outputs",)}


def rendered_elsewhere(task_type: str) -> tuple[str, ...]:
    """The properties of ``task_type`` whose templates another execution renders."""
    return _RENDERED_BY_CHILD.get(task_type, ())


def check_rules(
    ctx: Checker,
    task_type: str,
    props: dict[Any, Any],
    path: str,
    refused: dict[str, str] | None = None,
) -> None:
    """Issues into ``ctx`` for each rule of ``task_type`` that ``props`` breaks; ``refused`` (a plugin's
    ``extra["not_supported"]``: property -> why and what to do instead) adds the plugin's own."""
    for name, (values, aliases) in _ENUMS.get(task_type, {}).items():
        value = props.get(name)
        if value is None or is_expression(value):
            continue
        if not isinstance(value, str) or value.upper() not in values + aliases:
            ctx.add(
                child_path(path, name),
                f"invalid {name} {show(value)} — use one of {', '.join(values)}",
            )
    for name in _COUNTS.get(task_type, ()):
        value = props.get(name)
        if value is None or is_expression(value):
            continue
        number = value if isinstance(value, int) and not isinstance(value, bool) else None
        if isinstance(value, str) and value.strip().isdigit():
            number = int(value)
        if number is None or number < 0:
            ctx.add(
                child_path(path, name),
                f"expected a whole number >= 0 (0: no limit) or an expression, got {show(value)} — "
                f"write a number like 2, or an expression like '{{{{ inputs.limit }}}}'",
            )
    for keys in _DURATIONS.get(task_type, ()):
        found: Any = props
        for key in keys:
            found = found.get(key) if isinstance(found, dict) else None
        if found is not None and not is_expression(found):
            field = path
            for key in keys:
                field = child_path(field, key)
            ctx.duration(found, field)
    for name, example in _REQUIRED.get(task_type, ()):
        if props.get(name) is None:
            kind = task_type.rsplit(".", 1)[-1]
            ctx.add(path, f"missing required property '{name}' of {kind} — add '{example}'")
    for name, fix in _NOT_SUPPORTED.get(task_type, ()):
        value = props.get(name)
        if isinstance(value, dict) and value.get("enabled") is False:
            continue  # turned off: nothing asked of the engine
        if value not in (None, [], ""):
            ctx.add(child_path(path, name), f"'{name}' ({show(value)}) is not supported {fix}")
    for name, pattern, example in _PATTERNS.get(task_type, ()):
        value = props.get(name)
        if value is not None and not is_expression(value) and not pattern.fullmatch(str(value)):
            ctx.add(child_path(path, name), f"invalid {name} {show(value)} — write a version like {example}")
    for outer, name, fix in _NOT_SUPPORTED_WITHIN.get(task_type, ()):
        value = props.get(outer)
        if isinstance(value, dict) and value.get(name) not in (None, [], ""):
            ctx.add(child_path(child_path(path, outer), name), f"'{name}' is not supported {fix}")
    for name, values, fix in _REFUSED_VALUES.get(task_type, ()):
        value = props.get(name)
        if isinstance(value, str) and value.upper() in values:
            ctx.add(child_path(path, name), f"{name} {show(value)} is not supported {fix}")
    if task_type == _LEGACY_SCRIPTS[1] and props.get("virtualEnv") is False and props.get("requirements"):
        ctx.add(
            child_path(path, "virtualEnv"), f"virtualEnv false with requirements is not supported {_VENV_FIX}"
        )
    for name, why in (refused or {}).items():
        value = props.get(name)
        if value not in (None, [], "", False):
            ctx.add(child_path(path, name), f"'{name}' ({show(value)}) is not supported: {why}")


Names = tuple[str, ...]


def schema_rules(task_type: str) -> tuple[dict[str, list[str]], Names, Names, Names]:
    """The same rules for the editors' JSON Schema: (property -> the spellings accepted, the count
    properties, the required ones, the refused ones)."""
    enums = {
        name: [v for value in (*values, *aliases) for v in (value, value.lower())]
        for name, (values, aliases) in _ENUMS.get(task_type, {}).items()
    }
    required = tuple(name for name, _ in _REQUIRED.get(task_type, ()))
    refused = tuple(name for name, _ in _NOT_SUPPORTED.get(task_type, ()))
    return enums, _COUNTS.get(task_type, ()), required, refused
