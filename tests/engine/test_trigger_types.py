"""A trigger type nothing serves is refused when the flow loads, with the closest known ones."""

from __future__ import annotations

import pytest

from engine.core.errors import FlowValidationError
from engine.loader.loader import load_flow
from plugins.registry import Registry, default_registry
from triggers.nats import NATS_REALTIME_TYPES
from triggers.polling import polling_types
from triggers.realtime import realtime_types
from triggers.schedule import FLOW_TYPES, SCHEDULE_TYPES
from webserver.routes.webhook import WEBHOOK


def flow(trigger_type: str, extra: str = "") -> str:
    return f"""id: t
namespace: ns
tasks:
  - id: a
    type: io.kestra.plugin.core.log.Log
    message: hi
triggers:
  - id: trig
    type: {trigger_type}
{extra}"""


def test_an_unknown_trigger_type_names_the_closest_known_ones() -> None:
    with pytest.raises(FlowValidationError) as info:
        load_flow(flow("io.kestra.plugin.core.trigger.Schedul", "    cron: '@daily'"))
    issue = info.value.issues[0]
    assert issue.path == "triggers[0].type" and issue.line == 9
    assert "unknown trigger type" in issue.message
    assert "did you mean 'io.kestra.plugin.core.trigger.Schedule'" in issue.message
    with pytest.raises(FlowValidationError, match=r"the known trigger types: .*Webhook"):
        load_flow(flow("com.example.Nothing"))


def test_every_type_the_engine_serves_is_known() -> None:
    served = {
        *SCHEDULE_TYPES,
        *FLOW_TYPES,
        WEBHOOK,
        *NATS_REALTIME_TYPES,
        *polling_types(),
        *realtime_types(),
    }
    assert served <= default_registry().trigger_types()
    assert load_flow(flow("io.kestra.core.models.triggers.types.Schedule", "    cron: '@daily'")).triggers


def test_a_registry_that_knows_no_trigger_judges_none() -> None:
    tasks_only = Registry()
    tasks_only.add(default_registry().resolve("io.kestra.plugin.core.log.Log"))
    loaded = load_flow(flow("com.example.Anything"), registry=tasks_only)
    assert loaded.triggers[0].type == "com.example.Anything"
