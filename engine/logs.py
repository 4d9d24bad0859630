"""The engine's own logs (not task logs): structlog, one human line on a terminal, JSON when asked.

Always on stderr, so stdout stays clean for `--output json`. ENGINE_LOG_FORMAT=json|console,
ENGINE_LOG_LEVEL=debug|info|warning|error.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from engine.settings import settings

_configured = False
# A command a person runs in a terminal (not a server role) shows only the engine's errors unless
# ENGINE_LOG_LEVEL asks for more: its own warnings (a lost attempt retried, a write retried) are
# the engine at work, and what went wrong in an execution is in the execution's own log lines.
_person = False
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "warn": logging.WARNING}
_LEVELS |= {"error": logging.ERROR, "exception": logging.ERROR, "critical": logging.CRITICAL}


def _threshold() -> int:
    s = settings()
    if _person and not s.log_level_given:
        return max(s.log_level, logging.ERROR)
    return s.log_level


def for_a_person() -> None:
    """This process is a command in a person's terminal: see ``_person``. Call before any logging."""
    global _person
    _person = True


def _drop(*args: Any, **kwargs: Any) -> None:
    return None


def configure() -> None:
    global _configured
    if _configured:
        return
    _configured = True
    import structlog

    level = _threshold()
    fmt = settings().log_format or ("console" if sys.stderr.isatty() else "json")
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        # Plain tracebacks: rich's show local variables, which can hold secrets and tokens.
        else structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
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


class _Logger:
    """A structlog logger made on first use: importing structlog costs ~0.1 s of start-up, and most
    runs never log anything of the engine's own."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._log: Any = None

    def __getattr__(self, method: str) -> Any:
        if self._log is None:
            if _LEVELS.get(method, logging.CRITICAL) < _threshold():
                return _drop  # below the level: not worth importing structlog for
            import structlog

            configure()
            self._log = structlog.get_logger(self._name)
        return getattr(self._log, method)


def get_logger(name: str) -> Any:
    return _Logger(name)
