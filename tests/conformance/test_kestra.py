"""Kestra conformance: every asserted outcome of the corpus manifest, on one Runtime per module."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from corpus import Case, asserted_cases, corpus_root, run_case
from expected_failures import EXPECTED_FAILURES

ROOT = corpus_root()
if not (ROOT / "manifest.yaml").is_file():
    # Missing, the suite would pass with the corpus unchecked: that is a failure, not a skip.
    pytest.fail(f"the Kestra conformance corpus is missing: expected {ROOT}/manifest.yaml", pytrace=False)

pytestmark = pytest.mark.anyio

CASES = asserted_cases(ROOT)
# The trigger service's step consumers, whose backlog a Flow trigger case awaits. Its own: the
# session's server may hold a "triggers" consumer a killed scheduler left far behind (test_scheduler_kill).
TRIGGERS_DURABLE = f"conformance-{uuid.uuid4().hex[:8]}"


def _param(case: Case) -> Any:
    reason = EXPECTED_FAILURES.get(case.id)
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason is not None else []
    return pytest.param(case, id=case.id, marks=marks)


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def runtime(nats_url: str, anyio_backend: str) -> AsyncIterator[Any]:
    from engine.runtime import Runtime
    from triggers.service import TriggerService

    async with Runtime(nats_url=nats_url) as rt:
        roles = [
            asyncio.create_task(rt.executor().run()),
            asyncio.create_task(rt.worker(concurrency=32).run()),
            # Only the corpus's namespaces: the session's server also holds the flows other test
            # modules left, whose triggers would run here (test_conditions' `not-failed` and
            # `ns-prefix` listeners fire on each other's executions without end).
            asyncio.create_task(
                TriggerService(
                    rt,
                    schedules=False,
                    durable=TRIGGERS_DURABLE,
                    inactive_threshold=60.0,
                    namespace="io.kestra",
                ).run()
            ),
        ]
        try:
            yield rt
        finally:
            for task in roles:
                task.cancel()
            await asyncio.gather(*roles, return_exceptions=True)


def test_expected_failures_are_cases() -> None:
    ids = {c.id for c in CASES}
    unknown = sorted(set(EXPECTED_FAILURES) - ids)
    assert not unknown, f"EXPECTED_FAILURES names cases that are not asserted: {unknown}"


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
async def test_case(case: Case, runtime: Any) -> None:
    result = await run_case(case, runtime, root=ROOT, triggers_durable=TRIGGERS_DURABLE)
    assert result.passed, result.reason
