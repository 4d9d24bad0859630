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


class _Launch(msgspec.Struct, frozen=True, kw_only=True):
    """What starts executions of another flow (Subflow, ForEachItem's batches)."""

    namespace: str
    flowId: str
    revision: int | str | None = None
    inputs: dict[str, Any] = msgspec.field(default_factory=dict)
    labels: dict[str, Any] | list[dict[str, Any]] = msgspec.field(default_factory=dict)
    wait: bool | str = True
    transmitFailed: bool | str = True
    inheritLabels: bool | str = False
    scheduleDate: str | None = None


class Subflow(_Launch, frozen=True, kw_only=True):
    outputs: dict[str, Any] = msgspec.field(default_factory=dict)


class Pause(msgspec.Struct, frozen=True):
    delay: Any = None
    onResume: list[dict[str, Any]] | None = None


class WaitFor(msgspec.Struct, frozen=True):
    condition: Any
    checkFrequency: dict[str, Any] | None = None
    failOnMaxReached: bool | str = False


class WorkingDirectoryCache(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    patterns: list[str]
    ttl: str | None = None  # ISO-8601: an archive older than this is deleted instead of restored


class WorkingDirectory(msgspec.Struct, frozen=True):
    inputFiles: dict[str, Any] | str | None = None
    outputFiles: list[str] | str | None = None
    namespaceFiles: Any = None
    cache: WorkingDirectoryCache | None = None


class ForEachItem(_Launch, frozen=True, kw_only=True):
    items: str
    batch: dict[str, Any] = msgspec.field(default_factory=dict)


_BLOCK = ("tasks", "errors", "finally")
_CASES = ("cases", "defaults", "errors", "finally")
_THEN_ELSE = ("then", "else", "errors", "finally")
_HANDLERS = ("errors", "finally")


def _flowable(
    props: type[msgspec.Struct],
    description: str,
    branches: tuple[str, ...] = _BLOCK,
    aliases: tuple[str, ...] = (),
) -> PluginSpec:
    """The spec of ``io.kestra.plugin.core.flow.<props' class name>``."""
    return PluginSpec(
        P + props.__name__, "flowable", props, aliases=aliases, branches=branches, description=description
    )


SPECS = [
    _flowable(Sequential, "Run tasks one after the other."),
    _flowable(Parallel, "Run tasks in parallel (`concurrent` = max at once, 0 = all)."),
    _flowable(Switch, "Run the branch whose case key equals the rendered `value`.", _CASES),
    _flowable(If, "Run `then` when `condition` is truthy, else `else`.", _THEN_ELSE),
    _flowable(ForEach, "Run `tasks` once per value of `values`."),
    _flowable(EachSequential, "Deprecated alias of ForEach with concurrencyLimit 1."),
    _flowable(EachParallel, "Deprecated alias of ForEach running values in parallel."),
    _flowable(Dag, "Run tasks as a DAG of `dependsOn` edges."),
    _flowable(AllowFailure, "Run tasks; a failure becomes WARNING and the flow continues."),
    _flowable(
        WaitFor,
        "Run `tasks` again every `checkFrequency.interval` until `condition` is truthy.",
        aliases=(P + "LoopUntil",),
    ),
    _flowable(WorkingDirectory, "Run tasks one after the other in one shared working directory."),
    _flowable(
        ForEachItem, "Split a file of items in batches and run one subflow execution per batch.", _HANDLERS
    ),
    _flowable(
        Pause, "Pause the execution until resumed, or for `delay`; fail after `timeout` if not resumed."
    ),
    _flowable(
        Subflow,
        "Start an execution of another flow, optionally wait for it.",
        _HANDLERS,
        aliases=("io.kestra.core.tasks.flows.Flow",),
    ),
]
