"""Trigger state in a KV stream of its own (``KV_triggers``), with compare-and-set writes.

Keys are dotted paths (``schedule.<ns>.<flow>.<trigger>``, ``window.<ns>.<flow>.<condition>``);
dots inside namespaces and ids are turned into ``:`` so each part stays one NATS token. A write
names the subject sequence it expects (``Nats-Expected-Last-Subject-Sequence``): two schedulers
or two trigger services updating the same key never lose each other's update silently.
"""

from __future__ import annotations

from typing import Any

import msgspec
from nats.js import api as jsapi
from nats.js.errors import APIError, KeyNotFoundError, NotFoundError

from engine.core.errors import EngineError
from eventstore.jetstream import OCC_CONFLICTS
from eventstore.store import Store

STREAM = "KV_triggers"
BUCKET = "triggers"
_PREFIX = f"$KV.{BUCKET}."
_enc = msgspec.json.Encoder()


def token(name: str) -> str:
    return name.replace(".", ":")


def key(*parts: str) -> str:
    """A key from parts (each part one token)."""
    return ".".join(token(p) for p in parts)


class TriggerKV:
    """JSON values by key; ``get`` returns the value and the sequence to pass to ``put``."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._ready = False

    async def setup(self) -> None:
        if self._ready:
            return
        cfg = jsapi.StreamConfig(
            name=STREAM,
            subjects=[f"{_PREFIX}>"],
            storage=jsapi.StorageType.FILE,
            num_replicas=self.store.replicas,
            allow_direct=True,
            allow_rollup_hdrs=True,
            max_msgs_per_subject=1,
        )
        try:
            await self.store.js.add_stream(cfg)
        except APIError as exc:
            if exc.err_code != 10058:
                raise
            await self.store.js.update_stream(cfg)
        self._ready = True

    async def get(self, k: str) -> tuple[Any | None, int]:
        """(value, seq); (None, 0) when the key never existed, (None, seq) when it was deleted."""
        try:
            msg = await self.store.js.get_last_msg(STREAM, _PREFIX + k, direct=True)
        except (NotFoundError, KeyNotFoundError):
            return None, 0
        seq = int(msg.seq or 0)
        headers = msg.headers or {}
        if headers.get("KV-Operation") in ("DEL", "PURGE") or not msg.data:
            return None, seq
        return msgspec.json.decode(msg.data), seq

    async def put(self, k: str, value: Any, expected_seq: int | None = None) -> int | None:
        """Write ``value``; with ``expected_seq``, only if the key is still at that sequence.

        Returns the new sequence, or None when another writer got there first.
        """
        headers = None
        if expected_seq is not None:
            headers = {"Nats-Expected-Last-Subject-Sequence": str(expected_seq)}
        try:
            ack = await self.store.js.publish(_PREFIX + k, _enc.encode(value), headers=headers, timeout=10)
        except APIError as exc:
            if exc.err_code in OCC_CONFLICTS:
                return None
            raise
        return int(ack.seq)

    async def keys(self, prefix: str = "") -> list[str]:
        info = await self.store.js.stream_info(STREAM, subjects_filter=f"{_PREFIX}>")
        out = []
        for subject in info.state.subjects or {}:
            k = subject[len(_PREFIX) :]
            if k.startswith(prefix):
                out.append(k)
        return sorted(out)


def schedule_key(namespace: str, flow_id: str, trigger_id: str) -> str:
    """The state of one trigger: a Schedule's cursor, a polling trigger's last poll, ``disabled``."""
    return key("schedule", namespace, flow_id, trigger_id)


async def set_disabled(
    kv: TriggerKV, namespace: str, flow_id: str, trigger_id: str, disabled: bool, reason: str | None = None
) -> None:
    """Disable or re-enable a trigger.

    A Schedule's cursor is kept: re-enabling follows recoverMissedSchedules.
    """
    k = schedule_key(namespace, flow_id, trigger_id)
    for _ in range(20):
        state, seq = await kv.get(k)
        new = dict(state or {})
        new["disabled"] = disabled
        if reason and disabled:
            new["disabled_reason"] = reason
        else:
            new.pop("disabled_reason", None)
        if await kv.put(k, new, seq) is not None:
            return
    raise EngineError(f"trigger {namespace}.{flow_id}.{trigger_id}: state updated too often concurrently")


async def open_trigger_kv(store: Store) -> TriggerKV:
    """The trigger state of this store, its stream made if missing."""
    kv = TriggerKV(store)
    await kv.setup()
    return kv
