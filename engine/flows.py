"""Deployed flows: parse once per revision, deploy files and directories."""

from __future__ import annotations

from pathlib import Path

import msgspec

from engine.core.errors import FlowNotFound
from engine.core.model import Flow
from engine.core.ports import Flows
from engine.loader.loader import is_test_suite, load_flow_revision
from plugins.registry import Registry


class FlowCache:
    """Flows by (namespace, id, revision), read from the FLOWS stream and parsed once."""

    def __init__(self, store: Flows, registry: Registry | None = None) -> None:
        self.store = store
        self.registry = registry  # None: the installed plugins (engine.testing passes its own)
        self._cache: dict[tuple[str, str, int], Flow] = {}

    async def get(self, namespace: str, flow_id: str, revision: int | None = None) -> Flow:
        if revision is not None and (namespace, flow_id, revision) in self._cache:
            return self._cache[(namespace, flow_id, revision)]
        rev = await self.store.get_flow(namespace, flow_id, revision)
        if rev is None or rev.deleted:
            what = f"{namespace}.{flow_id}" + (f" revision {revision}" if revision is not None else "")
            raise FlowNotFound(f"flow {what} is not deployed")
        key = (namespace, flow_id, rev.revision)
        if key not in self._cache:
            self._cache[key] = load_flow_revision(rev.source, rev.revision, registry=self.registry)
        return self._cache[key]

    async def deploy(self, source: str, file: str | None = None) -> Flow:
        """Validate then store a flow; an invalid one raises FlowValidationError and stores nothing."""
        flow = load_flow_revision(source, 1, file=file, registry=self.registry)
        rev = await self.store.put_flow(flow.namespace, flow.id, source)
        flow = msgspec.structs.replace(flow, revision=rev.revision)
        self._cache[(flow.namespace, flow.id, rev.revision)] = flow
        return flow

    async def deploy_dir(self, directory: Path) -> list[Flow]:
        files = sorted(p for p in Path(directory).rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())
        out = []
        for path in files:
            source = path.read_text()
            if not is_test_suite(source):  # the flows' unit tests may live beside them
                out.append(await self.deploy(source, file=str(path)))
        return out
