"""Files in executions: FILE inputs uploaded to internal storage, and the storage expression functions.

- ``upload_file_inputs``: a FILE input given as a local path becomes the ``kestra://`` URI of its
  uploaded copy (``kestra:///<ns>/<flow>/executions/<id>/inputs/<input>/<file name>``), as Kestra
  does; a value that already is a ``kestra://`` URI is kept.
- ``check_local_file_inputs``: the same inputs checked before anything starts (the CLI exits 2).
- ``storage_functions``: ``read(path)``, ``fileSize(path)``, ``fileExists(path)``, ``isFileEmpty(path)``
  and ``fileURI(path)``. Like Kestra, ``read``/``fileSize`` refuse a ``kestra://`` file of another
  execution, except the trigger's execution and the root of a subflow chain (``system.correlationId``);
  a path that is not a ``kestra://`` URI names a namespace file (``kestra:///<ns>/_files/<path>``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jinja2

from engine.core.errors import ExpressionError, InputError
from engine.core.model import Flow
from eventstore.storage import (
    StorageError,
    execution_of,
    execution_prefix,
    input_uri,
    is_uri,
    namespace_file_uri,
)


def _file_inputs(flow: Flow, inputs: Mapping[str, Any]) -> list[tuple[list[str], Any]]:
    """``(nested key path, value)`` of each FILE input that has a value."""
    out = []
    for inp in flow.inputs:
        if inp.type != "FILE":
            continue
        keys = inp.id.split(".")
        node: Any = inputs
        for key in keys:
            node = node.get(key) if isinstance(node, Mapping) else None
        if node is not None:
            out.append((keys, node))
    return out


def check_local_file_inputs(flow: Flow, inputs: Mapping[str, Any], base: Path | None = None) -> None:
    """InputError listing every FILE input given as a path that is not a readable local file."""
    problems = []
    for keys, value in _file_inputs(flow, inputs):
        if is_uri(value):
            continue
        path = Path(str(value)).expanduser()
        if base is not None and not path.is_absolute():
            path = base / path
        if not path.is_file():
            problems.append(f"  - {'.'.join(keys)}: no file {str(value)!r} — give the path of a local file")
    if problems:
        raise InputError(f"invalid inputs for flow {flow.namespace}.{flow.id}:\n" + "\n".join(problems))


async def upload_file_inputs(
    flow: Flow, inputs: dict[str, Any], execution_id: str, storage: Any
) -> dict[str, Any]:
    """``inputs`` with each local FILE input uploaded and replaced by its ``kestra://`` URI (a copy)."""
    files = [(keys, value) for keys, value in _file_inputs(flow, inputs) if not is_uri(value)]
    if not files:
        return inputs
    check_local_file_inputs(flow, inputs)
    result: dict[str, Any] = _copy(inputs)
    for keys, value in files:
        path = Path(str(value)).expanduser()
        uri = input_uri(flow.namespace, flow.id, execution_id, ".".join(keys), path.name)
        stored = await storage.put(uri, path)
        node = result
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = stored
    return result


def _copy(value: Any) -> Any:
    return {k: _copy(v) for k, v in value.items()} if isinstance(value, dict) else value


# ---- expression functions ----------------------------------------------------------------------


def _allowed_prefixes(context: Any) -> tuple[list[str], set[str]]:
    """Storage prefixes (and bare execution ids) whose files the rendering execution may read."""
    flow = context.get("flow") or {}
    execution = context.get("execution") or {}
    prefixes: list[str] = []
    ids: set[str] = set()
    if flow.get("namespace") and flow.get("id") and execution.get("id"):
        prefixes.append(execution_prefix(flow["namespace"], flow["id"], execution["id"]) + "/")
    trigger = context.get("trigger")
    if isinstance(trigger, Mapping) and trigger.get("executionId"):
        if trigger.get("namespace") and trigger.get("flowId"):
            prefixes.append(
                execution_prefix(trigger["namespace"], trigger["flowId"], trigger["executionId"]) + "/"
            )
        else:
            ids.add(str(trigger["executionId"]))
    labels = context.get("labels")
    if isinstance(labels, Mapping):
        root = labels.get("system.correlationId") or (labels.get("system") or {}).get("correlationId")
        if isinstance(root, str) and root:
            ids.add(root)
    return prefixes, ids


def _storage_uri(context: Any, function: str, path: Any, *, guard: bool) -> str:
    if path is None or not isinstance(path, str) or not path:
        raise ExpressionError(
            f"{function}(): expects an argument 'path' that is an internal storage URI (kestra:///...)"
            + (" or a namespace file path" if function in ("read", "fileExists") else "")
        )
    try:
        if not is_uri(path):
            if function not in ("read", "fileExists", "isFileEmpty", "fileSize"):
                raise ExpressionError(f"{function}(): unable to create the URI from the path {path!r}")
            namespace = (context.get("flow") or {}).get("namespace")
            if not namespace:
                raise ExpressionError(f"{function}(): no namespace here to read the namespace file {path!r}")
            return namespace_file_uri(namespace, path)
        from eventstore.storage import to_path

        target = to_path(path)
    except StorageError as exc:
        raise ExpressionError(f"{function}(): {exc}") from None
    if guard:
        prefixes, ids = _allowed_prefixes(context)
        if not any(target.startswith(p) for p in prefixes) and execution_of(path) not in ids:
            raise ExpressionError(
                f"{function}(): Unable to read the file '{path}' as it didn't belong to the current execution"
            )
    return path


def storage_functions(storage: Any) -> dict[str, Callable[..., Any]]:
    """The internal-storage expression functions over ``storage`` (``eventstore.storage`` API)."""

    async def _size(function: str, context: Any, path: Any, guard: bool = True) -> int:
        uri = _storage_uri(context, function, path, guard=guard)
        try:
            return int(await storage.size(uri))
        except StorageError as exc:
            raise ExpressionError(f"{function}(): {exc}") from None

    @jinja2.pass_context
    async def read(context: Any, path: Any = None) -> str:
        uri = _storage_uri(context, "read", path, guard=True)
        try:
            data = await storage.get(uri)
        except StorageError as exc:
            raise ExpressionError(f"read(): {exc}") from None
        return bytes(data).decode("utf-8", errors="replace")

    @jinja2.pass_context
    async def file_size(context: Any, path: Any = None) -> int:
        return await _size("fileSize", context, path)

    @jinja2.pass_context
    async def is_file_empty(context: Any, path: Any = None) -> bool:
        return await _size("isFileEmpty", context, path) == 0

    @jinja2.pass_context
    async def file_exists(context: Any, path: Any = None) -> bool:
        uri = _storage_uri(context, "fileExists", path, guard=True)
        try:
            return bool(await storage.exists(uri))
        except StorageError as exc:
            raise ExpressionError(f"fileExists(): {exc}") from None

    @jinja2.pass_context
    def file_uri(context: Any, path: Any = None) -> str:
        if not isinstance(path, str) or not path:
            raise ExpressionError("fileURI(): expects an argument 'path' that is a path to a namespace file")
        namespace = (context.get("flow") or {}).get("namespace")
        if not namespace:
            raise ExpressionError("fileURI(): no flow namespace here")
        try:
            return namespace_file_uri(namespace, path)
        except StorageError as exc:
            raise ExpressionError(f"fileURI(): {exc}") from None

    return {
        "read": read,
        "fileSize": file_size,
        "isFileEmpty": is_file_empty,
        "fileExists": file_exists,
        "fileURI": file_uri,
    }


async def upload_resume_inputs(
    flow: Flow, state: Any, inputs: dict[str, Any], storage: Any
) -> dict[str, Any]:
    """Resume inputs with each local file given for a FILE ``onResume`` input of a paused task uploaded."""
    from engine.core.tree import index_tasks

    tasks = index_tasks(flow)
    file_ids: set[str] = set()
    for tr in state.taskruns.values():
        task = tasks.get(tr.task_id)
        if tr.state != "PAUSED" or task is None:
            continue
        for declared in task.props.get("onResume") or ():
            if isinstance(declared, Mapping) and declared.get("type") == "FILE" and declared.get("id"):
                file_ids.add(str(declared["id"]))
    result = dict(inputs)
    for input_id in sorted(file_ids):
        value = result.get(input_id)
        if value is None or is_uri(value):
            continue
        path = Path(str(value)).expanduser()
        if not path.is_file():
            raise InputError(f"invalid resume input '{input_id}': no file {str(value)!r}")
        uri = input_uri(flow.namespace, flow.id, state.id, input_id, path.name)
        result[input_id] = await storage.put(uri, path)
    return result
