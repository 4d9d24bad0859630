"""Realtime NATS trigger against a second, real nats-server (the source), stopped and restarted by PID."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from triggers_helpers import Engine, Recorder, trigger_service

from engine.core.errors import FlowValidationError
from engine.loader.loader import load_flow
from eventstore.natssource import BUFFER, Credentials, NatsSource
from eventstore.triggerstate import TriggerKV, set_disabled
from triggers import realtime
from triggers.realtime import realtime_execution_id
from triggers.testing import SourceServer

pytestmark = pytest.mark.anyio


@pytest.fixture
def source(tmp_path: Path) -> Iterator[SourceServer]:
    server = SourceServer(tmp_path / "source")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def pub(source: SourceServer) -> AsyncIterator[Any]:
    nc = await nats.connect(
        source.url, max_reconnect_attempts=-1, reconnect_time_wait=0.1, error_cb=_quiet, connect_timeout=2
    )
    try:
        yield nc
    finally:
        await nc.close()


async def _quiet(exc: Exception) -> None:
    return None


def realtime_flow(namespace: str, url: str, subject: str, extra: str = "", flow_id: str = "rt") -> str:
    return f"""
id: {flow_id}
namespace: {namespace}
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{{{ trigger.subject }}}} {{{{ trigger.data }}}}"
triggers:
  - id: watch
    type: io.kestra.plugin.nats.RealtimeTrigger
    url: {url}
    subject: {subject}
{extra}"""


async def listening(service: Any, namespace: str, flow_id: str = "rt", timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listener = service.realtime.listeners.get((namespace, flow_id, "watch"))
        if listener is not None and listener.connected.is_set():
            return listener
        await asyncio.sleep(0.01)
    raise AssertionError(f"no connected listener for {namespace}.{flow_id} after {timeout}s")


async def test_each_message_starts_an_execution_with_trigger_variables(
    eng: Engine, rec: Recorder, namespace: str, source: SourceServer, pub: Any
) -> None:
    subject = f"orders.{namespace.replace('.', '_')}"
    await eng.deploy(realtime_flow(namespace, source.url, subject + ".>"))
    async with trigger_service(eng.rt, namespace, poll_interval=0.05) as service:
        await listening(service, namespace)
        for n in range(3):
            await pub.publish(f"{subject}.eu", f"order-{n}".encode(), headers={"X-N": str(n)})
        await pub.flush()
        runs = await rec.wait_ended("rt", 3)
    assert len({c.execution_id for c in runs}) == 3
    got = sorted((c.trigger or {})["data"] for c in runs)
    assert got == ["order-0", "order-1", "order-2"]
    for c in runs:
        trig = c.trigger or {}
        n = trig["data"].split("-")[1]
        assert trig["subject"] == f"{subject}.eu"
        assert trig["headers"]["X-N"] == [n]
        assert trig["id"] == "watch" and trig["type"] == "io.kestra.plugin.nats.RealtimeTrigger"
        assert trig["variables"]["data"] == trig["data"]
        state = await eng.rt.load_execution(c.execution_id)
        assert state is not None and state.state == "SUCCESS"


async def test_durable_consumer_redelivery_creates_nothing_twice(
    eng: Engine, rec: Recorder, namespace: str, source: SourceServer, pub: Any
) -> None:
    subject = f"jobs.{namespace.replace('.', '_')}"
    js = pub.jetstream()
    await js.add_stream(name="JOBS", subjects=[f"{subject}.>"])
    seqs = [(await js.publish(f"{subject}.a", f"job-{n}".encode())).seq for n in range(4)]
    flow = await eng.deploy(realtime_flow(namespace, source.url, f"{subject}.>", "    durableId: engine\n"))
    async with trigger_service(eng.rt, namespace, poll_interval=0.05) as service:
        listener = await listening(service, namespace)
        runs = await rec.wait_ended("rt", 4)  # stored before the trigger existed: deliverPolicy All
        await _until(lambda: listener.stats.created == 4, "4 acknowledged creations")
    trigger = flow.triggers[0]
    assert sorted(c.execution_id for c in runs) == sorted(
        realtime_execution_id(flow, trigger, f"JOBS:{seq}") for seq in seqs
    )
    await _until_acked(js, "JOBS", "engine", 4)

    # the consumer is reset (as after a lost ack, or an operator rewinding it): every message comes again
    await js.delete_consumer("JOBS", "engine")
    async with trigger_service(eng.rt, namespace, poll_interval=0.05) as service:
        listener = await listening(service, namespace)
        await _until(lambda: listener.stats.created == 4, "4 redelivered messages handled")
        await js.publish(f"{subject}.b", b"job-new")
        runs = await rec.wait_ended("rt", 5)
    assert len(rec.creates) == 5 and len(set(rec.creates)) == 5  # the 4 redelivered ones: no new execution
    assert sorted((c.trigger or {})["data"] for c in runs) == ["job-0", "job-1", "job-2", "job-3", "job-new"]


async def test_a_core_subscription_that_falls_behind_holds_a_bounded_backlog_and_says_what_it_drops(
    source: SourceServer, pub: Any
) -> None:
    dropped: list[str] = []
    client = NatsSource("test", lambda reason: None, lambda: None, dropped.append, pending_msgs=100)
    await client.connect(source.url, Credentials())
    published = BUFFER + 1000
    try:
        await client.subscribe("slow.x", queue="q")
        for n in range(published):  # nobody takes the messages: the trigger is stuck
            await pub.publish("slow.x", str(n).encode())
        await pub.flush()
        seen = (-1, -1)
        while seen != (len(dropped), client._received.qsize()):  # until the client has dealt with all
            seen = (len(dropped), client._received.qsize())
            await asyncio.sleep(0.2)
        held, lost = seen[1], seen[0]
        assert 0 < held <= BUFFER
        # what is neither held nor reported dropped waits in the client: at most its 100, plus one
        assert published - held - 101 <= lost <= published - held
        first = await anext(client.messages())
        assert first.data == b"0" and first.key is None  # kept in order, from the first
    finally:
        await client.close()


class _Recording:
    """Stands in for a module's engine logger: every call kept as a dict (event, level, fields)."""

    def __init__(self, into: list[dict[str, Any]]) -> None:
        self._into = into

    def __getattr__(self, level: str) -> Any:
        return lambda event, **fields: self._into.append({"event": event, "log_level": level, **fields})


@pytest.mark.parametrize("durable", [False, True])
async def test_survives_a_restart_of_the_source_server(
    eng: Engine,
    rec: Recorder,
    namespace: str,
    source: SourceServer,
    pub: Any,
    durable: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    subject = f"events.{namespace.replace('.', '_')}"
    extra = ""
    if durable:
        await pub.jetstream().add_stream(name="EVENTS_SRC", subjects=[f"{subject}.>"])
        extra = "    durableId: engine\n"
    await eng.deploy(realtime_flow(namespace, source.url, f"{subject}.>", extra))
    async with trigger_service(eng.rt, namespace, poll_interval=0.05) as service:
        listener = await listening(service, namespace)
        await pub.publish(f"{subject}.x", b"before")
        await pub.flush()
        await rec.wait_ended("rt", 1)
        pid = source.pid
        assert pid is not None
        logs: list[dict[str, Any]] = []
        with monkeypatch.context() as patched:
            patched.setattr(realtime, "log", _Recording(logs))
            source.stop()
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
            await _until(lambda: not listener.connected.is_set(), "the listener to notice")
            await asyncio.sleep(1.0)  # several reconnection attempts while the server is away
            source.start()
            assert source.pid != pid
            await _until(lambda: listener.connected.is_set(), "the listener to reconnect", 15)
        warnings = [e for e in logs if e["event"] == "triggers.realtime_unavailable"]
        assert len(warnings) == 1, logs
        assert any(e["event"] == "triggers.realtime_back" for e in logs)
        await _until(lambda: pub.is_connected, "the publisher to reconnect", 15)
        if durable:  # stored by the stream, delivered once the consumer is bound again
            await pub.jetstream().publish(f"{subject}.x", b"after")
            await rec.wait_ended("rt", 2, timeout=15)
        else:  # a core publish is lost until the subscription is back on the server: retry until seen
            await _published_until(pub, f"{subject}.x", b"after", rec, 2)
    data = [(c.trigger or {})["data"] for c in rec.of("rt")]
    assert data.count("before") == 1 and "after" in data
    if durable:
        assert sorted(data) == ["after", "before"]


async def test_listener_follows_revisions_and_disable(
    eng: Engine, rec: Recorder, namespace: str, source: SourceServer, pub: Any
) -> None:
    base = f"rev.{namespace.replace('.', '_')}"
    await eng.deploy(realtime_flow(namespace, source.url, f"{base}.one"))
    async with trigger_service(eng.rt, namespace, poll_interval=0.05) as service:
        first = await listening(service, namespace)
        # a new revision with the same trigger: the same listener keeps running, with the new flow
        await eng.deploy(
            realtime_flow(namespace, source.url, f"{base}.one").replace("tasks:", "labels: {v: '2'}\ntasks:")
        )
        await _until(lambda: first.flow.revision == 2, "the listener to take revision 2")
        assert service.realtime.listeners[(namespace, "rt", "watch")] is first
        # a new revision that changes the subject: a new listener
        await eng.deploy(realtime_flow(namespace, source.url, f"{base}.two"))
        await _until(
            lambda: (
                (new := service.realtime.listeners.get((namespace, "rt", "watch"))) is not None
                and new is not first
                and new.connected.is_set()
            ),
            "a new listener",
        )
        second = service.realtime.listeners[(namespace, "rt", "watch")]
        await pub.publish(f"{base}.one", b"old-subject")
        await pub.publish(f"{base}.two", b"new-subject")
        await pub.flush()
        [run] = await rec.wait_ended("rt", 1)
        assert (run.trigger or {})["data"] == "new-subject" and run.flow_revision == 3
        assert first.task is None  # stopped

        kv = TriggerKV(eng.rt.store)
        await kv.setup()
        await set_disabled(kv, namespace, "rt", "watch", True)
        await _until(
            lambda: (namespace, "rt", "watch") not in service.realtime.listeners, "disable to stop it"
        )
        assert second.task is None
        await pub.publish(f"{base}.two", b"while-disabled")
        await pub.flush()
        await set_disabled(kv, namespace, "rt", "watch", False)
        third = await listening(service, namespace)
        await pub.publish(f"{base}.two", b"enabled-again")
        await pub.flush()
        await rec.wait_ended("rt", 2)
        assert third is not second
        await eng.rt.store.delete_flow(namespace, "rt")
        await _until(lambda: not service.realtime.listeners, "deletion to stop it")
    assert sorted((c.trigger or {})["data"] for c in rec.of("rt")) == ["enabled-again", "new-subject"]


def test_the_trigger_properties_are_checked_when_the_flow_loads() -> None:
    source = realtime_flow(
        "company.team", "nats://127.0.0.1:4222", "a.b", "    durableID: x\n    batchSize: many\n"
    )
    with pytest.raises(FlowValidationError) as err:
        load_flow(source)
    text = str(err.value)
    assert "unknown property of RealtimeTrigger 'durableID'" in text and "'durableId'" in text
    assert "triggers[0].batchSize" in text
    missing = realtime_flow("company.team", "nats://127.0.0.1:4222", "a.b").replace("    subject: a.b\n", "")
    with pytest.raises(FlowValidationError, match="missing required property 'subject'"):
        load_flow(missing)
    ok = load_flow(
        realtime_flow("company.team", "\"{{ secret('NATS_URL') }}\"", "a.b").replace(
            "io.kestra.plugin.nats.RealtimeTrigger", "io.kestra.plugin.nats.core.RealtimeTrigger"
        )
    )
    assert ok.triggers[0].props["url"] == "{{ secret('NATS_URL') }}"


async def _until(predicate: Any, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def _until_acked(js: Any, stream: str, durable: str, count: int) -> None:
    async def acked() -> int:
        info = await js.consumer_info(stream, durable)
        return int(info.ack_floor.stream_seq) if info.num_ack_pending == 0 else -1

    deadline = time.monotonic() + 10
    while await acked() < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"consumer {durable} did not ack {count} messages")
        await asyncio.sleep(0.02)


async def _published_until(pub: Any, subject: str, data: bytes, rec: Recorder, count: int) -> None:
    """Publish once the subscription is back on the server (a core publish before that is lost)."""
    deadline = time.monotonic() + 15
    while len(rec.of("rt")) < count:
        if time.monotonic() > deadline:
            raise AssertionError("the message published after the restart never started an execution")
        await pub.publish(subject, data)
        await pub.flush()
        try:
            await rec.wait(lambda: len(rec.of("rt")) >= count, timeout=0.5)
        except AssertionError:
            continue
    await rec.wait_ended("rt", count)
