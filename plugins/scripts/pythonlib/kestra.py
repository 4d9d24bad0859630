"""The script side of Kestra, written for this engine: the public API of the ``kestra`` PyPI package.

A script reports to the task that runs it by printing one line ``::{json}::`` (outputs, metrics, logs);
``Kestra`` prints those lines. ``context`` (``from kestra import context``) is the execution context the
task wrote for the script. ``Flow`` starts an execution through the REST API and waits for its end.
Only the standard library is used (``Kestra.read`` uses ``amazon.ion`` when it is installed).
"""

from __future__ import annotations

import base64
import json
import logging
import math
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime, timezone
from typing import Any

__all__ = [
    "CONTEXT_FILE",
    "ExecutionContext",
    "FailedExponentialBackoff",
    "Flow",
    "FlowExecution",
    "JsonFormatter",
    "Kestra",
    "LogFormatter",
    "load_execution_context",
]

CONTEXT_FILE = ".kestra-execution-context.json"


class FailedExponentialBackoff(Exception):
    """The API kept answering a retryable status (408, 429, 5xx) after every retry."""


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(
        f"{type(value).__name__} cannot be sent to Kestra as JSON: pass text, numbers, booleans, "
        "lists or maps (a date is sent as ISO-8601 text)"
    )


class Kestra:
    """Outputs, metrics, assets and logs of a script, sent to the task as ``::{json}::`` lines."""

    _logger: logging.Logger | None = None

    @staticmethod
    def format(map_: Mapping[str, Any]) -> str:
        return "::" + json.dumps(dict(map_), default=_json_default) + "::"

    @staticmethod
    def _send(map_: Mapping[str, Any]) -> None:
        # flushed at once: a script killed later must not lose what it already reported
        print(Kestra.format(map_), flush=True)

    @staticmethod
    def _metrics(name: str, type_: str, value: float, tags: Mapping[str, Any] | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("a metric's name must be a non-empty text")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"metric {name!r}: the value must be a finite number, not {value!r}")
        clean = {str(k): str(v) for k, v in (tags or {}).items()}
        Kestra._send({"metrics": [{"name": name, "type": type_, "value": value, "tags": clean}]})

    @staticmethod
    def outputs(map_: Mapping[str, Any]) -> None:
        """Outputs of the task (``{{ outputs.<task>.vars.<key> }}``); large data belongs in a file."""
        if not isinstance(map_, Mapping):
            raise TypeError("Kestra.outputs takes a map of output names to values")
        if map_:
            Kestra._send({"outputs": map_})

    @staticmethod
    def assets(map_: Mapping[str, Any]) -> None:
        if not isinstance(map_, Mapping):
            raise TypeError("Kestra.assets takes a map")
        if map_:
            Kestra._send({"assets": map_})

    @staticmethod
    def counter(name: str, value: float, tags: Mapping[str, Any] | None = None) -> None:
        """Add ``value`` to the counter ``name`` of this taskrun."""
        Kestra._metrics(name, "counter", value, tags)

    @staticmethod
    def timer(name: str, duration: float | Callable[[], Any], tags: Mapping[str, Any] | None = None) -> None:
        """Record a duration in seconds; given a function, call it and record how long it took."""
        if callable(duration):
            start = time.perf_counter()
            duration()
            duration = time.perf_counter() - start
        Kestra._metrics(name, "timer", duration, tags)

    @staticmethod
    def gauge(name: str, value: float, tags: Mapping[str, Any] | None = None) -> None:
        Kestra._metrics(name, "gauge", value, tags)

    @staticmethod
    def logger() -> logging.Logger:
        """A logger whose records become the task's log lines at their level (INFO and below on
        stdout, WARNING and above on stderr)."""
        if Kestra._logger is None:
            logger = logging.getLogger("Kestra")
            logger.setLevel(logging.DEBUG)
            low = logging.StreamHandler(sys.stdout)
            low.setLevel(logging.DEBUG)
            low.addFilter(lambda record: record.levelno <= logging.INFO)
            low.setFormatter(JsonFormatter())
            high = logging.StreamHandler(sys.stderr)
            high.setLevel(logging.WARNING)
            high.setFormatter(JsonFormatter())
            logger.addHandler(low)
            logger.addHandler(high)
            Kestra._logger = logger
        return Kestra._logger

    @staticmethod
    def read(path_: str) -> list[dict[str, Any]]:
        """The records of an Ion file of Kestra's internal storage, as dicts."""
        with open(path_, "rb") as handle:
            data = handle.read()
        try:
            import amazon.ion.simpleion as ion  # type: ignore[import-not-found, unused-ignore]
        except ImportError:
            # Without the Ion library: the files this engine writes hold one JSON value a line (Ion
            # text is a superset of JSON).
            return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]
        return [_plain(dict(record)) for record in ion.loads(data, single_value=False)]


def _plain(value: Any) -> Any:
    """Ion's typed values as plain Python ones."""
    if value is None or type(value).__name__ == "IonPyNull":
        return None
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, bytes):
        return value.decode("utf-8")
    name = type(value).__name__
    if name == "IonPyDecimal":
        return float(value)
    return value


class LogFormatter(logging.Formatter):
    """``<UTC time in ms> - <message>``."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        moment = datetime.fromtimestamp(record.created, timezone.utc)  # noqa: UP017 (a venv may run 3.10)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """A log record as the ``::{"logs": [...]}::`` line the task turns into a log line."""

    _message = LogFormatter("%(asctime)s - %(message)s")
    _levels = {logging.DEBUG: "DEBUG", logging.INFO: "INFO", logging.WARNING: "WARN"}

    def format(self, record: logging.LogRecord) -> str:
        level = "ERROR" if record.levelno >= logging.ERROR else self._levels.get(record.levelno, "TRACE")
        return Kestra.format({"logs": [{"level": level, "message": self._message.format(record)}]})


class FlowExecution:
    """What ``Flow.execute`` returns. (A plain class: ``dataclasses`` and ``urllib`` are imported only
    when needed, so ``import kestra`` stays cheap for every script.)"""

    __slots__ = ("error", "execution_id", "log", "status")

    def __init__(self, execution_id: str, status: str | None, log: str | None, error: str | None) -> None:
        self.execution_id = execution_id
        self.status = status
        self.log = log
        self.error = error

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FlowExecution):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]

    def _fields(self) -> tuple[str, str | None, str | None, str | None]:
        return (self.execution_id, self.status, self.log, self.error)

    def __repr__(self) -> str:
        names = ("execution_id", "status", "log", "error")
        fields = ", ".join(f"{k}={v!r}" for k, v in zip(names, self._fields(), strict=True))
        return f"FlowExecution({fields})"


_RETRY = frozenset({408, 429, 500, 502, 503, 504})
_ENDED = ("SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED")


class Flow:
    """Start a flow's execution through the API (``KESTRA_HOSTNAME``, default http://localhost:8080;
    ``KESTRA_API_TOKEN`` or ``KESTRA_USER``/``KESTRA_PASSWORD``) and, by default, wait for its end."""

    def __init__(
        self,
        wait_for_completion: bool = True,
        poll_interval: float = 1,
        labels_from_inputs: bool = False,
        tenant: str | None = None,
    ) -> None:
        self.wait_for_completion = wait_for_completion
        self.poll_interval = poll_interval
        self.labels_from_inputs = labels_from_inputs
        self.user = os.environ.get("KESTRA_USER")
        self.password = os.environ.get("KESTRA_PASSWORD")
        self.hostname = os.environ.get("KESTRA_HOSTNAME", "http://localhost:8080")
        self.api_token = os.environ.get("KESTRA_API_TOKEN")
        base = f"/api/v1/{tenant}" if tenant is not None else "/api/v1"
        self.API_ENDPOINT_EXECUTION_CREATE = base + "/executions/{namespace}/{flow_id}"
        self.API_ENDPOINT_EXECUTION_STATUS = base + "/executions/{execution_id}"
        self.API_ENDPOINT_EXECUTION_LOG = base + "/logs/{execution_id}/download"

    def _headers(self) -> dict[str, str]:
        if self.api_token is not None:
            return {"Authorization": f"Bearer {self.api_token}"}
        if self.user is not None and self.password is not None:
            pair = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            return {"Authorization": f"Basic {pair}"}
        return {}

    def _make_request(
        self, method: str, url: str, body: bytes | None = None, content_type: str | None = None
    ) -> bytes:
        import urllib.error
        import urllib.request

        headers = self._headers()
        if content_type is not None:
            headers["Content-Type"] = content_type
        for attempt in range(5):
            request = urllib.request.Request(url, data=body, method=method.upper(), headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    data: bytes = response.read()
                    return data
            except urllib.error.HTTPError as exc:
                if exc.code == 401:
                    raise Exception(
                        "Authentication required: set KESTRA_API_TOKEN, or KESTRA_USER and KESTRA_PASSWORD"
                    ) from None
                if exc.code not in _RETRY:
                    raise
            time.sleep(2**attempt)
        raise FailedExponentialBackoff(f"{method.upper()} {url}: no answer after 5 attempts")

    def check_status(self, execution_id: str) -> dict[str, Any]:
        url = self.hostname + self.API_ENDPOINT_EXECUTION_STATUS.format(execution_id=execution_id)
        answer: dict[str, Any] = json.loads(self._make_request("get", url))
        return answer

    def get_logs(self, execution_id: str) -> str:
        url = self.hostname + self.API_ENDPOINT_EXECUTION_LOG.format(execution_id=execution_id)
        return self._make_request("get", url).decode("utf-8", errors="replace")

    def execute(self, namespace: str, flow: str, inputs: Mapping[str, Any] | None = None) -> FlowExecution:
        """Start ``namespace.flow`` with ``inputs`` (a tuple ``(name, file, content type)`` is a FILE
        input); wait for its end unless ``wait_for_completion`` is False."""
        inputs = dict(inputs or {})
        url = self.hostname + self.API_ENDPOINT_EXECUTION_CREATE.format(namespace=namespace, flow_id=flow)
        if self.labels_from_inputs and inputs:
            import urllib.parse

            url += "?" + urllib.parse.urlencode([("labels", f"{k}:{v}") for k, v in inputs.items()])
        if inputs:
            body, content_type = _multipart(inputs)
            created = json.loads(self._make_request("post", url, body, content_type))
        else:
            created = json.loads(self._make_request("post", url))
        if "id" not in created:
            raise Exception(f"Starting execution failed: {created}")
        result = FlowExecution(created["id"], None, None, None)
        if not self.wait_for_completion:
            result.status = "STARTED"
            return result
        while True:
            time.sleep(self.poll_interval)
            state = str(self.check_status(result.execution_id)["state"]["current"])
            if state in _ENDED:
                result.status = state
                result.log = self.get_logs(result.execution_id)
                return result


def _multipart(inputs: Mapping[str, Any]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts: list[bytes] = []
    for name, value in inputs.items():
        if isinstance(value, tuple):
            filename, handle, content_type = [*value, None, None, None][:3]
            data = handle.read() if hasattr(handle, "read") else handle
            data = data.encode() if isinstance(data, str) else bytes(data)
            head = (
                f'Content-Disposition: form-data; name="{name}"; filename="{filename or name}"\r\n'
                f"Content-Type: {content_type or 'application/octet-stream'}\r\n\r\n"
            )
        else:
            data = str(value).encode()
            head = f'Content-Disposition: form-data; name="{name}"\r\n\r\n'
        parts.append(f"--{boundary}\r\n".encode() + head.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _wrap(value: Any) -> Any:
    if isinstance(value, dict):
        return ExecutionContext(value)
    if isinstance(value, list):
        return [_wrap(item) for item in value]
    return value


class ExecutionContext(Mapping[str, Any]):
    """The execution context, read-only, with attribute access at any depth (``context.outputs.t.uri``);
    a key that is not an identifier, or is a method's name, is reached with ``context["key"]``."""

    __slots__ = ("_data",)

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # copy and pickle look these up before _data exists
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            known = ", ".join(sorted(self._data)) or "none"
            raise AttributeError(f"'{name}' is not in the execution context (it has: {known})") from None

    def __getitem__(self, name: str) -> Any:
        return _wrap(self._data[name])

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def to_dict(self) -> dict[str, Any]:
        return self._data

    def __repr__(self) -> str:
        return repr(self._data)


def load_execution_context(path: str | None = None) -> ExecutionContext:
    """The context from ``path``, ``$KESTRA_EXECUTION_CONTEXT_FILE``, ``.kestra-execution-context.json``,
    or the base64 JSON of ``$KESTRA_CONTEXT``; FileNotFoundError outside a task."""
    path = path or os.environ.get("KESTRA_EXECUTION_CONTEXT_FILE", CONTEXT_FILE)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            return ExecutionContext(json.load(handle))
    encoded = os.environ.get("KESTRA_CONTEXT")
    if encoded:
        return ExecutionContext(json.loads(base64.b64decode(encoded)))
    raise FileNotFoundError(
        f"no Kestra execution context: {path!r} does not exist and KESTRA_CONTEXT is not set "
        "(the context exists only while the script runs in a task)"
    )


_context: ExecutionContext | None = None


def __getattr__(name: str) -> Any:
    # ``context`` is read on first use, so importing the module never needs a running task.
    global _context
    if name == "context":
        if _context is None:
            _context = load_execution_context()
        return _context
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
