"""A table of trigger plugins by Kestra type name: the shipped ones, then the ``engine.triggers``
entry points of installed packages (loaded once, on first use)."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from engine.logs import get_logger

log = get_logger("triggers.plugins")

P = TypeVar("P", bound=type)


class PluginTable(Generic[P]):
    def __init__(self, base: type, builtin: tuple[str, ...]) -> None:
        self.base = base  # the class a plugin must subclass to be listed here
        self.builtin = builtin  # modules that register the shipped plugins when imported
        self._by_type: dict[str, P] = {}
        self._loaded = False

    def register(self, cls: P) -> P:
        """Class decorator: ``cls`` serves every type name in ``cls.types``."""
        types: tuple[str, ...] = getattr(cls, "types", ())
        if not types:
            raise ValueError(f"{cls.__name__}.types names no trigger type")
        for name in types:
            self._by_type[name] = cls
        return cls

    def get(self, type_name: str) -> P | None:
        self._load()
        return self._by_type.get(type_name)

    def types(self) -> frozenset[str]:
        self._load()
        return frozenset(self._by_type)

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for module in self.builtin:
            importlib.import_module(module)
        for ep in entry_points(group="engine.triggers"):
            try:
                target = ep.load()
            except Exception as exc:  # a broken third-party plugin must not stop the scheduler
                log.warning("triggers.plugin_failed", entry_point=ep.name, error=str(exc)[:200])
                continue
            if isinstance(target, type) and issubclass(target, self.base):
                self.register(target)  # type: ignore[arg-type]
