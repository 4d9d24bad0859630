"""WorkingDirectory `outputFiles` and `cache` through the engine, on a real nats-server."""

from __future__ import annotations

import uuid

import pytest
from integration_helpers import Engine, by_task

from eventstore.storage import InternalStorage

pytestmark = pytest.mark.anyio


def flow(namespace: str, ttl: str = "PT1H") -> str:
    return f"""
id: wd_files
namespace: {namespace}
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    outputFiles: ["out/*.txt"]
    cache:
      ttl: {ttl}
      patterns: ["deps/**"]
    tasks:
      - id: check
        type: io.kestra.plugin.core.storage.LocalFiles
        outputs: ["deps/**"]
      - id: make
        type: io.kestra.plugin.scripts.shell.Commands
        commands:
          - mkdir -p deps/sub out
          - echo "v{{{{ execution.id }}}}" > deps/sub/lib.txt
          - echo hi > out/a.txt
          - echo no > out/b.log
      - id: last
        type: io.kestra.plugin.scripts.shell.Commands
        commands:
          - echo two > out/c.txt
"""


async def test_output_files_and_cache_across_executions(eng: Engine) -> None:
    namespace = f"it.wd{uuid.uuid4().hex[:10]}"
    storage = InternalStorage(eng.rt.store)
    first = await eng.run(flow(namespace))
    assert first.state == "SUCCESS", first
    trs = by_task(first)
    assert trs["check"].outputs == {"uris": {}}  # nothing cached yet
    files = trs["wd"].outputs["outputFiles"]
    assert set(files) == {"out/a.txt", "out/c.txt"}  # collected after the last task, *.log left out
    assert await storage.get(files["out/a.txt"]) == b"hi\n"
    assert await storage.get(files["out/c.txt"]) == b"two\n"

    second = await eng.run(flow(namespace))
    assert second.state == "SUCCESS", second
    restored = by_task(second)["check"].outputs["uris"]
    assert set(restored) == {"deps/sub/lib.txt"}
    # the archive the first execution left, not one of its own (its task had not run yet)
    assert await storage.get(restored["deps/sub/lib.txt"]) == f"v{first.id}\n".encode()


async def test_an_expired_cache_is_not_restored(eng: Engine) -> None:
    namespace = f"it.wd{uuid.uuid4().hex[:10]}"
    first = await eng.run(flow(namespace, ttl="PT0S"))
    assert first.state == "SUCCESS", first
    second = await eng.run(flow(namespace, ttl="PT0S"))
    assert second.state == "SUCCESS", second
    assert by_task(second)["check"].outputs == {"uris": {}}
    logs = [line.message for line in await eng.rt.store.read_logs(second.id)]
    assert any("older than its ttl" in m for m in logs), logs
