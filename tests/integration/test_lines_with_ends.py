"""A short task's log lines are stored with its end (one append), a long task's as they come; every
reader (the store, the live tail, the API's projection) gives both, in the order of their dates."""

from __future__ import annotations

import contextlib

import pytest
from integration_helpers import Engine

from engine.core import events as ev
from eventstore.admin import tail_logs
from eventstore.indexer.logs import INLINE_BASE
from workers.lines import HOLD_S

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

FLOW = f"""
id: lines
namespace: io.lines
tasks:
  - id: quick
    type: io.kestra.plugin.core.log.Log
    message: quick line
  - id: slow
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - echo first
      - sleep {HOLD_S * 3}
      - echo second
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: after line
"""


async def test_short_attempts_store_their_lines_with_their_end_and_long_ones_stream(eng: Engine) -> None:
    state = await eng.run(FLOW)
    assert state.state == "SUCCESS", state
    store = eng.rt.store
    task_of = {tr.id: tr.task_id for tr in state.taskruns.values()}

    ends = [e for _, events in await store.read(state.id) for e in events if type(e) is ev.AttemptEnded]
    inline = {task_of[e.taskrun_id]: [line.message for line in e.logs] for e in ends}
    assert inline["quick"] == ["quick line"]
    assert inline["after"] == ["after line"]
    assert inline["slow"] == []  # it ran past the hold: its lines went out as they came

    messages = [line.message for line in await store.read_logs(state.id)]
    assert [m for m in messages if m in ("quick line", "first", "second", "after line")] == [
        "quick line",
        "first",
        "second",
        "after line",
    ], messages

    streamed, stored = [], []
    async with contextlib.aclosing(tail_logs(store, state.id, poll=0.2)) as tail:
        quiet = 0
        async for item in tail:
            if item is None:
                quiet += 1
                if quiet >= 2:
                    break
                continue
            index, line = item
            assert index < 2**53  # exact as a JSON number read by JavaScript
            (stored if index >= INLINE_BASE else streamed).append(line.message)
    assert sorted(stored) == ["after line", "quick line"]
    assert "first" in streamed and "second" in streamed
    assert not {"quick line", "after line"} & set(streamed)
