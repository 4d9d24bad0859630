"""What every JDBC-style Query shares: Kestra's properties, fetch modes, named parameters, cell values,
and a query run in a thread that a task timeout or a kill interrupts.

Kestra's ``AbstractJdbcQuery``: ``fetchType`` NONE (nothing), FETCH_ONE (``row``), FETCH (``rows``),
STORE (``uri``: the rows as an ION file in internal storage, streamed ``fetchSize`` rows at a time,
never all in memory); ``size`` is the number of rows. The deprecated booleans ``fetchOne``, ``store``,
``fetch`` win over ``fetchType`` in that order, as in Kestra.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import decimal
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import msgspec

from engine.core.errors import TaskFailed
from plugins.api import RunContext
from plugins.files import put_task_file, temp_name
from plugins.serdes.ion import IonWriter, iso_duration

FetchType = Literal["NONE", "FETCH_ONE", "FETCH", "STORE"]
DEFAULT_FETCH_SIZE = 10_000
# FETCH rows travel in the task's outputs, which the worker caps at 1 MiB: reading past that only
# fills memory before the task fails, so the fetch stops there and says to STORE instead.
FETCH_LIMIT = 1024 * 1024

T = TypeVar("T")


class QueryProps(msgspec.Struct, frozen=True, kw_only=True):
    """Kestra's AbstractJdbcBaseQuery properties."""

    sql: str
    url: str | None = None
    username: str | None = None
    password: str | None = None
    timeZoneId: str | None = None
    afterSQL: str | None = None
    fetchType: FetchType = "NONE"
    fetchSize: int = DEFAULT_FETCH_SIZE
    parameters: dict[str, Any] | None = None
    outputFiles: list[str] | None = None
    # deprecated since Kestra 0.19, still accepted there
    store_: bool = msgspec.field(name="store", default=False)
    fetchOne: bool = False
    fetch: bool = False
    # Kestra pools connections to servers; here each run opens its own (the flag changes nothing
    # that a flow can observe except connect time).
    connectionPooling: bool = True
    connectionPoolSize: int = 10


def fetch_type(props: QueryProps) -> FetchType:
    if props.fetch:
        return "FETCH"
    if props.fetchOne:
        return "FETCH_ONE"
    if props.store_:
        return "STORE"
    return props.fetchType


_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def bind_parameters(
    sql: str, parameters: Mapping[str, Any] | None, style: str = "?"
) -> tuple[str, list[Any]]:
    """Kestra's ``:name`` placeholders as positional ones (``?`` or ``%s``), with their values in order.

    ``::type`` casts are left alone. A placeholder with no value in ``parameters`` is an error naming it.
    """
    if not parameters:
        return sql, []
    values: list[Any] = []

    def swap(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in parameters:
            raise TaskFailed(
                f"parameters: the SQL uses :{name} but parameters has no '{name}' "
                f"(it has {', '.join(sorted(parameters))})",
                retryable=False,
            )
        values.append(parameters[name])
        return style

    return _PARAM.sub(swap, sql), values


def cell(value: Any) -> Any:
    """A database value as an output value (what ``row``/``rows`` hold; JSON has no Decimal or date)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            return float(value)
        exponent = value.as_tuple().exponent
        return int(value) if isinstance(exponent, int) and exponent >= 0 else float(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return iso_duration(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, Mapping):
        return {str(k): cell(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [cell(v) for v in value]
    return str(value)


def stored_cell(value: Any) -> Any:
    """A database value as written to an ION file (Ion keeps decimals, timestamps and blobs)."""
    if isinstance(value, memoryview):
        return bytes(value)
    if isinstance(value, Mapping):
        return {str(k): stored_cell(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [stored_cell(v) for v in value]
    return value


class Cursor(Protocol):
    """The DB-API cursor the query shares between drivers (sqlite3, duckdb, psycopg)."""

    @property
    def description(self) -> Any: ...

    def fetchmany(self, size: int = ...) -> Sequence[Any]: ...


def columns(cursor: Cursor) -> list[str] | None:
    """The result's column names (None: the statement returned no result set)."""
    if cursor.description is None:
        return None
    return [str(d[0]) for d in cursor.description]


def batches(cursor: Cursor, size: int) -> Iterator[Sequence[Any]]:
    while True:
        rows = cursor.fetchmany(size)
        if not rows:
            return
        yield rows


class Fetched(msgspec.Struct):
    """What a query produced: the outputs besides ``uri`` and a local ION file to store."""

    outputs: dict[str, Any]
    ion_file: Path | None = None


_encode = msgspec.json.Encoder().encode


def fetch_result(cursor: Cursor, mode: FetchType, fetch_size: int, scratch: Path) -> Fetched:
    """Read the last result of ``cursor`` as Kestra's fetch modes say (called in the query thread)."""
    names = columns(cursor)
    if mode == "NONE" or names is None:
        return Fetched({} if mode == "NONE" else {"size": 0})
    size = max(1, fetch_size)
    if mode == "FETCH_ONE":
        rows = cursor.fetchmany(1)
        row = {n: cell(v) for n, v in zip(names, rows[0], strict=True)} if rows else None
        return Fetched({"row": row, "size": 1 if rows else 0})
    if mode == "FETCH":
        out: list[dict[str, Any]] = []
        total = 0
        for batch in batches(cursor, size):
            for r in batch:
                row = {n: cell(v) for n, v in zip(names, r, strict=True)}
                total += len(_encode(row))
                if total > FETCH_LIMIT:
                    raise TaskFailed(
                        f"fetchType FETCH: the rows are over {FETCH_LIMIT} bytes after {len(out)} rows, more "
                        "than a task's outputs may hold — use fetchType: STORE (a file in internal storage)",
                        retryable=False,
                    )
                out.append(row)
        return Fetched({"rows": out, "size": len(out)})
    target = scratch / temp_name(".ion")
    with target.open("w", encoding="utf-8", buffering=1 << 20) as fh:
        writer = IonWriter(fh)
        for batch in batches(cursor, size):
            for r in batch:
                writer.write({n: stored_cell(v) for n, v in zip(names, r, strict=True)})
    return Fetched({"size": writer.count}, ion_file=target)


async def store_result(ctx: RunContext, fetched: Fetched) -> dict[str, Any]:
    """The task's outputs, with a STORE result uploaded (``uri``)."""
    outputs = dict(fetched.outputs)
    if fetched.ion_file is not None:
        outputs["uri"] = await put_task_file(ctx, fetched.ion_file)
    return outputs


async def interruptible(work: Callable[[], T], interrupt: Callable[[], None], what: str) -> T:
    """Run blocking ``work`` in its own thread; a cancellation (task timeout, kill) calls ``interrupt``
    (the driver's cancel, safe from another thread) and waits for the thread to stop before going on.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def body() -> None:
        try:
            result = work()
        except BaseException as exc:
            loop.call_soon_threadsafe(_settle, done, None, exc)
        else:
            loop.call_soon_threadsafe(_settle, done, result, None)

    thread = threading.Thread(target=body, name=what, daemon=True)
    thread.start()
    try:
        return await asyncio.shield(done)
    except asyncio.CancelledError:
        interrupt()
        # The cancelled query must be over before the connection is closed and the directory removed.
        while thread.is_alive():
            await asyncio.sleep(0.01)
        await asyncio.sleep(0)  # let the thread's result land, then read it so none is left unretrieved
        if done.done() and not done.cancelled():
            done.exception()
        raise


def _settle(done: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if done.done():
        return
    if exc is not None:
        done.set_exception(exc)
    else:
        done.set_result(result)
