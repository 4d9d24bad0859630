"""trigger.Toggle: enable or disable a flow's Schedule trigger from a flow."""

from __future__ import annotations

import msgspec

from engine.core.errors import TaskFailed
from plugins.api import PluginSpec, RunContext, TaskResult
from triggers import types as trigger_types


class Toggle(msgspec.Struct, frozen=True):
    trigger: str
    enabled: bool | str = False
    namespace: str | None = None
    flowId: str | None = None


async def run_toggle(props: Toggle, ctx: RunContext) -> TaskResult:
    store = getattr(ctx, "store", None)
    if store is None:
        raise TaskFailed("trigger.Toggle needs the engine's store (run it on a worker)", retryable=False)
    from triggers.kv import TriggerKV
    from triggers.service import set_disabled

    namespace = props.namespace or ctx.namespace
    flow_id = props.flowId or ctx.flow_id
    enabled = str(props.enabled).lower() == "true"
    kv = TriggerKV(store)
    await kv.setup()
    await set_disabled(kv, namespace, flow_id, props.trigger, not enabled)
    ctx.log("INFO", f"trigger {namespace}.{flow_id}.{props.trigger} {'enabled' if enabled else 'disabled'}")
    return TaskResult()


SPECS = [
    PluginSpec(
        "io.kestra.plugin.core.trigger.Toggle",
        "runnable",
        Toggle,
        run=run_toggle,
        description="Enable (`enabled: true`) or disable a flow's trigger.",
    ),
    # trigger types whose properties are checked when a flow loads (not tasks: `extra["trigger"]`)
    PluginSpec(
        trigger_types.NATS_REALTIME_TYPES[0],
        "runnable",
        trigger_types.NatsRealtimeTrigger,
        aliases=trigger_types.NATS_REALTIME_TYPES[1:],
        description="Realtime trigger: one execution per message of a NATS subject.",
        extra={"trigger": "realtime"},
    ),
    PluginSpec(
        trigger_types.HTTP_TRIGGER_TYPES[0],
        "runnable",
        trigger_types.HttpTrigger,
        aliases=trigger_types.HTTP_TRIGGER_TYPES[1:],
        description="Polling trigger: call a URI every `interval`, start an execution when it matches.",
        extra={"trigger": "polling"},
    ),
]
