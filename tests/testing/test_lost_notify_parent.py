"""A subflow's end told to its parent is never lost: when the publish fails after the child's end is
stored (a NATS leader election, seen in the chaos benchmark with seed 9), the child's next load tells
the parent again, and the parent ends."""

from __future__ import annotations

import pytest

from engine.core import events as ev
from engine.testing.memory import MemoryStore
from engine.testing.run import MemoryEngine

pytestmark = pytest.mark.anyio

CHILD = """
id: child
namespace: lost.test
tasks:
  - id: work
    type: io.kestra.plugin.core.debug.Return
    format: done
"""

PARENT = """
id: parent
namespace: lost.test
tasks:
  - id: call
    type: io.kestra.plugin.core.flow.Subflow
    namespace: lost.test
    flowId: child
    wait: true
"""


class FailsOnce(MemoryStore):
    """The first SubflowEnded sent to a parent fails, as a publish does while a stream has no leader."""

    failed = 0

    async def send_input(self, execution_id: str, item: ev.Input, msg_id: str | None = None) -> None:
        if isinstance(item, ev.SubflowEnded) and not self.failed:
            self.failed += 1
            raise TimeoutError("nats: no response from stream")
        await super().send_input(execution_id, item, msg_id=msg_id)


async def test_a_parent_is_told_its_child_ended_even_when_the_first_telling_failed() -> None:
    store = FailsOnce()
    async with MemoryEngine(store=store) as eng:
        await eng.deploy(CHILD)
        parent = await eng.deploy(PARENT)
        state = await eng.run(parent, timeout=10)
    assert store.failed == 1
    assert state.state == "SUCCESS"
