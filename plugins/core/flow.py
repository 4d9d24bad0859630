"""Flowable tasks: the decider expands them, no worker runs them.

Their child task lists (``branches``) are parsed by the flow loader; the Structs here only
type the remaining properties.
"""

from __future__ import annotations

from typing import Any

import msgspec

from plugins.api import PluginSpec

P = "io.kestra.plugin.core.flow."


class Sequential(msgspec.Struct, frozen=True):
    pass


class Parallel(msgspec.Struct, frozen=True):
    concurrent: int | str = 0


class Switch(msgspec.Struct, frozen=True):
    value: Any = None


class If(msgspec.Struct, frozen=True):
    condition: Any = None


class ForEach(msgspec.Struct, frozen=True):
    values: Any = None
    concurrencyLimit: int | str = 1


class EachSequential(msgspec.Struct, frozen=True):
    value: Any = None


class EachParallel(msgspec.Struct, frozen=True):
    value: Any = None
    concurrent: int | str = 0


class Dag(msgspec.Struct, frozen=True):
    concurrent: int | str = 0


class AllowFailure(msgspec.Struct, frozen=True):
    pass


class Subflow(msgspec.Struct, frozen=True):
    namespace: str
    flowId: str
    revision: int | str | None = None
    inputs: dict[str, Any] = msgspec.field(default_factory=dict)
    labels: dict[str, Any] | list[dict[str, Any]] = msgspec.field(default_factory=dict)
    wait: bool | str = True
    transmitFailed: bool | str = True
    inheritLabels: bool | str = False
    outputs: dict[str, Any] = msgspec.field(default_factory=dict)
    scheduleDate: str | None = None


class Pause(msgspec.Struct, frozen=True):
    delay: Any = None
    onResume: list[dict[str, Any]] | None = None


class WaitFor(msgspec.Struct, frozen=True):
    condition: Any
    checkFrequency: dict[str, Any] | None = None
    failOnMaxReached: bool | str = False


class WorkingDirectory(msgspec.Struct, frozen=True):
    inputFiles: dict[str, Any] | str | None = None
    outputFiles: list[str] | None = None
    namespaceFiles: Any = None
    cache: Any = None


class ForEachItem(msgspec.Struct, frozen=True):
    items: str
    namespace: str
    flowId: str
    batch: dict[str, Any] = msgspec.field(default_factory=dict)
    revision: int | str | None = None
    inputs: dict[str, Any] = msgspec.field(default_factory=dict)
    labels: dict[str, Any] | list[dict[str, Any]] = msgspec.field(default_factory=dict)
    wait: bool | str = True
    transmitFailed: bool | str = True
    inheritLabels: bool | str = False
    scheduleDate: str | None = None


_BLOCK = ("tasks", "errors", "finally")

SPECS = [
    PluginSpec(
        P + "Sequential",
        "flowable",
        Sequential,
        branches=_BLOCK,
        description="Run tasks one after the other.",
    ),
    PluginSpec(
        P + "Parallel",
        "flowable",
        Parallel,
        branches=_BLOCK,
        description="Run tasks in parallel (`concurrent` = max at once, 0 = all).",
    ),
    PluginSpec(
        P + "Switch",
        "flowable",
        Switch,
        branches=("cases", "defaults", "errors", "finally"),
        description="Run the branch whose case key equals the rendered `value`.",
    ),
    PluginSpec(
        P + "If",
        "flowable",
        If,
        branches=("then", "else", "errors", "finally"),
        description="Run `then` when `condition` is truthy, else `else`.",
    ),
    PluginSpec(
        P + "ForEach",
        "flowable",
        ForEach,
        branches=_BLOCK,
        description="Run `tasks` once per value of `values`.",
    ),
    PluginSpec(
        P + "EachSequential",
        "flowable",
        EachSequential,
        branches=_BLOCK,
        description="Deprecated alias of ForEach with concurrencyLimit 1.",
    ),
    PluginSpec(
        P + "EachParallel",
        "flowable",
        EachParallel,
        branches=_BLOCK,
        description="Deprecated alias of ForEach running values in parallel.",
    ),
    PluginSpec(
        P + "Dag", "flowable", Dag, branches=_BLOCK, description="Run tasks as a DAG of `dependsOn` edges."
    ),
    PluginSpec(
        P + "AllowFailure",
        "flowable",
        AllowFailure,
        branches=_BLOCK,
        description="Run tasks; a failure becomes WARNING and the flow continues.",
    ),
    PluginSpec(
        P + "WaitFor",
        "flowable",
        WaitFor,
        aliases=(P + "LoopUntil",),
        branches=_BLOCK,
        description="Run `tasks` again every `checkFrequency.interval` until `condition` is truthy.",
    ),
    PluginSpec(
        P + "WorkingDirectory",
        "flowable",
        WorkingDirectory,
        branches=_BLOCK,
        description="Run tasks one after the other in one shared working directory.",
    ),
    PluginSpec(
        P + "ForEachItem",
        "flowable",
        ForEachItem,
        branches=("errors", "finally"),
        description="Split a file of items in batches and run one subflow execution per batch.",
    ),
    PluginSpec(
        P + "Pause",
        "flowable",
        Pause,
        branches=_BLOCK,
        description="Pause the execution until resumed, or for `delay`; fail after `timeout` if not resumed.",
    ),
    PluginSpec(
        P + "Subflow",
        "flowable",
        Subflow,
        aliases=("io.kestra.core.tasks.flows.Flow",),
        branches=("errors", "finally"),
        description="Start an execution of another flow, optionally wait for it.",
    ),
]
