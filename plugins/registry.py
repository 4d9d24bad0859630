"""Resolve Kestra type names (current, legacy ``io.kestra.core.tasks.*``, short) to plugins."""

from __future__ import annotations

import difflib
from importlib.metadata import entry_points

from engine.core.errors import PluginNotFound
from plugins.api import PluginSpec

# Legacy package prefixes Kestra still accepts, mapped to where those tasks live now.
_LEGACY_PREFIXES = (
    ("io.kestra.core.tasks.flows.", "io.kestra.plugin.core.flow."),
    ("io.kestra.core.tasks.debugs.", "io.kestra.plugin.core.debug."),
    ("io.kestra.core.tasks.executions.", "io.kestra.plugin.core.execution."),
    ("io.kestra.core.tasks.log.", "io.kestra.plugin.core.log."),
    ("io.kestra.core.tasks.outputs.", "io.kestra.plugin.core.output."),
    ("io.kestra.core.tasks.states.", "io.kestra.plugin.core.state."),
    ("io.kestra.core.tasks.storages.", "io.kestra.plugin.core.storage."),
    ("io.kestra.core.tasks.trigger.", "io.kestra.plugin.core.trigger."),
    ("io.kestra.core.tasks.kv.", "io.kestra.plugin.core.kv."),
    ("io.kestra.core.tasks.", "io.kestra.plugin.core."),
)


class Registry:
    """A mutable map from every accepted type name to its PluginSpec."""

    def __init__(self) -> None:
        self._by_name: dict[str, PluginSpec] = {}
        self._canonical: dict[str, PluginSpec] = {}
        self._triggers: dict[str, PluginSpec] = {}  # trigger types whose properties a flow load checks
        self._trigger_names: set[str] = set()  # every trigger type a flow may name (checked or not)

    def add(self, spec: PluginSpec) -> None:
        if spec.extra.get("trigger"):
            names = (spec.type, *spec.aliases)
            self._trigger_names.update(names)
            if not spec.extra.get("unchecked"):
                self._triggers.update(dict.fromkeys(names, spec))
            return
        self._canonical[spec.type] = spec
        for name in (spec.type, *spec.aliases):
            self._by_name[name] = spec

    def __contains__(self, name: str) -> bool:
        return self._lookup(name) is not None

    def _lookup(self, name: str) -> PluginSpec | None:
        spec = self._by_name.get(name)
        if spec is not None:
            return spec
        for old, new in _LEGACY_PREFIXES:
            if name.startswith(old):
                spec = self._by_name.get(new + name[len(old) :])
                if spec is not None:
                    return spec
        return None

    def resolve(self, name: str) -> PluginSpec:
        spec = self._lookup(name)
        if spec is None:
            raise PluginNotFound(f"unknown task type {name!r}; " + self.suggest(name))
        return spec

    def suggest(self, name: str) -> str:
        close = difflib.get_close_matches(name, list(self._canonical), n=3, cutoff=0.5)
        if not close:
            tail = name.rsplit(".", 1)[-1].lower()
            close = [t for t in self._canonical if t.rsplit(".", 1)[-1].lower() == tail][:3]
        if close:
            return "did you mean " + " or ".join(repr(c) for c in close) + "?"
        return "run `engine plugins list` to see the known types"

    def trigger(self, name: str) -> PluginSpec | None:
        """The declaration of a trigger type (None: a type the loader accepts without checking)."""
        return self._triggers.get(name)

    def trigger_types(self) -> frozenset[str]:
        """Every trigger type the engine serves (empty: this registry knows none, and judges none)."""
        return frozenset(self._trigger_names)

    def suggest_trigger(self, name: str) -> str:
        known = sorted(self._trigger_names)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        if not close:
            tail = name.rsplit(".", 1)[-1].lower()
            close = [t for t in known if t.rsplit(".", 1)[-1].lower() == tail][:3]
        if close:
            return "did you mean " + " or ".join(repr(c) for c in close) + "?"
        return "the known trigger types: " + ", ".join(known)

    def specs(self, internal: bool = False) -> list[PluginSpec]:
        """Every plugin a flow may name (``internal`` ones, which the engine creates itself, on request)."""
        found = [s for s in self._canonical.values() if internal or not s.extra.get("internal")]
        return sorted(found, key=lambda s: s.type)


_default: Registry | None = None


def default_registry() -> Registry:
    """The registry with every plugin installed through the ``engine.plugins`` entry-point group."""
    global _default
    if _default is None:
        reg = Registry()
        for ep in entry_points(group="engine.plugins"):
            ep.load()(reg)
        _default = reg
    return _default
