"""The one exception root and its leaves.

Every error a user can trigger is an ``EngineError``; the CLI prints its message (never a
traceback) and exits non-zero.
"""

from __future__ import annotations

import msgspec


class EngineError(Exception):
    """Root of every error the engine raises on purpose."""


class Issue(msgspec.Struct, frozen=True):
    """One problem in a flow: where it is, what is wrong and how to fix it."""

    path: str
    message: str
    line: int | None = None
    column: int | None = None
    file: str | None = None

    def __str__(self) -> str:
        where = ""
        if self.line is not None:
            where = (
                f" (line {self.line}" + (f", column {self.column}" if self.column is not None else "") + ")"
            )
        prefix = f"{self.file}: " if self.file else ""
        return f"{prefix}{self.path}: {self.message}{where}"


class FlowValidationError(EngineError):
    """Raised when a flow cannot be parsed or is invalid; carries every issue found, not just the first."""

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


class ExpressionError(EngineError):
    """Raised when an expression does not parse or cannot be evaluated (undefined variable, bad filter)."""


class PluginNotFound(EngineError):
    """Raised when a task type is unknown; the message names the closest known types."""


class InputError(EngineError):
    """Raised when an execution input is missing or does not match its declared type."""


class FlowNotFound(EngineError):
    """Raised when a flow (namespace, id[, revision]) is not deployed."""


class ExecutionNotFound(EngineError):
    """Raised when an execution id is unknown."""


class ConcurrencyConflict(EngineError):
    """Raised when an append is refused because another writer advanced the execution (OCC)."""


class TaskFailed(EngineError):
    """Raised by a task plugin when its run fails. ``retryable`` says whether retry may help."""

    def __init__(
        self, message: str, *, retryable: bool = True, outputs: dict[str, object] | None = None
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.outputs = outputs or {}


class PayloadTooLarge(EngineError):
    """Raised when a message is over the event store's size limit: sending it again cannot help."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"a message of {size} bytes is over the limit of {limit} bytes")
        self.size = size
        self.limit = limit


class ServerError(EngineError):
    """Raised when the NATS server cannot be started or reached."""
