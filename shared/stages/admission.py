"""Admission: whether the suite takes the call now (load shedding; rate limits and quota pre-checks).

Placed after authorization, so that a refusal names the caller's own budget and only admitted calls
are counted, and before usage accounting and the handler. A refusal costs microseconds and carries
RetryInfo: an overloaded process answers UNAVAILABLE / OVERLOADED at once rather than queueing
without bound or timing out. Operators' calls are exempt (they must be able to act on an overloaded
suite), and so are internal control calls and health checks (not in this stage at all).
"""

from __future__ import annotations

import random

from shared.auth.rbac import P
from shared.config.settings import LimitsSettings
from shared.core.errors import Unavailable
from shared.core.reasons import Reason
from shared.rpc.chain import Call, MethodInfo, Outcome, Stage


class Admission(Stage):
    """Bounds the unary calls a process works on at once."""

    name = "admission"

    def __init__(self, limits: LimitsSettings) -> None:
        self.limits = limits
        self.in_flight = 0
        self.shed = 0

    def applies(self, method: MethodInfo) -> bool:
        return not method.control

    def enter(self, call: Call) -> None:
        principal = call.principal
        if principal is not None and P.PERMISSION_OPERATE in principal.permissions:
            return
        if call.method.streaming:
            # Streams have bounds of their own (subscription slots, BatchAppend windows): a long-lived
            # stream must not hold a slot that unary calls need.
            return
        if self.in_flight >= self.limits.max_in_flight_calls:
            self.shed += 1
            delay = self.limits.overload_retry_after_s
            raise Unavailable(
                "this service is working on as many calls as it can; retry shortly",
                reason=Reason.OVERLOADED,
                metadata={"limit": "max_in_flight_calls", "value": str(self.limits.max_in_flight_calls)},
                retry_after=delay * (1 + random.random()),
            )
        self.in_flight += 1
        call.admitted = True

    def exit(self, call: Call, outcome: Outcome) -> None:
        if call.admitted:
            self.in_flight -= 1
