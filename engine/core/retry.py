"""When to retry a failed task attempt, following Kestra's retry policies.

``maxAttempt`` is the TOTAL number of attempts, the first one included (Kestra's
``TaskRun.nextRetryDate``: no retry once ``attempts.size() >= maxAttempt``), so
``maxAttempt: 3`` means one run plus at most two retries. ``maxDuration`` bounds the time from
the start of the first attempt to the start of the next one. With neither set, Kestra retries
without limit, and so does this.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from engine.core.dates import parse as parse_date
from engine.core.model import Retry

__all__ = [
    "DEFAULT_DELAY_FACTOR",
    "NEW_EXECUTION",
    "attempt_delay",
    "chain_delay",
    "in_place",
    "new_execution",
    "next_delay",
]

DEFAULT_DELAY_FACTOR = 2.0
NEW_EXECUTION = "CREATE_NEW_EXECUTION"


def new_execution(retry: Retry | None) -> bool:
    """Does this policy retry by a new execution of the flow (rather than the task in place)?"""
    return retry is not None and (retry.behavior or "").upper() == NEW_EXECUTION


def in_place(retry: Retry | None) -> Retry | None:
    """The policy if it retries the failed task in the same execution (RETRY_FAILED_TASK), else None."""
    return None if retry is None or new_execution(retry) else retry


def _base_delay(retry: Retry, attempt: int, rand: Callable[[], float]) -> float:
    kind = (retry.type or "constant").lower()
    if kind == "constant":
        return retry.interval or 0.0
    if kind == "exponential":
        factor = retry.delay_factor if retry.delay_factor is not None else DEFAULT_DELAY_FACTOR
        interval = retry.interval or 0.0
        try:
            delay = float(interval) * float(factor) ** (attempt - 1)
        except OverflowError:
            delay = float("inf")
        if retry.max_interval is not None:
            delay = min(delay, retry.max_interval)
        return delay
    if kind == "random":
        low = retry.min_interval or 0.0
        high = retry.max_interval if retry.max_interval is not None else low
        low, high = min(low, high), max(low, high)
        return low + rand() * (high - low)
    raise ValueError(f"unknown retry type {retry.type!r}; expected constant, exponential or random")


def next_delay(retry: Retry, attempt: int, elapsed_s: float, rand: Callable[[], float]) -> float | None:
    """Seconds to wait before attempt ``attempt + 1``, or None when no retry is allowed.

    ``attempt`` is how many attempts have run (1 after the first failure); ``elapsed_s`` the time
    since the first attempt started; ``rand`` returns a float in [0, 1) (``random.random``).
    """
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    if retry.max_attempt is not None and attempt >= retry.max_attempt:
        return None
    delay = max(0.0, _base_delay(retry, attempt, rand))
    if retry.max_duration is not None and elapsed_s + delay > retry.max_duration:
        return None
    return delay


def attempt_delay(retry: Retry, taskrun_id: str, attempt: int, first_started: str, now: str) -> float | None:
    """``next_delay`` from what the history records, for whoever decides (the executor or a worker).

    ``attempt`` is the number of the attempt that failed, ``first_started`` the date the taskrun's
    first attempt started and ``now`` the date of the failure. A random policy's draw is derived
    from the taskrun and the attempt: the same history always gives the same delay.
    """
    elapsed = (parse_date(now) - parse_date(first_started)).total_seconds()
    seed = int.from_bytes(hashlib.blake2b(f"{taskrun_id}:{attempt}".encode(), digest_size=4).digest(), "big")
    return next_delay(retry, attempt, elapsed, lambda: (seed % 10_000) / 10_000)


def chain_delay(retry: Retry, execution_id: str, tries: int, chain_created: str, now: str) -> float | None:
    """``next_delay`` for a CREATE_NEW_EXECUTION retry: ``tries`` executions of the chain have run
    (this one failed at ``now``) and ``maxDuration`` counts from ``chain_created``, when the first
    was created (Kestra's ``ExecutionService.nextRetryDate``). A random draw is derived from the
    execution, so the same history gives the same delay."""
    elapsed = (parse_date(now) - parse_date(chain_created)).total_seconds()
    seed = int.from_bytes(hashlib.blake2b(f"{execution_id}:{tries}".encode(), digest_size=4).digest(), "big")
    return next_delay(retry, tries, elapsed, lambda: (seed % 10_000) / 10_000)
