"""Blueprints: ready flows shipped with the engine (``engine/blueprints/flows/*.yaml``).

Each file is a flow whose first comment lines say what the catalog shows (``# title: ...``,
``# tags: a, b``, and ``# expect: STATE`` when a run does not end SUCCESS on purpose). The flow's
``id`` is the blueprint's id. Every blueprint validates and runs without the internet (the test suite
runs each one).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from engine.core.errors import EngineError
from engine.yamlpos import load_yaml

__all__ = ["Blueprint", "BlueprintNotFound", "all_blueprints", "blueprint"]

_HEADER = re.compile(r"^#\s*(?P<key>[a-z]+):\s*(?P<value>.*?)\s*$")
_TASK_TYPE = re.compile(r"^\s*(?:-\s+)?type:\s*[\"']?(io\.kestra\.plugin\.[A-Za-z0-9_.]+)", re.M)


class BlueprintNotFound(EngineError):
    """No blueprint has this id; the message names the closest ones."""


@dataclass(frozen=True)
class Blueprint:
    id: str
    title: str
    description: str
    tags: tuple[str, ...]
    namespace: str
    source: str
    expect: str = "SUCCESS"

    @property
    def included_tasks(self) -> list[str]:
        """The task and trigger types the flow uses (Kestra's ``includedTasks``)."""
        return sorted(set(_TASK_TYPE.findall(self.source)))

    def summary(self) -> dict[str, Any]:
        """What the list shows (Kestra's BlueprintItem)."""
        return {
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "tags": list(self.tags),
            "namespace": self.namespace,
            "includedTasks": self.included_tasks,
        }

    def document(self) -> dict[str, Any]:
        """One blueprint with its flow's source (Kestra's ``flow``)."""
        return {**self.summary(), "flow": self.source}


def _parse(source: str, name: str) -> Blueprint:
    meta: dict[str, str] = {}
    for line in source.splitlines():
        if not line.startswith("#"):
            break
        match = _HEADER.match(line)
        if match:
            meta[match["key"]] = match["value"]
    data, _ = load_yaml(source, file=name)
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        raise EngineError(f"blueprint {name}: not a flow with an id")
    return Blueprint(
        id=data["id"],
        title=meta.get("title") or str(data["id"]),
        description=str(data.get("description") or ""),
        tags=tuple(t.strip() for t in meta.get("tags", "").split(",") if t.strip()),
        namespace=str(data.get("namespace", "")),
        source=source,
        expect=meta.get("expect", "SUCCESS"),
    )


@cache
def all_blueprints() -> tuple[Blueprint, ...]:
    """Every shipped blueprint, by id."""
    folder = files(__package__).joinpath("flows")
    found = [
        _parse(entry.read_text(encoding="utf-8"), entry.name)
        for entry in folder.iterdir()
        if entry.name.endswith(".yaml")
    ]
    return tuple(sorted(found, key=lambda b: b.id))


def blueprint(blueprint_id: str) -> Blueprint:
    """The blueprint ``blueprint_id``; BlueprintNotFound names the closest ids."""
    for item in all_blueprints():
        if item.id == blueprint_id:
            return item
    ids = [b.id for b in all_blueprints()]
    close = difflib.get_close_matches(blueprint_id, ids, n=3, cutoff=0.4)
    hint = f"did you mean {' or '.join(close)}?" if close else "run `engine blueprints list` to see them"
    raise BlueprintNotFound(f"no blueprint {blueprint_id!r}; {hint}")


def search(q: str | None = None, tags: list[str] | None = None) -> list[Blueprint]:
    """Blueprints whose id, title or description contains ``q`` and that carry every tag of ``tags``."""
    needle = (q or "").lower()
    wanted = {t.lower() for t in tags or []}
    return [
        b
        for b in all_blueprints()
        if (not needle or needle in f"{b.id} {b.title} {b.description}".lower())
        and wanted <= {t.lower() for t in b.tags}
    ]
