"""Table ``logs``: the task log lines of ``LOGS``, appended (a line is never changed)."""

from __future__ import annotations

import logging

import msgspec

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


def apply(batch: Batch, m: Msg, deleted: set[str]) -> None:
    execution_id = m.subject[len("log.") :]
    if execution_id in deleted:
        return
    try:
        line = Store.decode_log(m.data)
    except msgspec.DecodeError:
        log.warning("indexer: undecodable log line %s seq %d skipped", m.subject, m.seq)
        return
    batch.logs.append(
        [
            m.seq,
            execution_id,
            ts(line.date),
            line.level,
            LEVELS.get(line.level.upper(), 2),
            line.message,
            line.taskrun_id,
            line.task_id,
            line.attempt,
        ]
    )


def statements(batch: Batch, out: list[Statement]) -> None:
    add(out, INSERT_LOGS, batch.logs, len(LOG_COLS))
