"""engine.core.retry: Kestra retry policies and limits, and the worker following them."""

from __future__ import annotations

import random

import pytest

from engine.core.model import Retry
from engine.core.retry import attempt_delay, next_delay
from engine.testing.run import MemoryEngine


def zero() -> float:
    return 0.0


def test_constant() -> None:
    retry = Retry(type="constant", interval=5, max_attempt=3)
    assert next_delay(retry, 1, 0, zero) == 5
    assert next_delay(retry, 2, 5, zero) == 5
    assert next_delay(retry, 3, 10, zero) is None  # maxAttempt counts every attempt, the first included


def test_max_attempt_one_means_no_retry() -> None:
    assert next_delay(Retry(interval=1, max_attempt=1), 1, 0, zero) is None


def test_unlimited_without_limits() -> None:
    assert next_delay(Retry(interval=1), 1000, 1e6, zero) == 1


def test_max_duration() -> None:
    retry = Retry(type="constant", interval=10, max_duration=25)
    assert next_delay(retry, 1, 0, zero) == 10
    assert next_delay(retry, 2, 14.9, zero) == 10
    assert next_delay(retry, 2, 15.1, zero) is None


def test_exponential_default_factor_and_cap() -> None:
    retry = Retry(type="exponential", interval=1, max_interval=10)
    assert [next_delay(retry, n, 0, zero) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


def test_exponential_custom_factor_without_cap() -> None:
    retry = Retry(type="exponential", interval=2, delay_factor=3)
    assert [next_delay(retry, n, 0, zero) for n in (1, 2, 3)] == [2, 6, 18]
    assert next_delay(retry, 5000, 0, zero) == float("inf")  # overflow handled, no cap given


def test_random() -> None:
    retry = Retry(type="random", min_interval=2, max_interval=6)
    assert next_delay(retry, 1, 0, lambda: 0.0) == 2
    assert next_delay(retry, 1, 0, lambda: 0.5) == 4
    rng = random.Random(7)
    for _ in range(100):
        delay = next_delay(retry, 1, 0, rng.random)
        assert delay is not None and 2 <= delay <= 6


def test_random_respects_limits() -> None:
    retry = Retry(type="random", min_interval=1, max_interval=2, max_attempt=2, max_duration=10)
    assert next_delay(retry, 2, 0, zero) is None
    assert next_delay(retry, 1, 9.5, lambda: 0.9) is None


def test_invalid() -> None:
    with pytest.raises(ValueError, match="unknown retry type"):
        next_delay(Retry(type="fibonacci"), 1, 0, zero)
    with pytest.raises(ValueError, match="attempt"):
        next_delay(Retry(interval=1), 0, 0, zero)


# ---- attempt_delay: the rule on the history's dates, for the executor and the worker alike ----


def test_attempt_delay_counts_from_the_first_attempt_and_draws_from_the_taskrun() -> None:
    retry = Retry(type="random", min_interval=1, max_interval=9, max_duration=60)
    first = "2026-01-01T00:00:00.000000Z"
    a = attempt_delay(retry, "tr1", 1, first, "2026-01-01T00:00:05.000000Z")
    assert a is not None and 1 <= a <= 9
    assert attempt_delay(retry, "tr1", 1, first, "2026-01-01T00:00:05.000000Z") == a  # same history
    draws = {attempt_delay(retry, f"tr{i}", 1, first, "2026-01-01T00:00:05Z") for i in range(20)}
    assert len(draws) > 1  # jitter differs between taskruns
    assert attempt_delay(retry, "tr1", 1, first, "2026-01-01T00:00:59.500000Z") is None  # maxDuration
    assert attempt_delay(Retry(interval=2, max_attempt=3), "tr1", 3, first, first) is None  # maxAttempt


@pytest.mark.anyio
async def test_a_worker_retries_by_the_rule_and_stops_at_max_attempt() -> None:
    source = """
id: retried
namespace: memory.retry
tasks:
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
    retry:
      type: constant
      interval: PT0.01S
      maxAttempt: 3
"""
    async with MemoryEngine() as eng:
        state = await eng.run(await eng.deploy(source))
    assert state.state == "FAILED"
    (boom,) = state.taskruns.values()
    assert [a.number for a in boom.attempts] == [1, 2, 3]
    assert all(a.state == "FAILED" for a in boom.attempts)
