"""Admission: whether the suite takes the call now (load shedding; rate limits and quota pre-checks).

Placed after authorization, so that a refusal names the caller's own budget and only admitted calls
are counted, and before usage accounting and the handler. A refusal costs microseconds and carries
RetryInfo: an overloaded process answers UNAVAILABLE / OVERLOADED at once rather than queueing
without bound or timing out; a tenant past a rate limit gets RESOURCE_EXHAUSTED / RATE_LIMITED (see
shared.limits.governor). Operators' calls are exempt from both (they must be able to act on an
overloaded or throttled suite), and so are internal control calls and health checks (not in this stage
at all). Every call with a tenant gets the tenant's plan in force (`shared.limits.governor.plan_var`):
handlers read per-request quotas from it (event and result sizes, API keys, users).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable
from typing import Any

from shared.auth.rbac import P
from shared.config.settings import LimitsSettings
from shared.core.errors import Unavailable
from shared.core.reasons import Reason
from shared.limits.governor import Governor, plan_var, share_exceeded
from shared.rpc.chain import Call, MethodInfo, Outcome, Stage
from shared.telemetry import tracing


class Admission(Stage):
    """Bounds the unary calls a process works on at once; applies rate limits and quota pre-checks."""

    name = "admission"

    def __init__(self, limits: LimitsSettings, governor: Governor | None = None) -> None:
        self.limits = limits
        self.governor = governor
        self.in_flight = 0
        self.shed = 0
        self.by_tenant: dict[str, int] = {}  # slots held per tenant (only tenants holding some)

    def applies(self, method: MethodInfo) -> bool:
        return not method.control

    def enter(self, call: Call) -> Awaitable[None] | None:
        leaf = tracing.leaf_of(call.span, "admission")
        if leaf is None:
            return self._admit(call)
        try:
            pending = self._admit(call)
        except BaseException as exc:
            tracing.close_leaf(leaf, exc)
            raise
        if pending is None:  # decided at once (the common case): no coroutine to make
            tracing.close_leaf(leaf)
            return None
        return self._wait(pending, leaf)

    @staticmethod
    async def _wait(pending: Awaitable[None], leaf: Any) -> None:
        try:
            await pending
        except BaseException as exc:
            tracing.close_leaf(leaf, exc)
            raise
        tracing.close_leaf(leaf)

    def _admit(self, call: Call) -> Awaitable[None] | None:
        principal = call.principal
        governor = self.governor
        plan = None
        if principal is not None and governor is not None:
            plan = governor.plan(principal.tenant_id, call.tenant)
            plan_var.set(plan)
        if principal is not None and P.PERMISSION_OPERATE in principal.permissions:
            return None
        if not call.method.streaming:
            # Streams have bounds of their own (subscription slots, BatchAppend windows): a long-lived
            # stream must not hold a slot that unary calls need.
            if self.in_flight >= self.limits.max_in_flight_calls:
                self.shed += 1
                delay = self.limits.overload_retry_after_s
                raise Unavailable(
                    "this service is working on as many calls as it can; retry shortly",
                    reason=Reason.OVERLOADED,
                    metadata={"limit": "max_in_flight_calls", "value": str(self.limits.max_in_flight_calls)},
                    retry_after=delay * (1 + random.random()),
                )
            # A call without credentials (Login, health) counts against the tenant it names, apart from that
            # tenant's authenticated calls: one tenant's flood of logins leaves other tenants' logins room.
            tenant = principal.tenant_id if principal is not None else _anonymous_share(call)
            held = self.by_tenant.get(tenant, 0)
            if held >= self.limits.max_in_flight_calls_per_tenant:
                limit = self.limits.max_in_flight_calls_per_tenant
                raise share_exceeded(
                    tenant,
                    "max_in_flight_calls_per_tenant",
                    limit,
                    f"{limit} calls in progress",
                    "calls_in_flight",
                    self.limits.overload_retry_after_s * (1 + random.random()),
                )
            self.in_flight += 1
            self.by_tenant[tenant] = held + 1
            call.admitted = True
            call.share = tenant
        if governor is not None:
            return governor.admit(call, plan)
        return None

    def after(self, call: Call, response: Any) -> None:
        if call.rate is not None and self.governor is not None:
            self.governor.settle(call, response)

    def exit(self, call: Call, outcome: Outcome) -> None:
        if call.admitted:
            self.in_flight -= 1
            tenant = call.share
            left = self.by_tenant[tenant] - 1
            if left:
                self.by_tenant[tenant] = left
            else:
                del self.by_tenant[tenant]


def _anonymous_share(call: Call) -> str:
    """The share a call without credentials holds: the tenant its request names (Login), cut short."""
    named = getattr(call.request, "tenant_id", "") if call.request is not None else ""
    return "anonymous:" + (named[:64] if isinstance(named, str) else "")
