"""The topology SVG laid out on the server, and the revision diff, as the UI reads them."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import Api

from engine.loader.loader import load_flow
from webserver.topology import MAX_NODES, topology_svg

SHAPES = (Path(__file__).parents[1] / "ui" / "flows" / "shapes.yaml").read_text()
SVG = "{http://www.w3.org/2000/svg}"


def boxes(svg: str) -> dict[str, tuple[float, float]]:
    """Each task node's absolute position (the sum of the translations above it)."""
    root = ET.fromstring(svg)
    out: dict[str, tuple[float, float]] = {}

    def walk(node: ET.Element, x: float, y: float) -> None:
        m = re.match(r"translate\(([-\d.]+),([-\d.]+)\)", node.get("transform", ""))
        if m:
            x, y = x + float(m.group(1)), y + float(m.group(2))
        if node.tag == f"{SVG}g" and "node" in node.get("class", "").split():
            out[node.get("data-task", "")] = (x, y)
        for child in node:
            walk(child, x, y)

    walk(root, 0, 0)
    return out


def test_every_flowable_is_laid_out() -> None:
    svg = topology_svg(load_flow(SHAPES))
    at = boxes(svg)
    assert set(at) == {
        "fan", "left", "right", "choose", "case_a", "case_b", "each", "item", "graph", "first", "second",
        "dag_failed", "alert", "cleanup",
    }  # fmt: skip
    assert at["left"][1] == at["right"][1] and at["right"][0] > at["left"][0]  # Parallel: side by side
    assert (
        at["case_a"][1] == at["case_b"][1] and at["case_b"][0] > at["case_a"][0]
    )  # Switch: a column per case
    assert at["second"][1] > at["first"][1]  # Dag: a dependent below its dependency
    assert at["item"][1] > at["each"][1]  # ForEach: the body under its header
    assert (
        at["choose"][1] > at["fan"][1]
        and at["alert"][1] > at["graph"][1]
        and at["cleanup"][1] > at["alert"][1]
    )
    assert svg.count('class="section errors"') == 2 and svg.count('class="section finally"') == 1
    assert "triggers: daily (Schedule)" in svg


def test_text_is_escaped_and_big_flows_are_bounded() -> None:
    tasks = "".join(
        f"  - id: t{i}\n    type: io.kestra.plugin.core.log.Log\n    message: x\n"
        for i in range(MAX_NODES + 5)
    )
    flow = load_flow(f"id: big\nnamespace: ns\ndescription: <script>\ntasks:\n{tasks}")
    svg = topology_svg(flow)
    ET.fromstring(svg)  # well-formed
    assert len(boxes(svg)) == MAX_NODES
    assert "5 more tasks not drawn" in svg


@pytest.mark.integration
@pytest.mark.anyio
async def test_topology_and_diff_routes(api: Api) -> None:
    source = SHAPES.replace("namespace: ui.demo", f"namespace: {api.ns}")
    await api.deploy(source)
    await api.settle()  # the update (PUT) checks the flow exists in the projection
    await api.deploy(source.replace("message: left", "message: LEFT"))
    r = await api.client.get(f"/api/v1/flows/{api.ns}/shapes/topology")
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    assert len(boxes(r.text)) == 14
    r = await api.client.get(f"/api/v1/flows/{api.ns}/shapes/topology", params={"revision": 9})
    assert r.status_code == 404 and "no revision 9" in r.json()["message"]
    r = await api.client.get(f"/api/v1/flows/{api.ns}/shapes/diff", params={"from": 1, "to": 2})
    changed = [line for line in r.json()["lines"] if line["op"] != " "]
    assert changed == [
        {"op": "-", "text": "        message: left"},
        {"op": "+", "text": "        message: LEFT"},
    ]
    r = await api.client.get("/api/v1/openapi.json")
    paths = r.json()["paths"]
    assert (
        "/api/v1/{tenant}/flows/{namespace}/{flow_id}/topology" in paths
        and "/api/v1/{tenant}/flows/{namespace}/{flow_id}/diff" in paths
    )
