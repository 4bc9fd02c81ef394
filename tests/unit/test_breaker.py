"""The circuit breaker: closed, open after consecutive failures (failing at once, with a retry delay),
half-open after the open period (one probe), closed by a success or by the upstream reporting SERVING."""

from __future__ import annotations

import time

import pytest

from shared.core.errors import AllSourceError
from shared.rpc.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker


def test_opens_after_consecutive_failures_and_refuses_at_once_with_retry_info() -> None:
    breaker = CircuitBreaker("storage", failure_threshold=3, open_s=0.2)
    for _ in range(2):
        breaker.before_call()
        breaker.failed()
    assert breaker.state == CLOSED
    breaker.succeeded()  # a success in between starts the count again
    for _ in range(3):
        breaker.before_call()
        breaker.failed()
    assert breaker.state == OPEN
    began = time.perf_counter()
    with pytest.raises(AllSourceError) as err:
        breaker.before_call()
    assert time.perf_counter() - began < 0.01
    assert (err.value.code.name, err.value.reason) == ("UNAVAILABLE", "STORAGE_UNAVAILABLE")
    assert err.value.retry_after is not None and 0 < err.value.retry_after <= 0.2


def test_one_probe_after_the_open_period_then_closed_or_open_again() -> None:
    breaker = CircuitBreaker("storage", failure_threshold=1, open_s=0.05)
    breaker.failed()
    time.sleep(0.06)
    breaker.before_call()  # the probe
    assert breaker.state == HALF_OPEN
    with pytest.raises(AllSourceError):
        breaker.before_call()  # only one probe at a time
    breaker.failed()
    assert breaker.state == OPEN
    time.sleep(0.06)
    breaker.before_call()
    breaker.succeeded()
    assert breaker.state == CLOSED
    breaker.before_call()


def test_the_upstream_reporting_serving_closes_it_at_once() -> None:
    breaker = CircuitBreaker("storage", failure_threshold=1, open_s=60)
    breaker.failed()
    with pytest.raises(AllSourceError):
        breaker.before_call()
    breaker.reset()
    breaker.before_call()
    assert breaker.state == CLOSED
