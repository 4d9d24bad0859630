"""The JetStream store: the execution log, inputs and work, leases, flows, liveness, logs and KV.

``Store`` is one connection to NATS and every port of ``engine.core.ports`` on it; its parts
live in ``eventstore.jetstream`` (connection, streams), ``eventstore.history`` (the log and
snapshots) and ``eventstore.messaging`` (inputs, work, kills, executor presence).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from nats.js.errors import APIError, KeyNotFoundError, NotFoundError

from engine.core.errors import ConcurrencyConflict, PayloadTooLarge
from engine.core.events import AttemptEnded, Event, in_order, lines_in
from engine.core.ports import FlowRevision, LogLine
from eventstore import subjects as S
from eventstore.batchreads import BatchReads
from eventstore.history import History
from eventstore.jetstream import OCC_CONFLICTS, default_replicas, json_encoder, patiently
from eventstore.messaging import Messaging

_ENDED_TTL = {"Nats-TTL": f"{S.ENDED_MARKER_TTL_S}s"}  # an ended key's marker goes after a second

__all__ = ["FlowRevision", "JetStreamKV", "LogLine", "Store", "default_replicas", "patiently"]

_json = json_encoder
_log_enc = msgspec.msgpack.Encoder()
_log_dec = msgspec.msgpack.Decoder(LogLine)


class Store(History, BatchReads, Messaging):
    """One connection to NATS and everything the engine stores there."""

    # ---- executor partition leases ---------------------------------------------------------

    async def lease_holder(self, partition: int) -> tuple[str, int]:
        """(owner, revision) of a partition's lease; owner "" when free (revision 0: none or expired)."""
        try:
            msg = await self.js.get_last_msg(S.LEASES, S.lease(partition), direct=True)
        except NotFoundError:
            return "", 0
        return (msg.data or b"").decode(), int(msg.seq or 0)

    async def lease_write(self, partition: int, owner: str, revision: int, ttl_s: float) -> int | None:
        """Take, renew (``owner``) or give back (``owner`` "") a lease whose revision is ``revision``.

        Returns the new revision, or None when the lease changed meanwhile (someone else holds it).
        """
        headers = {
            "Nats-Expected-Last-Subject-Sequence": str(revision),
            "Nats-TTL": f"{max(1, round(ttl_s))}s",
        }
        try:
            ack = await self.js.publish(S.lease(partition), owner.encode(), headers=headers, timeout=5)
        except APIError as exc:
            if exc.err_code in OCC_CONFLICTS:
                return None
            raise
        return int(ack.seq)

    async def announce_member(self, executor_id: str, ttl_s: float) -> None:
        headers = {"Nats-TTL": f"{max(1, round(ttl_s))}s"}
        await self.js.publish(S.member(executor_id), b"1", headers=headers, timeout=5)

    async def leave(self, executor_id: str) -> None:
        await self.js.purge_stream(S.LEASES, subject=S.member(executor_id))

    async def members(self) -> list[str]:
        """Executors whose membership key has not expired."""
        info = await self.js.stream_info(S.LEASES, subjects_filter="$KV.leases.m.>")
        out = []
        for subject, count in (info.state.subjects or {}).items():
            if count:
                out.append(subject.rsplit(".", 1)[1])
        return sorted(out)

    # ---- flows ---------------------------------------------------------------------------

    async def put_flow(self, namespace: str, flow_id: str, source: str) -> FlowRevision:
        """Store a new revision unless the source is unchanged. Concurrent saves: one wins, one retries."""
        subject = S.flow(namespace, flow_id)
        for _ in range(5):
            latest = await self._last_flow(namespace, flow_id)  # a deletion too: the next revision follows it
            if latest is not None and latest.source == source and not latest.deleted:
                return latest
            revision = latest.revision + 1 if latest else 1
            headers = {
                "Nats-Expected-Last-Subject-Sequence": str(latest.seq if latest else 0),
                "Engine-Revision": str(revision),
            }
            try:
                ack = await self.js.publish(subject, source.encode(), headers=headers, timeout=10)
            except APIError as exc:
                if exc.err_code in OCC_CONFLICTS:
                    continue
                raise
            return FlowRevision(namespace, flow_id, revision, source, int(ack.seq))
        raise ConcurrencyConflict(f"flow {namespace}.{flow_id}: too many concurrent saves")

    async def delete_flow(self, namespace: str, flow_id: str) -> bool:
        latest = await self.get_flow(namespace, flow_id)
        if latest is None:
            return False
        headers = {
            "Engine-Revision": str(latest.revision + 1),
            "Engine-Deleted": "1",
            "Nats-Expected-Last-Subject-Sequence": str(latest.seq),
        }
        await self.js.publish(S.flow(namespace, flow_id), b"", headers=headers, timeout=10)
        return True

    @staticmethod
    def _revision(namespace: str, flow_id: str, msg: Any) -> FlowRevision:
        headers = msg.headers or {}
        return FlowRevision(
            namespace,
            flow_id,
            int(headers.get("Engine-Revision", "1")),
            (msg.data or b"").decode(),
            int(msg.seq),
            headers.get("Engine-Deleted") == "1",
        )

    async def get_flow(
        self, namespace: str, flow_id: str, revision: int | None = None
    ) -> FlowRevision | None:
        latest = await self._last_flow(namespace, flow_id)
        if latest is None:
            return None
        if revision is None or revision == latest.revision:
            return None if (revision is None and latest.deleted) else latest
        for rev in await self.flow_revisions(namespace, flow_id):
            if rev.revision == revision:
                return rev
        return None

    async def _last_flow(self, namespace: str, flow_id: str) -> FlowRevision | None:
        """The last revision stored, a deletion included."""
        if not (S.valid_name(namespace) and S.valid_name(flow_id)):
            return None  # no flow can have that name
        try:
            msg = await self.js.get_last_msg(S.FLOWS, S.flow(namespace, flow_id), direct=True)
        except NotFoundError:
            return None
        return self._revision(namespace, flow_id, msg)

    async def flow_revisions(self, namespace: str, flow_id: str) -> list[FlowRevision]:
        subject = S.flow(namespace, flow_id)
        try:
            last = await self.js.get_last_msg(S.FLOWS, subject, direct=True)
        except NotFoundError:
            return []
        out = []
        sub = await self.js.subscribe(subject, stream=S.FLOWS, ordered_consumer=True)
        try:
            while True:
                msg = await sub.next_msg(timeout=10)
                out.append(
                    FlowRevision(
                        namespace,
                        flow_id,
                        int((msg.headers or {}).get("Engine-Revision", "1")),
                        (msg.data or b"").decode(),
                        int(msg.metadata.sequence.stream),
                        (msg.headers or {}).get("Engine-Deleted") == "1",
                        _saved_at(msg),
                    )
                )
                if int(msg.metadata.sequence.stream) >= int(last.seq or 0):
                    break
        finally:
            await sub.unsubscribe()
        return out

    async def list_flows(self) -> list[FlowRevision]:
        info = await self.js.stream_info(S.FLOWS, subjects_filter="flow.>")
        out = []
        for subject in sorted((info.state.subjects or {}).keys()):
            ns, fid = S.parse_flow(subject)
            rev = await self.get_flow(ns, fid)
            if rev is not None:
                out.append(rev)
        return out

    # ---- flow concurrency slots -------------------------------------------------------------

    async def update_slots(self, namespace: str, flow_id: str, change: Any) -> Any:
        """Read-modify-write the flow's {running: [...], queued: [...]} record with optimistic concurrency.

        ``change(record) -> (record, result)`` is retried on a conflicting write; returns its result.
        """
        subject = S.kv_subject("system.concurrency", f"{namespace}.{flow_id}".replace(":", "_"))
        for _ in range(100):
            try:
                msg = await self.js.get_last_msg(S.KV, subject, direct=True)
                seq, record = int(msg.seq or 0), msgspec.json.decode(msg.data) if msg.data else {}
            except NotFoundError:
                seq, record = 0, {}
            record.setdefault("running", [])
            record.setdefault("queued", [])
            new, result = change(record)
            if new is None:
                return result
            try:
                await self.js.publish(
                    subject,
                    _json.encode(new),
                    headers={"Nats-Expected-Last-Subject-Sequence": str(seq)},
                    timeout=10,
                )
            except APIError as exc:
                if exc.err_code in OCC_CONFLICTS:
                    continue
                raise
            return result
        raise ConcurrencyConflict(f"flow {namespace}.{flow_id}: concurrency slots too contended")

    # ---- worker liveness -----------------------------------------------------------------

    async def heartbeat(self, worker_id: str, info: dict[str, Any], ttl_s: int = S.HEARTBEAT_TTL_S) -> None:
        """Renew a worker's liveness key; it expires after ``ttl_s`` without renewal."""
        await self.js.publish(
            S.heartbeat(worker_id),
            _json.encode(info),
            headers={"Nats-TTL": f"{ttl_s}s"},
            timeout=10,
        )

    async def mark_running(self, worker_id: str, execution_id: str, taskrun_id: str, attempt: int) -> None:
        """Record that a worker holds an attempt, so that its loss can be noticed after any restart."""
        subject = S.running(worker_id, execution_id, taskrun_id)
        await self.js.publish(subject, _json.encode({"attempt": attempt}), timeout=10)

    async def clear_running(self, worker_id: str, execution_id: str, taskrun_id: str) -> None:
        subject = S.running(worker_id, execution_id, taskrun_id)
        # The purge marker expires: kept, one per taskrun ever run, every liveness check listed them all.
        headers = {"KV-Operation": "PURGE", "Nats-Rollup": "sub", **_ENDED_TTL}
        await self.js.publish(subject, b"", headers=headers, timeout=10)

    # ---- executions whose work may be in a process's memory ------------------------------------

    async def mark_held(self, execution_id: str) -> None:
        await self.batcher(S.HELD).publish(S.held(execution_id), b"1", None)

    def clear_held(self, execution_id: str) -> None:
        # An empty value with a TTL replaces the mark (one message per key), then goes: a delete
        # would keep a tombstone per execution forever, and every takeover would list them all.
        self.batcher(S.HELD).post(S.held(execution_id), b"", dict(_ENDED_TTL))

    async def held_executions(self, partitions: Collection[int]) -> list[tuple[str, int]]:
        wanted = {str(p) for p in partitions}
        if not wanted:
            return []
        info = await self.js.stream_info(S.HELD, subjects_filter="$KV.held.>")
        out = []
        for subject in info.state.subjects or {}:
            _, _, p, execution_id = subject.split(".", 3)
            if p in wanted:
                out.append((execution_id, int(p)))
        # A cleared mark is listed until its TTL runs out, and after a restart the server lets it
        # run out only a few seconds later: without this read every start loaded again the
        # executions that ended just before the last stop. From the leader: a replica a moment
        # behind could show an old clear for a mark set again since.
        reads = asyncio.Semaphore(64)

        async def cleared(execution_id: str) -> bool:
            async with reads:
                try:
                    msg = await self.js.get_last_msg(S.HELD, S.held(execution_id))
                except NotFoundError:
                    return True  # expired meanwhile
                return not msg.data

        gone = await asyncio.gather(*(cleared(eid) for eid, _ in out))
        return [found for found, done in zip(out, gone, strict=True) if not done]

    async def running_attempts(self) -> list[tuple[str, str, str, int]]:
        """(worker, execution, taskrun, attempt) of every attempt a worker announced and did not end."""
        info = await self.js.stream_info(S.RUNNING, subjects_filter="$KV.running.>")
        out = []
        for subject in info.state.subjects or {}:
            try:
                msg = await self.js.get_last_msg(S.RUNNING, subject, direct=True)
            except NotFoundError:
                continue
            if not msg.data:
                continue
            _, _, worker, execution, taskrun = subject.split(".", 4)
            out.append((worker, execution, taskrun, int(msgspec.json.decode(msg.data)["attempt"])))
        return out

    async def running_attempt(self, worker_id: str, execution_id: str, taskrun_id: str) -> int | None:
        try:  # from the leader: a replica a moment behind could miss a mark just set
            msg = await self.js.get_last_msg(S.RUNNING, S.running(worker_id, execution_id, taskrun_id))
        except NotFoundError:
            return None
        return int(msgspec.json.decode(msg.data)["attempt"]) if msg.data else None

    async def live_workers(self) -> dict[str, Any]:
        info = await self.js.stream_info(S.WORKERS, subjects_filter="$KV.workers.>")
        out: dict[str, Any] = {}
        for subject in info.state.subjects or {}:
            try:
                msg = await self.js.get_last_msg(S.WORKERS, subject, direct=True)
            except NotFoundError:
                continue
            if msg.data:
                out[subject.rsplit(".", 1)[1]] = msgspec.json.decode(msg.data)
        return out

    # ---- logs ----------------------------------------------------------------------------

    async def append(self, execution_id: str, events: list[Event], expected_last_seq: int) -> int:
        """``History.append``; a step too large because of the lines its attempts' ends carry (a
        wide fan-out of chatty tasks ending at once) stores the lines in LOGS first, then itself
        without them: the execution goes on where the step would have failed it."""
        try:
            return await super().append(execution_id, events, expected_last_seq)
        except PayloadTooLarge:
            lines = lines_in(events)
            if not lines:
                raise
        # the same step retried stores its lines once
        await self.store_lines(execution_id, lines, f"{execution_id}:{expected_last_seq}:line")
        bare = [msgspec.structs.replace(e, logs=()) if type(e) is AttemptEnded else e for e in events]
        return await super().append(execution_id, bare, expected_last_seq)

    def post_log(self, execution_id: str, line: LogLine) -> None:
        """Fire-and-forget: logs never slow down or fail a task (they share commits: batching)."""
        self.batcher(S.LOGS).post(S.logs(execution_id), _log_enc.encode(line))

    async def store_log(self, execution_id: str, line: LogLine, msg_id: str) -> None:
        """A log line acknowledged once stored (the engine's own, rare lines: why something failed)."""
        headers = {"Nats-Msg-Id": msg_id}
        await self.batcher(S.LOGS).publish(S.logs(execution_id), _log_enc.encode(line), headers)

    async def store_lines(self, execution_id: str, lines: Sequence[LogLine], key: str) -> None:
        await asyncio.gather(
            *(self.store_log(execution_id, line, f"{key}:{i}") for i, line in enumerate(lines))
        )

    @staticmethod
    def decode_log(data: bytes) -> LogLine:
        return _log_dec.decode(data)

    async def read_logs(self, execution_id: str) -> list[LogLine]:
        """The lines published to LOGS and those stored with the attempts' ends, in one order."""
        inline = [line for _, events in await self.read(execution_id) for line in lines_in(events)]
        subject = S.logs(execution_id)
        try:
            last = await self.js.get_last_msg(S.LOGS, subject, direct=True)
        except NotFoundError:
            return inline
        scan = self._scan(S.LOGS, subject, upto=int(last.seq or 0))
        return in_order([self.decode_log(d) async for _, d in scan], inline)


@dataclass(frozen=True)
class KVEntry:
    namespace: str
    key: str
    value: Any
    revision: int
    updated: datetime | None
    expires: datetime | None


class JetStreamKV:
    """The ``kv()`` store: one JetStream KV bucket, keys namespaced, values JSON, optional per-key TTL."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def get(self, namespace: str, key: str) -> Any | None:
        try:
            msg = await self.store.js.get_last_msg(S.KV, S.kv_subject(namespace, key), direct=True)
        except (NotFoundError, KeyNotFoundError):
            return None
        headers = msg.headers or {}
        if headers.get("KV-Operation") in ("DEL", "PURGE") or not msg.data:
            return None
        return msgspec.json.decode(msg.data)

    async def entry(self, namespace: str, key: str) -> KVEntry | None:
        """A key's value with its NATS KV revision (the stream sequence of its last write: it grows
        with every write) and the date of that write; None when there is no such key."""
        try:
            msg = await self.store.js.get_last_msg(S.KV, S.kv_subject(namespace, key), direct=True)
        except (NotFoundError, KeyNotFoundError):
            return None
        headers = msg.headers or {}
        if headers.get("KV-Operation") in ("DEL", "PURGE") or not msg.data:
            return None
        updated = msg.time
        expires = None
        ttl = str(headers.get("Nats-TTL", ""))
        if updated is not None and ttl.endswith("s") and ttl[:-1].isdigit():
            expires = updated + timedelta(seconds=int(ttl[:-1]))
        return KVEntry(namespace, key, msgspec.json.decode(msg.data), int(msg.seq or 0), updated, expires)

    async def entries(self, namespace: str | None = None) -> list[KVEntry]:
        """Every live key of a namespace (all namespaces: None), by namespace and key."""
        info = await self.store.js.stream_info(S.KV, subjects_filter=f"$KV.{S.KV_BUCKET}.>")
        out = []
        for subject in info.state.subjects or {}:
            ns_part, _, key = subject[len(f"$KV.{S.KV_BUCKET}.") :].partition(".")
            ns = ns_part.replace("/", ".")
            if namespace is not None and ns != namespace:
                continue
            found = await self.entry(ns, key)
            if found is not None:
                out.append(found)
        return sorted(out, key=lambda e: (e.namespace, e.key))

    async def set(self, namespace: str, key: str, value: Any, ttl_s: float | None = None) -> None:
        headers: dict[str, str] = {}
        if ttl_s is not None:
            headers["Nats-TTL"] = f"{max(1, round(ttl_s))}s"
        await self.store.js.publish(
            S.kv_subject(namespace, key), _json.encode(value), headers=headers or None, timeout=10
        )

    async def delete(self, namespace: str, key: str) -> bool:
        existed = await self.get(namespace, key) is not None
        if existed:
            await self.store.js.publish(
                S.kv_subject(namespace, key),
                b"",
                headers={"KV-Operation": "PURGE", "Nats-Rollup": "sub"},
                timeout=10,
            )
        return existed

    async def keys(self, namespace: str, prefix: str = "") -> list[str]:
        base = S.kv_key(namespace, "")
        info = await self.store.js.stream_info(S.KV, subjects_filter=f"$KV.{S.KV_BUCKET}.>")
        out = []
        for subject in info.state.subjects or {}:
            k = subject[len(f"$KV.{S.KV_BUCKET}.") :]
            name = k[len(base) :]
            if k.startswith(base) and name.startswith(prefix) and await self.get(namespace, name) is not None:
                out.append(name)
        return sorted(out)


def _saved_at(msg: Any) -> str | None:
    """When JetStream stored a message (ISO-8601 UTC, milliseconds)."""
    moment = getattr(msg.metadata, "timestamp", None)
    if moment is None:
        return None
    return str(moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"))
