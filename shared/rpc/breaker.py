"""A circuit breaker per upstream service: a dead upstream is answered in microseconds, not by piling up
calls that each wait for their deadline.

Closed: calls go through; `failure_threshold` consecutive failures of the transport (the upstream
unreachable or not answering in time) open it. Open: calls fail at once with UNAVAILABLE and a RetryInfo
of the time left open. After `open_s` one call is let through (half-open): its success closes the
breaker, its failure opens it again. The health monitor closes it as soon as the upstream reports
SERVING, so clients are back without waiting out the open period.
"""

from __future__ import annotations

import time

from shared.core.errors import Unavailable
from shared.core.reasons import Reason

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


class CircuitBreaker:
    """Tracks one upstream's transport failures."""

    def __init__(self, upstream: str, *, failure_threshold: int, open_s: float) -> None:
        self.upstream = upstream
        self.failure_threshold = failure_threshold
        self.open_s = open_s
        self.state = CLOSED
        self.failures = 0
        self._opened_at = 0.0
        self._probing = False
        self.opened_count = 0

    def before_call(self) -> None:
        """Raise UNAVAILABLE at once while open (one probe call passes once the open period is over)."""
        if self.state == CLOSED:
            return
        now = time.monotonic()
        left = self._opened_at + self.open_s - now
        if left <= 0 and not self._probing:
            self.state, self._probing = HALF_OPEN, True
            return
        raise Unavailable(
            f"{self.upstream} is unavailable (its circuit breaker is open after {self.failures} failed calls)",
            reason=Reason.STORAGE_UNAVAILABLE,
            metadata={"upstream": self.upstream, "breaker": self.state},
            retry_after=max(left, 0.05),
        )

    def succeeded(self) -> None:
        """A call reached the upstream and it answered (whatever the answer)."""
        self.state, self.failures, self._probing = CLOSED, 0, False

    def failed(self) -> None:
        """A call could not reach the upstream, or it did not answer in time."""
        self.failures += 1
        self._probing = False
        if self.state == HALF_OPEN or self.failures >= self.failure_threshold:
            if self.state != OPEN:
                self.opened_count += 1
            self.state, self._opened_at = OPEN, time.monotonic()

    def reset(self) -> None:
        """The upstream reports SERVING again: close at once."""
        self.succeeded()
