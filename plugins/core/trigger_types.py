"""Property declarations of the realtime and polling trigger types (validated when a flow loads).

Only msgspec here: ``plugins/core/trigger.py`` declares these types to the plugin registry and the
trigger role (``triggers.nats``, ``triggers.http``) serves them. Each Struct lists a trigger's own
properties plus Kestra's common trigger properties (``AbstractTrigger``), so a flow written for
Kestra loads.
A property may be an expression anywhere (the flow loader accepts ``{{ ... }}`` for any type).
"""

from __future__ import annotations

from typing import Any

import msgspec

# Served by the trigger role and the API with their properties read there (not declared here).
SCHEDULE_TYPES = ("io.kestra.plugin.core.trigger.Schedule", "io.kestra.core.models.triggers.types.Schedule")
FLOW_TYPES = ("io.kestra.plugin.core.trigger.Flow", "io.kestra.core.models.triggers.types.Flow")
WEBHOOK_TYPES = ("io.kestra.plugin.core.trigger.Webhook",)
NATS_REALTIME_TYPES = ("io.kestra.plugin.nats.RealtimeTrigger", "io.kestra.plugin.nats.core.RealtimeTrigger")
HTTP_TRIGGER_TYPES = ("io.kestra.plugin.core.http.Trigger", "io.kestra.plugin.fs.http.Trigger")

DELIVER_POLICIES = ("All", "Last", "New", "ByStartSequence", "ByStartTime", "LastPerSubject")


class TriggerCommon(msgspec.Struct, frozen=True, kw_only=True):
    """Kestra's AbstractTrigger properties (``id``, ``type`` and ``disabled`` are read by the loader)."""

    description: str | None = None
    conditions: list[Any] | None = None
    stopAfter: list[str] | None = None
    labels: Any = None
    logLevel: str | None = None
    minLogLevel: str | None = None
    logToFile: bool | None = None
    workerGroup: Any = None
    failOnTriggerError: bool | None = None
    allowConcurrent: bool | None = None
    version: str | None = None


class NatsRealtimeTrigger(TriggerCommon, frozen=True, kw_only=True):
    """``io.kestra.plugin.nats.RealtimeTrigger``: one execution per NATS message."""

    url: str
    subject: str
    username: str | None = None
    password: str | None = None
    token: str | None = None
    creds: str | None = None
    durableId: str | None = None
    since: str | None = None
    batchSize: int = 10
    deliverPolicy: str = "All"


class HttpTrigger(TriggerCommon, frozen=True, kw_only=True):
    """``io.kestra.plugin.core.http.Trigger``: poll a URI, start an execution when the response matches."""

    uri: str
    method: str = "GET"
    body: str | None = None
    params: dict[str, Any] | None = None
    formData: dict[str, Any] | None = None
    contentType: str | None = None
    headers: dict[str, Any] | None = None
    responseCondition: str = "{{ response.statusCode < 400 }}"
    interval: str = "PT60S"
    options: dict[str, Any] | None = None
    encryptBody: bool | None = None
    sslOptions: dict[str, Any] | None = None
