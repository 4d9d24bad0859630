"""A plugin-test context that renders expressions for real (the SQL tasks render their own SQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
from plugin_harness import FakeContext

import plugins.jdbc
import plugins.serdes
from engine.expressions import Expressions
from plugins.api import TaskResult
from plugins.registry import Registry


class RenderingContext(FakeContext):
    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self._expressions = Expressions()

    async def render(self, value: Any) -> Any:
        return await self._expressions.render_value_async(value, self.variables)


def registry() -> Registry:
    reg = Registry()
    plugins.jdbc.register(reg)
    plugins.serdes.register(reg)
    return reg


async def run_task(type_name: str, props: dict[str, Any], ctx: FakeContext) -> TaskResult:
    spec = registry().resolve(type_name)
    assert spec.run is not None
    return await spec.run(msgspec.convert(props, spec.props, strict=False), ctx)
