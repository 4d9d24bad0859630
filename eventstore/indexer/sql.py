"""The statements a batch is written with: one multi-row statement per table, its rows given column
by column (``unnest`` of one list per column), so a batch of any size costs the same few statements."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

Statement = tuple[str, list[Any]]


def merge(table: str, cols: list[str], keys: list[str]) -> str:
    """An upsert from the columns given as lists ($1..$n): a row replaces the stored one only when
    its ``seq`` is newer. MERGE: cheaper than INSERT ... ON CONFLICT DO UPDATE in DuckDB."""
    source = ", ".join(f"unnest(${i + 1}) AS {c}" for i, c in enumerate(cols))
    on = " AND ".join(f"{table}.{k} = n.{k}" for k in keys)
    sets = ", ".join(f"{c} = n.{c}" for c in cols if c not in keys)
    return (
        f"MERGE INTO {table} USING (SELECT {source}) n ON {on} "
        f"WHEN MATCHED AND n.seq > {table}.seq THEN UPDATE SET {sets} "
        f"WHEN NOT MATCHED THEN INSERT ({', '.join(cols)}) VALUES ({', '.join('n.' + c for c in cols)})"
    )


def append(table: str, cols: list[str]) -> str:
    source = ", ".join(f"unnest(${i + 1}) AS {c}" for i, c in enumerate(cols))
    return f"INSERT INTO {table} ({', '.join(cols)}) SELECT {source}"


def add(out: list[Statement], sql: str, rows: Iterable[Sequence[Any]], width: int) -> None:
    """One statement for all ``rows``, given column by column (none when there are no rows)."""
    cols = [list(col) for col in zip(*rows, strict=True)] or [[] for _ in range(width)]
    if cols[0]:
        out.append((sql, cols))


def ts(date: str | None) -> str | None:
    """An event's ISO date as a TIMESTAMP value: the columns hold UTC dates without a zone."""
    return date.replace("Z", "") if date else None
