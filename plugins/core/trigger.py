"""trigger.Toggle: enable or disable a flow's trigger from a flow; and the trigger types whose
properties a flow load checks (the trigger role serves them)."""

from __future__ import annotations

import msgspec

from plugins.api import PluginSpec, RunContext, TaskResult, runnable
from plugins.core import trigger_types as T


class Toggle(msgspec.Struct, frozen=True):
    trigger: str
    enabled: bool | str = False
    namespace: str | None = None
    flowId: str | None = None


async def run_toggle(props: Toggle, ctx: RunContext) -> TaskResult:
    namespace = props.namespace or ctx.namespace
    flow_id = props.flowId or ctx.flow_id
    enabled = str(props.enabled).lower() == "true"
    await ctx.set_trigger_disabled(namespace, flow_id, props.trigger, not enabled)
    ctx.log("INFO", f"trigger {namespace}.{flow_id}.{props.trigger} {'enabled' if enabled else 'disabled'}")
    return TaskResult()


def _declared(
    types: tuple[str, ...], props: type[T.TriggerCommon], kind: str, description: str
) -> PluginSpec:
    """A trigger type (not a task: ``extra["trigger"]``), its first name canonical."""
    return PluginSpec(
        types[0], "runnable", props, aliases=types[1:], description=description, extra={"trigger": kind}
    )


SPECS = [
    runnable(
        "io.kestra.plugin.core.trigger.Toggle",
        Toggle,
        run_toggle,
        "Enable (`enabled: true`) or disable a flow's trigger.",
    ),
    _declared(
        T.NATS_REALTIME_TYPES,
        T.NatsRealtimeTrigger,
        "realtime",
        "Realtime trigger: one execution per message of a NATS subject.",
    ),
    *(
        PluginSpec(
            types[0],
            "runnable",
            T.TriggerCommon,
            aliases=types[1:],
            description=description,
            extra={"trigger": kind, "unchecked": True},
        )
        for types, kind, description in (
            (T.SCHEDULE_TYPES, "schedule", "Schedule trigger: executions on a cron schedule."),
            (T.FLOW_TYPES, "flow", "Flow trigger: an execution when other executions end."),
            (T.WEBHOOK_TYPES, "webhook", "Webhook trigger: an execution per call of its URL."),
        )
    ),
    _declared(
        T.HTTP_TRIGGER_TYPES,
        T.HttpTrigger,
        "polling",
        "Polling trigger: call a URI every `interval`, start an execution when it matches.",
    ),
]
