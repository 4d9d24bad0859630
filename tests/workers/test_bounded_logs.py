"""A log line too large for the server is cut with a note, not lost without a word."""

from __future__ import annotations

import pytest

from engine.testing.run import MemoryEngine
from workers.worker import MAX_LOG

pytestmark = pytest.mark.anyio

FLOW = """\
id: logs
namespace: trust.logs
tasks:
  - id: big
    type: io.kestra.plugin.core.log.Log
    message: "{{ 'x' * 3000000 }}"
  - id: small
    type: io.kestra.plugin.core.log.Log
    message: "{{ 'y' * 1000 }}"
"""


async def test_a_log_line_over_the_limit_keeps_its_head_and_says_so() -> None:
    async with MemoryEngine() as eng:
        state = await eng.run(await eng.deploy(FLOW))
        lines = [line.message for line in await eng.store.read_logs(state.id)]
    assert state.state == "SUCCESS"
    (big,) = [m for m in lines if m.startswith("x")]
    assert big == "x" * MAX_LOG + f" [cut: the line was 3000000 bytes, a log line keeps {MAX_LOG}]"
    assert "y" * 1000 in lines
