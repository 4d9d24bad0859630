"""Resolve Kestra type names (current, legacy ``io.kestra.core.tasks.*``, short) to plugins."""

from __future__ import annotations

import dataclasses
import difflib
from importlib.metadata import entry_points

from packaging.version import InvalidVersion, Version

from engine.core.errors import PluginNotFound
from plugins.api import PluginSpec

# What a task's `version:` may say besides an installed version (Kestra 0.22's versioned plugins).
LATEST, OLDEST = "LATEST", "OLDEST"


def version_key(version: str) -> tuple[int, Version | str]:
    """PEP 440 order (1.10 after 1.9, 2.0.0rc1 before 2.0.0); one it cannot read sorts first, by text."""
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)


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
        self._versions: dict[str, dict[str, PluginSpec]] = {}  # canonical type -> version -> spec
        # the version of the distribution whose entry point is registering (a spec without its own)
        self.loading_version: str | None = None

    def add(self, spec: PluginSpec) -> None:
        if spec.version is None and self.loading_version is not None:
            spec = dataclasses.replace(spec, version=self.loading_version)
        if spec.extra.get("trigger"):
            names = (spec.type, *spec.aliases)
            self._trigger_names.update(names)
            if not spec.extra.get("unchecked"):
                self._triggers.update(dict.fromkeys(names, spec))
            return
        if spec.version is not None:
            versions = self._versions.setdefault(spec.type, {})
            versions[spec.version] = spec
            spec = versions[max(versions, key=version_key)]  # the names lead to the latest
        self._canonical[spec.type] = spec
        for name in (spec.type, *spec.aliases):
            self._by_name[name] = spec

    def copy(self) -> Registry:
        """An independent registry with the same plugins (add to it without changing this one)."""
        other = Registry()
        other._by_name = dict(self._by_name)
        other._canonical = dict(self._canonical)
        other._triggers = dict(self._triggers)
        other._trigger_names = set(self._trigger_names)
        other._versions = {k: dict(v) for k, v in self._versions.items()}
        return other

    def versions(self, name: str) -> list[str]:
        """The installed versions of a type, oldest first (empty: unversioned or unknown)."""
        spec = self._lookup(name)
        found = self._versions.get(spec.type, {}) if spec is not None else {}
        return sorted(found, key=version_key)

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

    def resolve(self, name: str, version: str | None = None) -> PluginSpec:
        """The plugin ``name`` names; ``version`` picks one of its installed versions (an exact one,
        ``LATEST`` or ``OLDEST``; None: the latest)."""
        spec = self._lookup(name)
        if spec is None:
            raise PluginNotFound(f"unknown task type {name!r}; " + self.suggest(name))
        if version is None or version.upper() == LATEST:
            return spec
        versions = self._versions.get(spec.type, {})
        ordered = sorted(versions, key=version_key)
        if version.upper() == OLDEST and ordered:
            return versions[ordered[0]]
        if version in versions:
            return versions[version]
        known = ", ".join(ordered) if ordered else "none (this plugin is not versioned)"
        raise PluginNotFound(
            f"unknown version {version!r} of {spec.type}; installed: {known} (or {LATEST}, {OLDEST})"
        )

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
        # A distribution's version parses its METADATA file (5 ms here): once for all its plugins.
        # (Its name parses it too: the entry points of one distribution share its object.)
        versions: dict[int, str] = {}
        for ep in entry_points(group="engine.plugins"):
            dist = ep.dist
            if dist is not None and id(dist) not in versions:
                versions[id(dist)] = dist.version
            reg.loading_version = versions[id(dist)] if dist is not None else None
            try:
                ep.load()(reg)
            finally:
                reg.loading_version = None
        _default = reg
    return _default
