"""Tables ``flow_revisions`` (every revision of ``FLOWS``, appended) and ``flows`` (the last one).

A deleted flow keeps its last source in ``flows`` (the revisions page shows it), marked deleted.
"""

from __future__ import annotations

from datetime import UTC, datetime

import yaml

from eventstore import subjects as S
from eventstore.indexer.batch import Batch, Msg
from eventstore.indexer.executions import label_pairs
from eventstore.indexer.sql import Statement, add, append, merge

SCHEMA = """
CREATE TABLE IF NOT EXISTS flow_revisions (
    namespace VARCHAR NOT NULL,
    flow_id VARCHAR NOT NULL,
    revision INTEGER NOT NULL,
    source VARCHAR NOT NULL,
    deleted BOOLEAN NOT NULL,
    seq BIGINT NOT NULL,
    updated TIMESTAMP
);
CREATE TABLE IF NOT EXISTS flows (
    namespace VARCHAR NOT NULL,
    flow_id VARCHAR NOT NULL,
    revision INTEGER NOT NULL,
    source VARCHAR NOT NULL,
    deleted BOOLEAN NOT NULL,
    description VARCHAR,
    labels VARCHAR[],
    disabled BOOLEAN,
    seq BIGINT NOT NULL,
    updated TIMESTAMP,
    PRIMARY KEY (namespace, flow_id)
);
"""
REV_COLS = [
    "namespace",
    "flow_id",
    "revision",
    "source",
    "deleted",
    "seq",
    "updated",
]
FLOW_COLS = [
    "namespace",
    "flow_id",
    "revision",
    "source",
    "deleted",
    "description",
    "labels",
    "disabled",
    "seq",
    "updated",  # when the stream stored the revision (Kestra's flow ``updated``)
]
INSERT_REVISIONS = append("flow_revisions", REV_COLS)
UPSERT_FLOWS = merge("flows", FLOW_COLS, ["namespace", "flow_id"])


def _flow_fields(source: str) -> tuple[str | None, list[str], bool]:
    try:
        doc = yaml.safe_load(source)
    except yaml.YAMLError:
        return None, [], False
    if not isinstance(doc, dict):
        return None, [], False
    labels = doc.get("labels") or {}
    if isinstance(labels, list):  # Kestra also accepts [{key, value}]
        labels = {str(x.get("key")): str(x.get("value")) for x in labels if isinstance(x, dict)}
    pairs = label_pairs({str(k): str(v) for k, v in labels.items()}) if isinstance(labels, dict) else []
    desc = doc.get("description")
    return (str(desc) if desc is not None else None), pairs, bool(doc.get("disabled", False))


def apply(batch: Batch, m: Msg) -> None:
    namespace, flow_id = S.parse_flow(m.subject)
    headers = m.headers or {}
    revision = int(headers.get("Engine-Revision", "1"))
    deleted = headers.get("Engine-Deleted") == "1"
    source = m.data.decode(errors="replace")
    updated = datetime.fromtimestamp(m.time, UTC).replace(tzinfo=None) if m.time else None
    batch.revisions.append([namespace, flow_id, revision, source, deleted, m.seq, updated])
    key = (namespace, flow_id)
    if deleted:
        prev = batch.flows.get(key)
        if prev is not None and prev[3] is not None:  # saved then deleted in this batch
            batch.flows[key] = [*prev[:2], revision, prev[3], True, *prev[5:8], m.seq, updated]
        else:  # marks the stored row deleted (it keeps its last source, for revisions)
            batch.flows[key] = [namespace, flow_id, revision, None, True, None, [], False, m.seq, updated]
    else:
        desc, labels, disabled = _flow_fields(source)
        row = [namespace, flow_id, revision, source, False, desc, labels, disabled, m.seq, updated]
        batch.flows[key] = row


def statements(batch: Batch, out: list[Statement]) -> None:
    add(out, INSERT_REVISIONS, batch.revisions, len(REV_COLS))
    flows = list(batch.flows.values())
    add(out, UPSERT_FLOWS, [r for r in flows if r[3] is not None], len(FLOW_COLS))
    for r in flows:  # a deleted flow keeps its last source (for revisions), marked deleted
        if r[3] is None:
            out.append(
                (
                    "UPDATE flows SET deleted = true, revision = ?, seq = ?, updated = ? "
                    "WHERE namespace = ? AND flow_id = ? AND seq < ?",
                    [r[2], r[8], r[9], r[0], r[1], r[8]],
                )
            )
