"""workers.retry.next_delay: Kestra constant / exponential / random policies and limits."""

from __future__ import annotations

import random

import pytest

from engine.core.model import Retry
from engine.core.retry import next_delay


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
