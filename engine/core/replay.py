"""Replaying recorded executor steps through the pure core, byte for byte.

The executor is a shell around ``accept`` and ``settle``: given the same state, flow, inputs,
time and step seed they must decide the same events and effects. A recorded history (one
execution's steps as the executor took them on a real server) is the proof: folding it again
from nothing, each step must yield exactly the recorded bytes. Whatever makes a decision depend
on something that is not in the step (the wall clock, a random draw, a set's iteration order)
shows up as the first step whose bytes differ.

The golden format is JSON lines: a ``Header`` line, then one ``Step`` line per executor step.
Events and effects keep their recorded encoding (``msgspec.Raw``), so the comparison is of bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import get_args

import msgspec

from engine.core import events as ev
from engine.core.accept import accept
from engine.core.decider import Effect, redispatch, renotify, settle
from engine.core.errors import EngineError
from engine.core.execution import Execution, TaskRun, evolve
from engine.core.history import replay_events
from engine.core.model import Flow
from engine.core.ports import Templates

FORMAT = 1  # bump when the golden format changes (the recorded histories are then recorded again)

FlowKey = tuple[str, str, int]  # namespace, flow id, revision
FlowOf = Callable[[str, str, int], Flow]
TemplatesFor = Callable[[str, str, Mapping[str, str]], Templates]  # (now, seed, envs) -> bound templates


class Header(msgspec.Struct, forbid_unknown_fields=True):
    """The first line of a golden file: which execution, and the source of every flow it used."""

    format: int
    execution_id: str
    case: str
    flows: list[tuple[str, str, int, str]]  # namespace, flow id, revision, YAML source


class Step(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    """One executor step as recorded: what went in, and the bytes of what came out."""

    seq: int  # the stream sequence the step was appended after (part of the step's seed)
    now: str
    inputs: list[ev.Input]
    events: list[msgspec.Raw]
    effects: list[msgspec.Raw]
    envs: dict[str, str] = {}
    redispatch: bool = False
    sources: dict[str, Execution] = {}


class ReplayMismatch(EngineError):
    """A replayed step decided other bytes than the recorded ones."""


_json = msgspec.json.Encoder()
_header_decoder = msgspec.json.Decoder(Header)
_step_decoder = msgspec.json.Decoder(Step)
_events_decoder = msgspec.json.Decoder(ev.Event)


def encode_event(event: ev.Event) -> bytes:
    return _json.encode(event)


def encode_effect(effect: Effect) -> bytes:
    """``["Dispatch", {...fields}]``: the effect's kind, then its fields in declaration order."""
    return _json.encode([type(effect).__name__, effect])


def record(
    base_seq: int,
    now: str,
    envs: Mapping[str, str],
    inputs: list[ev.Input],
    events: list[ev.Event],
    effects: list[Effect],
    redispatched: bool,
) -> Step:
    """The golden line of a step the executor took (``redispatched``: its effects include
    ``redispatch``, as on an execution's first load)."""
    return Step(
        seq=base_seq,
        now=now,
        inputs=list(inputs),
        events=[msgspec.Raw(encode_event(e)) for e in events],
        effects=[msgspec.Raw(encode_effect(e)) for e in effects],
        envs=dict(envs),
        redispatch=redispatched,
    )


def recorded_events(step: Step) -> list[ev.Event]:
    """The events of a recorded step, decoded (fresh objects: folding them shares nothing)."""
    return [_events_decoder.decode(raw) for raw in step.events]


def dump(header: Header, steps: list[Step]) -> bytes:
    return b"".join(_json.encode(line) + b"\n" for line in [header, *steps])


def load(data: bytes) -> tuple[Header, list[Step]]:
    lines = data.splitlines()
    if not lines:
        raise EngineError("an empty golden history (expected a header line)")
    header = _header_decoder.decode(lines[0])
    if header.format != FORMAT:
        raise EngineError(f"golden format {header.format}, this replayer reads {FORMAT}: record it again")
    return header, [_step_decoder.decode(line) for line in lines[1:]]


def take_step(
    state: Execution | None, execution_id: str, step: Step, flow_of: FlowOf, templates_for: TemplatesFor
) -> tuple[Execution | None, list[ev.Event], list[Effect]]:
    """What the executor does with one batch of inputs, minus the I/O: accept, settle, redispatch."""
    now = step.now
    events: list[ev.Event] = []
    flow: Flow | None = None
    for item in step.inputs:
        if state is None and isinstance(item, ev.ReplayRequested):
            source = step.sources.get(item.source_execution_id)
            if source is None:
                continue  # the executor did not find it either
            flow = flow_of(source.namespace, source.flow_id, item.revision or source.flow_revision)
            try:
                replayed = replay_events(source, execution_id, item.taskrun_id, flow, now)
            except EngineError:
                continue
            for event in replayed:
                state = evolve(state, event)
                events.append(event)
            continue
        if state is None and isinstance(item, ev.ExecutionCreated):
            flow = flow_of(item.namespace, item.flow_id, item.flow_revision)
        elif state is not None and flow is None:
            flow = flow_of(state.namespace, state.flow_id, state.flow_revision)
        for event in accept(state, flow, item, now):
            state = evolve(state, event)
            events.append(event)
    if state is None or flow is None:
        return state, events, []
    templates = templates_for(now, f"{execution_id}:{step.seq}", step.envs)
    decision = settle(state, flow, now, templates)
    events.extend(decision.events)
    effects = list(decision.effects)
    if step.redispatch:
        effects.extend(redispatch(state, flow, now, templates))
        effects.extend(renotify(state, flow, now, templates))
    return state, events, effects


def _as_today(event: ev.Event) -> ev.Event:
    """A recorded event as today's schema reads it: the taskruns a replay copied included."""
    if isinstance(event, ev.TaskRunsCopied):
        copied = [msgspec.to_builtins(msgspec.convert(t, TaskRun)) for t in event.taskruns]
        return msgspec.structs.replace(event, taskruns=copied)
    return event


def _effect_as_today(raw: bytes) -> bytes:
    """A recorded effect with the fields added to its kind since (their defaults) in today's order."""
    kind, fields = msgspec.json.decode(raw)
    cls = next((c for c in get_args(Effect) if c.__name__ == kind), None)
    if cls is None or not isinstance(fields, dict):
        return raw
    names = [f.name for f in msgspec.structs.fields(cls)]
    if list(fields) == names:
        return raw
    today = {}
    for f in msgspec.structs.fields(cls):
        default = f.default_factory() if f.default_factory is not msgspec.NODEFAULT else f.default
        today[f.name] = fields.get(f.name, default)
    return _json.encode([kind, today])


def _first_difference(what: str, recorded: list[bytes], replayed: list[bytes]) -> str | None:
    for i, (want, got) in enumerate(zip(recorded, replayed, strict=False)):
        if want != got:
            return f"{what} {i} differs\n  recorded: {want.decode()}\n  replayed: {got.decode()}"
    if len(recorded) != len(replayed):
        n = min(len(recorded), len(replayed))
        longer, extra = ("recorded", recorded) if len(recorded) > n else ("replayed", replayed)
        return f"{len(recorded)} {what}s recorded, {len(replayed)} replayed; first extra ({longer}): " + (
            extra[n].decode()
        )
    return None


def replay(
    name: str,
    header: Header,
    steps: list[Step],
    parse: Callable[[str, int], Flow],
    templates_for: TemplatesFor,
) -> int:
    """Replay a golden history from nothing; raise ``ReplayMismatch`` at the first differing step.

    ``parse`` turns a recorded flow source into a ``Flow`` (the loader is not part of the core).
    Returns the number of steps replayed.
    """
    parsed: dict[FlowKey, Flow] = {}
    sources = {(ns, fid, rev): text for ns, fid, rev, text in header.flows}

    def flow_of(namespace: str, flow_id: str, revision: int) -> Flow:
        key = (namespace, flow_id, revision)
        if key not in parsed:
            if key not in sources:
                what = f"{namespace}.{flow_id} revision {revision}"
                raise ReplayMismatch(f"{name}: flow {what} was not recorded")
            parsed[key] = parse(sources[key], revision)
        return parsed[key]

    state: Execution | None = None
    for i, step in enumerate(steps, start=1):
        if state is not None:
            state.seq = step.seq  # the shell sets it: the stream sequence of the last step
        where = f"{name}: step {i} (seq {step.seq}, now {step.now})"
        try:
            state, events, effects = take_step(state, header.execution_id, step, flow_of, templates_for)
        except ReplayMismatch:
            raise
        except Exception as exc:
            raise ReplayMismatch(f"{where}: the replay raised {type(exc).__name__}: {exc}") from exc
        # An event recorded before a field was added (always with a default) is compared as it decodes
        # today: with that default, as the fold and every reader see it.
        recorded = (
            [encode_event(_as_today(e)) for e in recorded_events(step)],
            [_effect_as_today(bytes(r)) for r in step.effects],
        )
        replayed = [encode_event(e) for e in events], [encode_effect(e) for e in effects]
        diff = _first_difference("event", recorded[0], replayed[0]) or _first_difference(
            "effect", recorded[1], replayed[1]
        )
        if diff is not None:
            raise ReplayMismatch(f"{where}: {diff}")
    return len(steps)
