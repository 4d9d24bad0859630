"""Table ``logs``: the task log lines of ``LOGS`` and those stored with the attempts' ends in the
executions' histories, appended (a line is never changed)."""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from engine.core import events as ev
from engine.core.events import LogLine
from eventstore.indexer.batch import Batch, Msg
from eventstore.indexer.sql import Statement, add, append, ts
from eventstore.store import Store

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS logs (
    seq BIGINT NOT NULL,
    execution_id VARCHAR NOT NULL,
    date TIMESTAMP,
    level VARCHAR,
    level_num TINYINT,
    message VARCHAR,
    taskrun_id VARCHAR,
    task_id VARCHAR,
    attempt INTEGER
);
"""
LOG_COLS = [
    "seq",
    "execution_id",
    "date",
    "level",
    "level_num",
    "message",
    "taskrun_id",
    "task_id",
    "attempt",
]
INSERT_LOGS = append("logs", LOG_COLS)
LEVELS = {"TRACE": 0, "DEBUG": 1, "INFO": 2, "WARN": 3, "WARNING": 3, "ERROR": 4}


# A line stored inside an attempt's end (``AttemptEnded.logs``) has no LOGS sequence: its ``seq`` is
# made from its step's (the step's sequence in the execution's EVENTS stream, the line's place in the
# step), above any LOGS sequence: each line of an execution has its own. The API gives it as the
# line's ``index``, so it stays under 2^53, where a JSON number read by JavaScript is still exact,
# until a stream has 2^36 steps. Lines are read in the order of their date, then ``seq``.
INLINE_BASE = 1 << 52
_STEP_SHIFT = 16  # 65,536 lines per step: a thousand reports folded at once, 64 held lines each


def apply(batch: Batch, m: Msg, deleted: set[str]) -> None:
    execution_id = m.subject[len("log.") :]
    if execution_id in deleted:
        return
    try:
        line = Store.decode_log(m.data)
    except msgspec.DecodeError:
        log.warning("indexer: undecodable log line %s seq %d skipped", m.subject, m.seq)
        return
    batch.logs.append(_row(m.seq, execution_id, line))


def add_inline(batch: Batch, step_seq: int, execution_id: str, events: list[ev.Event]) -> None:
    """The lines one step of ``execution_id`` stored with its attempts' ends."""
    lines = ev.lines_in(events)
    rows = (_row(inline_index(step_seq, i), execution_id, line) for i, line in enumerate(lines))
    batch.logs.extend(rows)


def inline_index(step_seq: int, i: int) -> int:
    """The ``seq`` (the API's ``index``) of the ``i``-th line stored inside the step ``step_seq``."""
    return INLINE_BASE + (step_seq << _STEP_SHIFT) + i


def _row(seq: int, execution_id: str, line: LogLine) -> list[Any]:
    return [
        seq,
        execution_id,
        ts(line.date),
        line.level,
        LEVELS.get(line.level.upper(), 2),
        line.message,
        line.taskrun_id,
        line.task_id,
        line.attempt,
    ]


def statements(batch: Batch, out: list[Statement]) -> None:
    add(out, INSERT_LOGS, batch.logs, len(LOG_COLS))
