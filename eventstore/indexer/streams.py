"""The source streams the projection is built from, and the subjects it reads of each."""

from __future__ import annotations

from eventstore import subjects as S
from eventstore.indexer.tombstones import TOMBSTONES


def event_streams() -> list[str]:
    return [f"{S.EVENTS}_{k}" for k in range(S.SHARDS)]


def source_streams() -> list[str]:
    return [*event_streams(), S.LOGS, S.FLOWS, TOMBSTONES]


def is_events(stream: str) -> bool:
    return stream.startswith(S.EVENTS + "_")


def filters(stream: str) -> list[str]:
    if is_events(stream):
        return [f"ev.{p}.>" for p in S.shard_partitions(int(stream.rsplit("_", 1)[1]))]
    return {S.LOGS: ["log.>"], S.FLOWS: ["flow.>"], TOMBSTONES: ["tomb.>"]}[stream]
