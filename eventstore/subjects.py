"""Every stream, subject and bucket name, in one place (DESIGN.md, "JetStream layout")."""

from __future__ import annotations

import zlib

PARTITIONS = 16  # fixed at install: the hash below decides where an execution lives
# Each of EVENTS, INBOX and WORK is split into SHARDS streams by partition: JetStream fsyncs
# each stream's writes one after the other, so shards write to disk in parallel (measured here:
# 1 stream 3,300 fsynced msg/s, 4 streams 7,200).
SHARDS = 4

EVENTS = "EVENTS"  # EVENTS_<k>: ev.<p>.<execution>, the execution's history, one message per fold step
INBOX = "INBOX"  # INBOX_<k>: in.<p>.<execution>, executor inputs (commands, worker reports), work queue
WORK = "WORK"  # WORK_<k>: work.<group>.<k>, runnable taskruns for workers, work queue
LOGS = "LOGS"  # log.<execution>: task log lines
FLOWS = "FLOWS"  # flow.<ns>.<id>: one message per flow revision
KV = "KV_engine"  # $KV.engine.<ns>.<key>: kv() store, per-key TTL
KV_BUCKET = "engine"
WORKERS = "KV_workers"  # $KV.workers.<worker id>: liveness, each key expires unless renewed
HEARTBEAT_TTL_S = 10
RUNNING = "KV_running"  # $KV.running.<worker>.<execution>.<taskrun>: attempts a worker has in hand
LEASES = "KV_leases"  # $KV.leases.p.<partition> (owner executor), $KV.leases.m.<executor> (members); TTL'd
SNAPSHOTS = "KV_snapshots"  # $KV.snap.<partition>.<execution>: folded state every N steps
HELD = "KV_held"  # $KV.held.<partition>.<execution>: its work may be held in a process's memory
ENDED_MARKER_TTL_S = 1  # a key's end: an empty value that replaces it, then expires (no tombstone kept)


def partition(execution_id: str) -> int:
    return zlib.crc32(execution_id.encode()) % PARTITIONS


def shard(execution_id: str) -> int:
    return partition(execution_id) % SHARDS


def shard_partitions(k: int) -> list[int]:
    return [p for p in range(PARTITIONS) if p % SHARDS == k]


def events_stream(execution_id: str) -> str:
    return f"{EVENTS}_{shard(execution_id)}"


def inbox_stream(execution_id: str) -> str:
    return f"{INBOX}_{shard(execution_id)}"


def _partitioned(prefix: str, execution_id: str, *rest: str) -> str:
    # <prefix>.<partition>.<execution>: a partition's owner filters on <prefix>.<partition>.>
    return ".".join([prefix, str(partition(execution_id)), execution_id, *rest])


def _kv(bucket: str, *key: str) -> str:
    """Subject of a key in a KV bucket: a publish there is a put (TTL and history come from the bucket)."""
    return ".".join(["$KV", bucket, *key])


def events(execution_id: str) -> str:
    return _partitioned("ev", execution_id)


def inbox(execution_id: str) -> str:
    return _partitioned("in", execution_id)


def inbox_partition(p: int) -> str:
    """Filter of one partition's executor inputs (timers land here when they fire)."""
    return f"in.{p}.*"


def timer(execution_id: str, key: str) -> str:
    """Schedule subject of a durable timer (JetStream message scheduler) targeting the execution's inbox."""
    return _partitioned("sched", execution_id, key)


def snapshot(execution_id: str) -> str:
    return _partitioned("$KV.snap", execution_id)


def work(group: str | None, k: int) -> str:
    return f"work.{group or 'default'}.{k}"


def logs(execution_id: str) -> str:
    return f"log.{execution_id}"


def kill(execution_id: str) -> str:
    """Core-NATS subject workers listen on to stop a running execution's tasks."""
    return f"kill.{execution_id}"


def ping(executor_id: str) -> str:
    """Core-NATS subject an executor answers on while its connection is up (liveness probe)."""
    return f"engine.executor.{executor_id}.ping"


def valid_name(name: str) -> bool:
    """Can this namespace or id be part of a subject? (No spaces, no wildcards, not empty.)"""
    return bool(name) and not any(c.isspace() or c in "*>" for c in name)


def _token(name: str) -> str:
    # Namespaces and ids may contain dots, which NATS uses as separators; ':' is in neither alphabet.
    return name.replace(".", ":")


def flow(namespace: str, flow_id: str) -> str:
    return f"flow.{_token(namespace)}.{_token(flow_id)}"


def parse_flow(subject: str) -> tuple[str, str]:
    _, ns, fid = subject.split(".", 2)
    return ns.replace(":", "."), fid.replace(":", ".")


def kv_key(namespace: str, key: str) -> str:
    # '/' never appears in a namespace, so the first '.' separates namespace from key.
    return f"{namespace.replace('.', '/')}.{key}"


def kv_subject(namespace: str, key: str) -> str:
    return _kv(KV_BUCKET, kv_key(namespace, key))


def heartbeat(worker_id: str) -> str:
    return _kv("workers", worker_id)


def running(worker_id: str, execution_id: str, taskrun_id: str) -> str:
    return _kv("running", worker_id, execution_id, taskrun_id)


def held(execution_id: str) -> str:
    return _kv("held", str(partition(execution_id)), execution_id)


def lease(partition: int) -> str:
    return _kv("leases", "p", str(partition))


def member(executor_id: str) -> str:
    return _kv("leases", "m", executor_id)
