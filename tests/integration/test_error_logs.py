"""``errorLogs()`` end to end: an errors branch reads the ERROR lines of the task that failed."""

from __future__ import annotations

import uuid

import pytest
from integration_helpers import Engine, by_task

pytestmark = pytest.mark.anyio


async def test_errors_branch_reads_the_failed_tasks_error_lines(eng: Engine) -> None:
    st = await eng.run(f"""
id: error-logs
namespace: it.t{uuid.uuid4().hex[:10]}
tasks:
  - id: failed
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: it broke
errors:
  - id: report
    type: io.kestra.plugin.core.debug.Return
    format: "{{% for log in errorLogs() %}}{{{{ log.taskId }}}}: {{{{ log.message }}}}|{{% endfor %}}"
""")
    assert st.state == "FAILED"
    assert by_task(st)["report"].outputs == {"value": "failed: it broke|"}
