"""Kestra's own Flow trigger test flows (../shared/conformance/kestra), run as its tests describe.

Namespaces are prefixed per test (``io.kestra.tests.trigger`` -> ``<prefix>.io.kestra.tests.trigger``,
conditions included) so the shared server's other flows never interfere.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from triggers_helpers import Engine, Recorder, trigger_service

pytestmark = pytest.mark.anyio

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "kestra" / "flows"
if not CORPUS.is_dir():
    pytest.fail(f"the Kestra conformance corpus is missing: expected {CORPUS}", pytrace=False)


async def load(eng: Engine, prefix: str, *names: str) -> dict[str, object]:
    out = {}
    for name in names:
        source = (CORPUS / name).read_text().replace("io.kestra.tests", f"{prefix}.io.kestra.tests")
        flow = await eng.deploy(source)
        out[flow.id] = flow
    return out


async def test_trigger_flow_fires_its_three_listeners(eng: Engine, rec: Recorder, namespace: str) -> None:
    flows = await load(
        eng,
        namespace,
        "trigger-flow.yaml",
        "trigger-flow-listener.yaml",
        "trigger-flow-listener-no-inputs.yaml",
        "trigger-flow-listener-namespace-condition.yaml",
        "trigger-flow-listener-invalid.yaml",
    )
    async with trigger_service(eng.rt, namespace):
        src = await eng.run(flows["trigger-flow"])
        assert src.state == "SUCCESS"
        for lid in ("trigger-flow-listener", "trigger-flow-listener-no-inputs"):
            [run] = await rec.wait_ended(lid, 1)
            assert run.trigger is not None
            v = run.trigger["variables"]
            assert (v["executionId"], v["namespace"], v["flowId"]) == (
                src.id,
                f"{namespace}.io.kestra.tests.trigger",
                "trigger-flow",
            )
            st = await eng.rt.wait_terminal(run.execution_id, timeout=10)  # re-reads until the end is stored
            assert st is not None and st.state == "SUCCESS" and len(st.taskruns) == 1
        # the namespace-condition listener fires for every SUCCESS in the namespace but its own:
        # trigger-flow and the two other listeners (Kestra's note: flowId is one of those three)
        ns_runs = await rec.wait_ended("trigger-flow-listener-namespace-condition", 3)
        assert {r.trigger["flowId"] for r in ns_runs} == {  # type: ignore[index]
            "trigger-flow",
            "trigger-flow-listener",
            "trigger-flow-listener-no-inputs",
        }
        assert {rec.state(r.execution_id) for r in ns_runs} == {"SUCCESS"}
        listener = await eng.rt.load_execution(rec.of("trigger-flow-listener")[0].execution_id)
        assert next(iter(listener.taskruns.values())).outputs["value"] == f"childs: from parents: {src.id}"
        await asyncio.sleep(0.3)
    # its input renders outputs.invalid.value, which does not exist: no execution (Kestra logs and skips)
    assert rec.of("trigger-flow-listener-invalid") == []
    assert len(rec.of("trigger-flow-listener-namespace-condition")) == 3


async def test_multiplecondition_listener(eng: Engine, rec: Recorder, namespace: str) -> None:
    flows = await load(
        eng,
        namespace,
        "trigger-multiplecondition-listener.yaml",
        "trigger-multiplecondition-flow-a.yaml",
        "trigger-multiplecondition-flow-b.yaml",
    )
    async with trigger_service(eng.rt, namespace):
        await eng.run(flows["trigger-multiplecondition-flow-a"])
        await asyncio.sleep(1)
        assert rec.of("trigger-multiplecondition-listener") == []
        b = await eng.run(flows["trigger-multiplecondition-flow-b"])
        [run] = await rec.wait_ended("trigger-multiplecondition-listener", 1)
    assert rec.state(run.execution_id) == "SUCCESS"
    v = run.trigger["variables"]  # type: ignore[index]
    assert (v["executionId"], v["flowId"]) == (b.id, "trigger-multiplecondition-flow-b")


async def test_multiplecondition_failed(eng: Engine, rec: Recorder, namespace: str) -> None:
    flows = await load(
        eng,
        namespace,
        "trigger-multiplecondition-failed.yaml",
        "trigger-multiplecondition-flow-c.yaml",
        "trigger-multiplecondition-flow-d.yaml",
        "trigger-flow-listener-namespace-condition.yaml",
    )
    async with trigger_service(eng.rt, namespace):
        c = await eng.run(flows["trigger-multiplecondition-flow-c"])
        assert c.state == "FAILED"
        d = await eng.run(flows["trigger-multiplecondition-flow-d"])
        [run] = await rec.wait_ended("trigger-flow-listener-namespace-condition", 1)
        await asyncio.sleep(0.5)
    assert run.trigger["executionId"] == d.id  # type: ignore[index]
    assert rec.state(run.execution_id) == "SUCCESS"
    assert rec.of("trigger-multiplecondition-failed") == []  # flow-c never succeeds


async def test_preconditions(eng: Engine, rec: Recorder, namespace: str) -> None:
    flows = await load(
        eng,
        namespace,
        "flow-trigger-preconditions-flow-listen.yaml",
        "flow-trigger-preconditions-flow-a.yaml",
        "flow-trigger-preconditions-flow-b.yaml",
    )
    async with trigger_service(eng.rt, namespace):
        await eng.run(flows["flow-trigger-preconditions-flow-a"])
        await eng.run(flows["flow-trigger-preconditions-flow-a"])
        await asyncio.sleep(0.3)
        assert rec.of("flow-trigger-preconditions-flow-listen") == []
        b = await eng.run(flows["flow-trigger-preconditions-flow-b"])
        [run] = await rec.wait_ended("flow-trigger-preconditions-flow-listen", 1, timeout=1 + 2)
    assert rec.state(run.execution_id) == "SUCCESS"
    assert run.trigger["executionId"] == b.id  # type: ignore[index]


async def test_listener_with_pause_fires_on_each_state(eng: Engine, rec: Recorder, namespace: str) -> None:
    flows = await load(
        eng, namespace, "trigger-flow-with-pause.yaml", "trigger-flow-listener-with-pause.yaml"
    )
    async with trigger_service(eng.rt, namespace):
        src = await eng.run(flows["trigger-flow-with-pause"])
        assert src.state == "SUCCESS" and len(src.taskruns) == 3
        runs = await rec.wait_ended("trigger-flow-listener-with-pause", 4)
    statuses = []
    for run in sorted(runs, key=lambda c: c.date):
        st = await eng.rt.wait_terminal(run.execution_id, timeout=10)  # re-reads until the end is stored
        assert st is not None and st.state == "SUCCESS"
        statuses.append((st.outputs or {}).get("status"))
    assert statuses == ["RUNNING", "PAUSED", "RUNNING", "SUCCESS"]
