"""A unit of work for a worker: one runnable taskrun, with everything needed to run it."""

from __future__ import annotations

from typing import Any

import msgspec

from engine.core.model import Task


class WorkItem(msgspec.Struct, frozen=True):
    execution_id: str
    taskrun_id: str
    attempt: int
    task: Task
    namespace: str
    flow_id: str
    flow_revision: int
    variables: dict[str, Any]
    secrets: list[str] = []  # values to mask in log lines (SECRET inputs)
    workdir: str | None = None  # the enclosing WorkingDirectory's taskrun: its tasks share one directory
    workdir_files: Any = None  # that WorkingDirectory's `inputFiles`, written when the directory is made
    first_started: str | None = None  # when the taskrun's first attempt started (a retry's maxDuration)
    workdir_outputs: Any = None  # that WorkingDirectory's `outputFiles` globs: collected after each task
    workdir_cache: Any = None  # its `cache` ({patterns, ttl}): restored when made, archived after each task
    workdir_key: str | None = None  # its cache key in the flow: task id (and loop value)


_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(WorkItem)


def encode_work(item: WorkItem) -> bytes:
    return _enc.encode(item)


def decode_work(data: bytes) -> WorkItem:
    return _dec.decode(data)


def work_msg_id(execution_id: str, taskrun_id: str, attempt: int) -> str:
    """The message id of an attempt's work: the queue stores it once, however often it is sent."""
    return f"{execution_id}:{taskrun_id}:{attempt}"
