"""The runnable halves of ForEachItem: split the items file into batches, merge the subflows' outputs.

Kestra expands a ForEachItem task into three: ``<id>_split`` (here), ``<id>_items`` (one subflow
execution per batch, run by the executor) and ``<id>_merge`` (here). These types are internal:
flows never name them.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from engine.core.errors import TaskFailed
from plugins.api import RunContext, TaskResult, runnable
from plugins.core.storage import Split, run_split
from plugins.files import put_task_file

P = "io.kestra.plugin.core.flow.ForEachItem$"
SPLIT = P + "ForEachItemSplit"
MERGE = P + "ForEachItemMergeOutputs"


class ItemsSplit(msgspec.Struct, frozen=True):
    items: str
    batch: dict[str, Any] = msgspec.field(default_factory=dict)


async def run_items_split(props: ItemsSplit, ctx: RunContext) -> TaskResult:
    if not str(props.items).startswith("kestra://"):
        raise TaskFailed(
            f"Unable to split the items from {props.items}, this is not an internal storage URI!",
            retryable=False,
        )
    batch = props.batch or {}
    rows = batch.get("rows")
    size = batch.get("bytes")
    partitions = batch.get("partitions")
    if rows is None and size is None and partitions is None:
        rows = 1  # Kestra's default batch: one row
    split = Split(
        from_=props.items,
        rows=int(rows) if rows is not None else None,
        bytes=size,
        partitions=int(partitions) if partitions is not None else None,
        separator=str(batch.get("separator", "\n")),
    )
    result = await run_split(split, ctx)
    return TaskResult(outputs={"splits": result.outputs["uris"]})


class MergeOutputs(msgspec.Struct, frozen=True):
    executions: list[str] = msgspec.field(default_factory=list)


async def run_merge(props: MergeOutputs, ctx: RunContext) -> TaskResult:
    """One line per subflow execution (JSON object of its outputs), in batch order."""
    lines = []
    for execution_id in props.executions:
        state = await ctx.load_execution(execution_id)
        if state is not None and state.outputs:
            lines.append(json.dumps(state.outputs, separators=(",", ":")))
    if not lines:
        return TaskResult()
    uri = await put_task_file(ctx, ("\n".join(lines) + "\n").encode(), "outputs.ion")
    return TaskResult(outputs={"subflowOutputs": uri})


SPECS = [
    runnable(
        SPLIT, ItemsSplit, run_items_split, "ForEachItem: split the items file.", extra={"internal": True}
    ),
    runnable(MERGE, MergeOutputs, run_merge, "ForEachItem: merge subflow outputs.", extra={"internal": True}),
]
