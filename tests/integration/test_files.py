"""Files through the engine: FILE inputs, script outputFiles, storage tasks, read(), on a real nats-server."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from integration_helpers import CliResult, Engine, by_task, taskruns

from eventstore.storage import InternalStorage

pytestmark = pytest.mark.anyio
Cli = Callable[..., CliResult]


def ns() -> str:
    return f"it.f{uuid.uuid4().hex[:10]}"


def test_cli_file_input_is_uploaded_and_readable(cli: Cli, tmp_path: Path) -> None:
    data = tmp_path / "local.csv"
    data.write_text("a,b\n1,2\n")
    flow = tmp_path / "files.yaml"
    flow.write_text(f"""
id: file_input
namespace: {ns()}
inputs:
  - id: f
    type: FILE
tasks:
  - id: content
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ read(inputs.f) }}}}"
  - id: size
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ fileSize(inputs.f) }}}} {{{{ isFileEmpty(inputs.f) }}}}"
outputs:
  - id: o
    type: FILE
    value: "{{{{ inputs.f }}}}"
""")
    res = cli("run", str(flow), "--input", f"f={data}", "--output", "json")
    assert res.code == 0, res.diag
    doc = res.json
    uri = doc["inputs"]["f"]
    ns_path = doc["namespace"].replace(".", "/")
    assert uri == f"kestra:///{ns_path}/file-input/executions/{doc['id']}/inputs/f/local.csv"
    assert doc["outputs"]["o"] == uri
    trs = taskruns(doc)
    assert trs["content"]["outputs"]["value"] == "a,b\n1,2\n"
    assert trs["size"]["outputs"]["value"] == "8 false"


def test_cli_missing_file_input_exits_2(cli: Cli, tmp_path: Path) -> None:
    flow = tmp_path / "files.yaml"
    flow.write_text(f"""
id: file_input
namespace: {ns()}
inputs:
  - id: f
    type: FILE
tasks:
  - id: x
    type: io.kestra.plugin.core.log.Log
    message: "{{{{ inputs.f }}}}"
""")
    res = cli("run", str(flow), "--input", f"f={tmp_path / 'nope.csv'}", "--output", "json")
    assert res.code == 2, res.diag
    assert "nope.csv" in res.stderr and res.stdout == ""


async def test_script_output_files_flow_to_later_tasks(eng: Engine) -> None:
    st = await eng.run(f"""
id: script_files
namespace: {ns()}
tasks:
  - id: make
    type: io.kestra.plugin.scripts.shell.Commands
    outputFiles: ["*.txt"]
    commands:
      - printf 'l1\\nl2\\nl3\\n' > out.txt
      - echo extra > "$OUTPUT_DIR/extra.log"
  - id: read
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ read(outputs.make.outputFiles['out.txt']) }}}}"
  - id: consume
    type: io.kestra.plugin.scripts.shell.Commands
    inputFiles:
      in.txt: "{{{{ outputs.make.outputFiles['out.txt'] }}}}"
    commands:
      - wc -l < in.txt
  - id: reverse
    type: io.kestra.plugin.core.storage.Reverse
    from: "{{{{ outputs.make.outputFiles['out.txt'] }}}}"
  - id: split
    type: io.kestra.plugin.core.storage.Split
    from: "{{{{ outputs.reverse.uri }}}}"
    rows: 2
  - id: concat
    type: io.kestra.plugin.core.storage.Concat
    files: "{{{{ outputs.split.uris }}}}"
  - id: size
    type: io.kestra.plugin.core.storage.Size
    uri: "{{{{ outputs.concat.uri }}}}"
  - id: again
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ read(outputs.concat.uri) }}}}"
""")
    assert st.state == "SUCCESS", st
    trs = by_task(st)
    files = trs["make"].outputs["outputFiles"]
    assert set(files) == {"out.txt", "extra.log"}
    assert all(u.startswith("kestra:///") and f"/executions/{st.id}/tasks/make/" in u for u in files.values())
    assert trs["read"].outputs["value"] == "l1\nl2\nl3\n"
    assert len(trs["split"].outputs["uris"]) == 2
    assert trs["size"].outputs["size"] == 9
    assert trs["again"].outputs["value"] == "l3\nl2\nl1\n"
    listed = await InternalStorage(eng.rt.store).execution_files(st.id)
    assert set(files.values()) <= set(listed) and trs["concat"].outputs["uri"] in listed


async def test_read_refuses_another_executions_file_and_purge(eng: Engine) -> None:
    storage = InternalStorage(eng.rt.store)
    foreign = await storage.put(f"kestra:///other/flow/executions/{uuid.uuid4().hex[:22]}/x.txt", b"no")
    st = await eng.run(f"""
id: guard
namespace: {ns()}
tasks:
  - id: bad
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ read('{foreign}') }}}}"
""")
    assert st.state == "FAILED"
    logs = [line.message for line in await eng.rt.store.read_logs(st.id)]
    assert any("didn't belong to the current execution" in m for m in logs), logs
    st = await eng.run(f"""
id: purge
namespace: {ns()}
tasks:
  - id: make
    type: io.kestra.plugin.scripts.shell.Commands
    outputFiles: ["a.txt"]
    commands: ["echo a > a.txt"]
  - id: purge
    type: io.kestra.plugin.core.storage.PurgeCurrentExecutionFiles
""")
    assert st.state == "SUCCESS", st
    uri = by_task(st)["make"].outputs["outputFiles"]["a.txt"]
    assert by_task(st)["purge"].outputs["uris"] == [uri]
    assert await storage.execution_files(st.id) == []


async def test_resume_with_a_file_input_uploads_it(eng: Engine, tmp_path: Path) -> None:
    import asyncio

    local = tmp_path / "resume.txt"
    local.write_text("resumed data")
    eid = await eng.start(f"""
id: pause_file
namespace: {ns()}
tasks:
  - id: pause
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: data
        type: FILE
  - id: last
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ read(outputs.pause.onResume.data) }}}}"
""")
    for _ in range(500):
        st = await eng.load(eid)
        if st is not None and st.state == "PAUSED":
            break
        await asyncio.sleep(0.01)
    await eng.rt.resume(eid, {"data": str(local)})
    st = await eng.wait(eid)
    assert st.state == "SUCCESS", st
    uri = by_task(st)["pause"].outputs["onResume"]["data"]
    assert uri.startswith("kestra:///") and uri.endswith(f"/executions/{eid}/inputs/data/resume.txt")
    assert by_task(st)["last"].outputs["value"] == "resumed data"
