"""The DuckDB projection: executions, taskruns, logs and flows, rebuilt from the log at will.

The indexer tails every ``EVENTS_<k>`` shard, ``LOGS``, ``FLOWS`` and ``TOMBSTONES``; deleting the
DuckDB file rebuilds the same tables from the log. One module per projection, each with its tables
and the function that turns messages into their rows:

- ``executions``: ``executions`` and ``taskruns`` (histories folded with ``evolve``)
- ``logs``: ``logs`` (LOGS's lines, and those the histories store with the attempts' ends)
- ``flows``: ``flow_revisions`` and ``flows``
- ``tombstones``: ``deleted_executions`` (and the ``TOMBSTONES`` stream the API writes)

``core`` tails the streams and writes each batch with the last applied sequences (``db``) in one
transaction; ``reads`` is what the API queries through; ``lag`` measures how far behind it is.
"""

from __future__ import annotations

from eventstore.indexer.batch import Msg
from eventstore.indexer.core import SWITCH_INTERVAL, Indexer
from eventstore.indexer.db import SCHEMA_VERSION
from eventstore.indexer.executions import LABEL_SEP, TERMINAL, label_pairs
from eventstore.indexer.logs import LEVELS
from eventstore.indexer.streams import event_streams, source_streams
from eventstore.indexer.tombstones import TOMBSTONES, delete_execution, ensure_streams

__all__ = [
    "LABEL_SEP",
    "LEVELS",
    "SCHEMA_VERSION",
    "SWITCH_INTERVAL",
    "TERMINAL",
    "TOMBSTONES",
    "Indexer",
    "Msg",
    "delete_execution",
    "ensure_streams",
    "event_streams",
    "label_pairs",
    "source_streams",
]
