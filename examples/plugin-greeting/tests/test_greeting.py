"""The example plugin on the real engine (in memory), before it is installed: both versions side by
side, the latest by default, an unknown version refused when the flow loads."""

from __future__ import annotations

import pytest
from engine_greeting import register

from engine.core.errors import FlowValidationError
from engine.loader.loader import load_flow
from engine.testing.run import MemoryEngine, plugin_registry

pytestmark = pytest.mark.anyio

FLOW = """
id: greet
namespace: company.team
tasks:
  - id: latest
    type: io.example.greeting.Hello
    name: Ada
    style: upper
  - id: pinned
    type: io.example.greeting.Hello
    version: 1.0.0
    name: "{{ outputs.latest.greeting }}"
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_the_latest_runs_by_default_and_version_pins_the_old_one() -> None:
    registry = plugin_registry(register)
    async with MemoryEngine(registry=registry) as eng:
        flow = await eng.deploy(FLOW)
        state = await eng.run(flow)
    assert state.state == "SUCCESS"
    outputs = {tr.task_id: tr.outputs for tr in state.taskruns.values()}
    assert outputs["latest"] == {"greeting": "HELLO, ADA!", "length": 11}
    assert outputs["pinned"] == {"greeting": "Hello, HELLO, ADA!!"}  # 1.0.0: no length, no style


def test_a_property_of_another_version_is_refused_for_the_one_picked() -> None:
    registry = plugin_registry(register)
    pinned_with_v2_property = FLOW.replace("    version: 1.0.0\n", "    version: 1.0.0\n    style: upper\n")
    with pytest.raises(FlowValidationError, match="style"):
        load_flow(pinned_with_v2_property, registry=registry)


def test_an_unknown_version_is_refused_with_the_installed_ones() -> None:
    registry = plugin_registry(register)
    with pytest.raises(FlowValidationError) as info:
        load_flow(FLOW.replace("version: 1.0.0", "version: 3.1.0"), registry=registry)
    message = str(info.value)
    assert "unknown version '3.1.0' of io.example.greeting.Hello; installed: 1.0.0, 2.0.0" in message
    assert "tasks[1].version" in message and "line 11" in message


def test_oldest_and_latest_keywords() -> None:
    registry = plugin_registry(register)
    assert registry.resolve("io.example.greeting.Hello", "OLDEST").version == "1.0.0"
    assert registry.resolve("io.example.greeting.Hello", "latest").version == "2.0.0"
    assert registry.resolve("io.example.greeting.Hello").version == "2.0.0"
