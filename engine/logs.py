"""The engine's own logs (not task logs): structlog, one human line on a terminal, JSON when asked.

Always on stderr, so stdout stays clean for `--output json`. ENGINE_LOG_FORMAT=json|console,
ENGINE_LOG_LEVEL=debug|info|warning|error.
"""

from __future__ import annotations

import logging
import os
import sys

import structlog

_configured = False


def configure() -> None:
    global _configured
    if _configured:
        return
    _configured = True
    level = getattr(logging, os.environ.get("ENGINE_LOG_LEVEL", "warning").upper(), logging.WARNING)
    fmt = os.environ.get("ENGINE_LOG_FORMAT") or ("console" if sys.stderr.isatty() else "json")
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
