"""Kestra's bulk actions by ids: kill, restart and delete executions, delete KV keys.

Every id is checked first; if one cannot take the action, nothing is done and the answer is a 400
listing each refused id with the reason (Kestra's all-or-nothing validation), else ``{count}``.
"""

from __future__ import annotations

import contextlib
import json
from typing import Annotated, Any

from litestar import Request, delete, post
from litestar.params import FromPath, QueryParameter

from engine.clock import utcnow
from engine.core.errors import EngineError, FlowNotFound
from engine.core.history import restart_events
from eventstore.indexer import TERMINAL, delete_execution
from eventstore.store import JetStreamKV
from webserver.http import ApiError, Deps, bad, check_kv, deps, json_body, read_bytes, with_body
from webserver.query import execution_row, request_kill

MAX_IDS = 1000
IDS = json_body("A JSON list of execution ids", required=True)


async def id_list(request: Request[Any, Any, Any], what: str = "execution ids") -> list[str]:
    body = await read_bytes(request)
    try:
        ids = json.loads(body) if body.strip() else None
    except ValueError:
        ids = None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise bad(f'the body must be a JSON list of {what}, e.g. ["3FGn1jkN8wCSdoR4yW7L1o"]')
    if len(ids) > MAX_IDS:
        raise bad(f"{len(ids)} ids: at most {MAX_IDS} a request")
    return list(dict.fromkeys(ids))


async def states(d: Deps, ids: list[str]) -> dict[str, str]:
    """Each execution's state as ``GET /executions/{id}`` answers it: the projection, or the log where
    the projection has it still open or not at all (a client that saw it end must not be refused)."""
    rows = await d.indexer.aquery("SELECT id, state FROM executions WHERE list_contains(?, id)", [ids])
    found: dict[str, str] = {r[0]: r[1] for r in rows}
    for eid in ids:
        if found.get(eid) not in TERMINAL:
            with contextlib.suppress(ApiError):  # unknown: judged as unknown by the caller
                found[eid] = (await execution_row(d, eid))[1]
    return found


def refuse(problems: list[tuple[str, str]]) -> None:
    if problems:
        raise bad(
            f"{len(problems)} execution(s) refused, nothing done: "
            + "; ".join(f"{i}: {why}" for i, why in problems[:5]),
            [{"id": i, "message": why} for i, why in problems],
        )


@delete("/executions/kill/by-ids", **with_body(IDS, "Executions"))
async def kill_by_ids(request: Request[Any, Any, Any]) -> dict[str, int]:
    """Kill every listed running execution: ``{count}``."""
    d = deps(request)
    ids = await id_list(request)
    known = await states(d, ids)
    refuse(
        [(i, "not found") for i in ids if i not in known]
        + [(i, f"already ended {known[i]}") for i in ids if known.get(i) in TERMINAL]
    )
    for i in ids:
        await request_kill(d, i)
    return {"count": len(ids)}


@post("/executions/restart/by-ids", **with_body(IDS, "Executions"))
async def restart_by_ids(request: Request[Any, Any, Any]) -> dict[str, int]:
    """Restart every listed ended execution (its failed taskruns run again): ``{count}``."""
    d = deps(request)
    ids = await id_list(request)
    known = await states(d, ids)
    problems = [(i, "not found") for i in ids if i not in known]
    problems += [(i, f"is {known[i]}: not ended") for i in ids if i in known and known[i] not in TERMINAL]
    refuse(problems)
    checked = []
    for i in ids:  # what cannot restart is refused before any restarts
        try:
            state = await d.runtime.get_execution(i)
            flow = await d.runtime.flows.get(state.namespace, state.flow_id, state.flow_revision)
            restart_events(state, flow, utcnow())
        except (EngineError, FlowNotFound) as exc:
            problems.append((i, str(exc)))
        checked.append(i)
    refuse(problems)
    for i in checked:
        await d.runtime.restart(i)
    return {"count": len(checked)}


@delete("/executions/by-ids", **with_body(IDS, "Executions"))
async def delete_by_ids(
    request: Request[Any, Any, Any],
    delete_logs: Annotated[bool, QueryParameter(name="deleteLogs")] = True,
) -> dict[str, int]:
    """Delete every listed ended execution from the projection: ``{count}``."""
    d = deps(request)
    ids = await id_list(request)
    known = await states(d, ids)
    refuse(
        [(i, "not found") for i in ids if i not in known]
        + [(i, f"is {known[i]}: kill it first") for i in ids if i in known and known[i] not in TERMINAL]
    )
    for i in ids:
        await delete_execution(d.store, i, delete_logs)
    if ids:
        await d.indexer.wait_for("SELECT 1 FROM deleted_executions WHERE id = ?", [ids[-1]], 5)
    return {"count": len(ids)}


KEYS = json_body('The keys to delete: {"keys": ["a", "b"]}', required=True)


@delete("/namespaces/{namespace:str}/kv", **with_body(KEYS, "KV"))
async def delete_keys(request: Request[Any, Any, Any], namespace: FromPath[str]) -> dict[str, list[str]]:
    """Delete keys of a namespace: ``{keys}``, the ones that existed (Kestra's bulk delete)."""
    check_kv(namespace)
    body = await read_bytes(request)
    try:
        data = json.loads(body) if body.strip() else None
    except ValueError:
        data = None
    keys = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys) or len(keys) > MAX_IDS:
        raise bad(f'the body must be {{"keys": [...]}}: a list of at most {MAX_IDS} keys')
    for key in keys:
        check_kv(namespace, key)
    store = JetStreamKV(deps(request).store)
    return {"keys": [k for k in keys if await store.delete(namespace, k)]}


ROUTES = [kill_by_ids, restart_by_ids, delete_by_ids, delete_keys]
