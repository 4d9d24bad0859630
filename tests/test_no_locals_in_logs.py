"""No log line of a role shows a traceback's local variables (they can hold secrets and tokens)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_role_logging_an_exception_shows_no_locals() -> None:
    # The trigger service logs with the engine's loggers: on a terminal they format a traceback
    # plainly (structlog's default console renderer would print rich tracebacks with locals).
    script = (
        "import os\n"
        "from triggers.service import log\n"
        "def failing():\n"
        "    token = os.environ['LOCALS_TEST_TOKEN']\n"
        "    raise RuntimeError('boom')\n"
        "try:\n"
        "    failing()\n"
        "except RuntimeError:\n"
        "    log.exception('scheduler.failed')\n"
    )
    env = {
        **os.environ,
        "LOCALS_TEST_TOKEN": "sekret-value-456",
        "ENGINE_LOG_FORMAT": "console",
        "FORCE_COLOR": "1",
        "TTY_COMPATIBLE": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=ROOT,
        check=True,
    )
    assert "boom" in done.stderr and "scheduler.failed" in done.stderr
    assert "sekret-value-456" not in done.stderr
