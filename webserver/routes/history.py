"""``/api/v1/executions/{id}/...``: an execution's raw history, its state at a point, live changes, files."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get
from litestar.params import FromPath, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from engine.core import events as ev
from engine.core.shape import execution_json
from eventstore.indexer import TERMINAL
from eventstore.reader import read_execution
from eventstore.storage import InternalStorage, StorageError, execution_of
from webserver.http import ApiError, bad, deps, download, not_found
from webserver.query import execution_row


def masked_events(steps: list[tuple[int, list[ev.Event]]]) -> list[dict[str, Any]]:
    secrets: set[str] = set()
    out = []
    for seq, events in steps:
        items = []
        for event in events:
            item = msgspec.to_builtins(event)
            if isinstance(event, ev.ExecutionCreated):
                secrets = set(event.secret_inputs)
                item["inputs"] = {k: ("******" if k in secrets else v) for k, v in event.inputs.items()}
            items.append(item)
        out.append({"seq": seq, "events": items})
    return out


@get("/executions/{execution_id:str}/events", tags=["Executions"])
async def execution_events(
    request: Request[Any, Any, Any],
    execution_id: FromPath[str],
    up_to: Annotated[
        int | None, QueryParameter(name="upTo", ge=1, description="Last stream sequence")
    ] = None,
) -> list[dict[str, Any]]:
    """The raw history of an execution from the log: one item per fold step, with its sequence."""
    d = deps(request)
    await execution_row(d, execution_id)
    steps = await d.store.read(execution_id)
    if up_to is not None:
        steps = [(s, e) for s, e in steps if s <= up_to]
    return masked_events(steps)


@get("/executions/{execution_id:str}/at/{seq:int}", tags=["Executions"])
async def execution_at(
    request: Request[Any, Any, Any], execution_id: FromPath[str], seq: FromPath[int]
) -> dict[str, Any]:
    """The execution as it was after the step with stream sequence ``seq`` (folded from the log)."""
    d = deps(request)
    await execution_row(d, execution_id)
    state = (await read_execution(d.store, execution_id, upto=seq, leader=False)).state
    if state is None:
        raise not_found(f"execution {execution_id} did not exist at sequence {seq}")
    return execution_json(state)


@get("/executions/{execution_id:str}/follow", tags=["Executions"])
async def follow_execution(request: Request[Any, Any, Any], execution_id: FromPath[str]) -> ServerSentEvent:
    """Server-Sent Events: the execution each time it changes, until it ends."""
    d = deps(request)
    await execution_row(d, execution_id)

    async def gen() -> AsyncGenerator[ServerSentEventMessage, None]:
        last = -1
        while True:
            rows = await d.indexer.aquery(
                "SELECT doc, state, seq FROM executions WHERE id = ?", [execution_id]
            )
            if not rows:
                try:  # not indexed yet (just created): its first document comes from the log
                    doc, state, _, _ = await execution_row(d, execution_id)
                except ApiError:
                    return  # deleted
                rows = [(doc, state, 0)]
            doc, state, seq = rows[0]
            if seq != last:
                last = seq
                yield ServerSentEventMessage(data=doc, event="execution", id=str(seq))
            if state in TERMINAL:
                return
            await d.indexer.wait_change(1.0)

    return ServerSentEvent(gen())


@get("/executions/{execution_id:str}/files", tags=["Executions"])
async def execution_files(request: Request[Any, Any, Any], execution_id: FromPath[str]) -> list[str]:
    """The internal-storage URIs (kestra://...) of an execution's files."""
    d = deps(request)
    await execution_row(d, execution_id)
    return list(await InternalStorage(d.store).execution_files(execution_id))


FileUri = Annotated[str, QueryParameter(description="The kestra:// URI of one of the execution's files")]


@get("/executions/{execution_id:str}/file", tags=["Executions"])
async def execution_file(
    request: Request[Any, Any, Any], execution_id: FromPath[str], path: FileUri
) -> Response[bytes]:
    """Download one file of an execution."""
    d = deps(request)
    await execution_row(d, execution_id)
    try:
        owner = execution_of(path)
    except StorageError as exc:
        raise bad(str(exc)) from None
    if owner != execution_id:
        raise not_found(f"{path} is not a file of execution {execution_id}")
    return await download(InternalStorage(d.store), path)


ROUTES = [
    execution_events,
    execution_at,
    follow_execution,
    execution_files,
    execution_file,
]
