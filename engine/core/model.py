"""The flow model: what a parsed, validated Kestra flow is.

The loader (``engine.loader``) builds these from YAML; the decider and workers only read them.
Every task keeps its plugin-specific properties unrendered in ``props``; child task lists of
flowable tasks are parsed into ``branches`` so the decider can walk them.
"""

from __future__ import annotations

from typing import Any

import msgspec


class Retry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Kestra retry policy: ``type`` is constant, exponential or random; durations in seconds."""

    type: str = "constant"
    interval: float | None = None
    max_interval: float | None = None
    min_interval: float | None = None
    delay_factor: float | None = None
    max_attempt: int | None = None
    max_duration: float | None = None
    warning_on_retry: bool = False
    behavior: str | None = None


class Task(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One task as written in the flow.

    ``type`` is the canonical plugin type (aliases already resolved); ``raw_type`` what the
    flow said. ``props`` holds the plugin's own properties, unrendered. ``branches`` holds
    the child task lists of a flowable: keys ``tasks``, ``then``, ``else``, ``defaults``,
    ``case:<value>`` for each Switch case (in file order), and the task-level ``errors`` and
    ``finally``. For Dag, ``tasks`` holds the inner tasks and ``depends_on`` is set on each.
    """

    id: str
    type: str
    raw_type: str = ""
    props: dict[str, Any] = msgspec.field(default_factory=dict)
    branches: dict[str, tuple[Task, ...]] = msgspec.field(default_factory=dict)
    description: str | None = None
    disabled: bool = False
    allow_failure: bool = False
    allow_warning: bool = False
    timeout: float | None = None
    retry: Retry | None = None
    worker_group: str | None = None
    log_level: str | None = None
    run_if: str | None = None
    depends_on: tuple[str, ...] = ()
    flowable: bool = False


class Input(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A typed flow input. ``extra`` keeps type-specific fields (min, max, values, validator, itemType...)."""

    id: str
    type: str = "STRING"
    required: bool = True
    defaults: Any = None
    description: str | None = None
    display_name: str | None = None
    extra: dict[str, Any] = msgspec.field(default_factory=dict)
    depends_on: dict[str, Any] | None = None


class Output(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A flow output: ``value`` is an expression rendered when the execution ends."""

    id: str
    value: Any
    type: str = "STRING"
    description: str | None = None
    required: bool = True


class Trigger(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A trigger as written; the scheduler interprets ``props`` per ``type``."""

    id: str
    type: str
    props: dict[str, Any] = msgspec.field(default_factory=dict)
    disabled: bool = False


class SLA(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A flow SLA: MAX_DURATION (``duration`` seconds) or EXECUTION_ASSERTION (``assert`` expression)."""

    id: str
    type: str
    behavior: str = "FAIL"
    duration: float | None = None
    assert_: str | None = None
    labels: dict[str, str] = msgspec.field(default_factory=dict)


class Concurrency(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    limit: int
    behavior: str = "QUEUE"


class PluginDefault(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    type: str
    values: dict[str, Any]
    forced: bool = False


class Flow(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A whole flow. ``source`` is the YAML text it was parsed from (kept for revisions)."""

    id: str
    namespace: str
    tasks: tuple[Task, ...]
    revision: int = 1
    description: str | None = None
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    inputs: tuple[Input, ...] = ()
    variables: dict[str, Any] = msgspec.field(default_factory=dict)
    outputs: tuple[Output, ...] = ()
    errors: tuple[Task, ...] = ()
    finally_: tuple[Task, ...] = ()
    after_execution: tuple[Task, ...] = ()
    triggers: tuple[Trigger, ...] = ()
    plugin_defaults: tuple[PluginDefault, ...] = ()
    concurrency: Concurrency | None = None
    sla: tuple[SLA, ...] = ()
    retry: Retry | None = None
    timeout: float | None = None
    disabled: bool = False
    source: str = ""

    @property
    def key(self) -> str:
        return f"{self.namespace}.{self.id}"
