"""Regenerate the golden histories: `python3 tests/golden/regen.py`.

Each golden file holds the events a flow produced (simulated in memory) and the execution
they fold to, in Kestra's API shape. The test replays the events through ``evolve``: a change
of the fold's semantics shows up as a diff here, to be reviewed, never silently absorbed.
Regenerate only when a change of semantics is intended, and say so in the commit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent.parent))

from engine.core.shape import execution_json  # noqa: E402
from engine.loader.loader import load_flow  # noqa: E402
from engine.testing import simulate  # noqa: E402

LOG = "io.kestra.plugin.core.log.Log"
RET = "io.kestra.plugin.core.debug.Return"

CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "sequential-success": (
        f"""
id: seq
namespace: io.golden
tasks:
  - {{id: a, type: {RET}, format: one}}
  - {{id: b, type: {LOG}, message: "{{{{ outputs.a.value }}}}"}}
outputs:
  - {{id: out, type: STRING, value: "{{{{ outputs.a.value }}}}"}}
""",
        {"a": "SUCCESS"},
    ),
    "errors-finally-failed": (
        f"""
id: err
namespace: io.golden
tasks:
  - {{id: a, type: {LOG}, message: a}}
  - {{id: b, type: io.kestra.plugin.core.execution.Fail}}
errors:
  - {{id: handler, type: {LOG}, message: failed}}
finally:
  - {{id: cleanup, type: {LOG}, message: done}}
""",
        {"b": "FAILED"},
    ),
    "foreach-parallel-switch": (
        f"""
id: loops
namespace: io.golden
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: ["x", "y"]
    concurrencyLimit: 0
    tasks:
      - id: sw
        type: io.kestra.plugin.core.flow.Switch
        value: "{{{{ taskrun.value }}}}"
        cases:
          x:
            - {{id: on-x, type: {LOG}, message: x}}
        defaults:
          - id: par
            type: io.kestra.plugin.core.flow.Parallel
            tasks:
              - {{id: p1, type: {LOG}, message: p1}}
              - {{id: p2, type: {LOG}, message: p2}}
""",
        {},
    ),
}


def record(name: str) -> dict[str, Any]:
    source, outcomes = CASES[name]
    flow = load_flow(source)
    sim = simulate(flow, {k: (lambda d, s=v: (s, {"value": "one"})) for k, v in outcomes.items()})
    return {
        "flow": source,
        "events": json.loads(msgspec.json.encode(sim.events)),
        "execution": execution_json(sim.state),
    }


def main() -> None:
    for name in CASES:
        (ROOT / f"{name}.json").write_text(json.dumps(record(name), indent=1, sort_keys=True) + "\n")
        print(f"wrote {name}.json")


if __name__ == "__main__":
    main()
