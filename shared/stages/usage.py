"""Usage accounting: each admitted call of a counted service is one query of its tenant (in memory,
added to storage's counters about once a second; see shared.tenancy.usage). The tenant's
max_queries_per_hour is checked here, right after admission, because this stage is what counts them:
past it a call is refused with RESOURCE_EXHAUSTED / QUOTA_EXCEEDED until the UTC hour ends; from the
soft share on, calls carry an x-allsource-quota-warning trailer. Operators' calls are counted, never
refused."""

from __future__ import annotations

import time
from collections.abc import Iterable

from shared.auth.rbac import P
from shared.core.tenant_ids import DEFAULT_TENANT
from shared.limits.governor import WARNING_KEY, Governor, plan_var
from shared.limits.plans import exceeded, past_soft
from shared.limits.windows import HOUR, seconds_to_reset, window_end_ns
from shared.rpc.chain import Call, MethodInfo, Stage
from shared.tenancy.usage import QueryCounter


class UsageAccounting(Stage):
    """Counts the calls of the given services per tenant, within the tenant's hourly quota."""

    name = "usage"

    def __init__(self, counter: QueryCounter, services: Iterable[str], governor: Governor | None = None) -> None:
        self.counter = counter
        self.services = frozenset(services)
        self.governor = governor

    def applies(self, method: MethodInfo) -> bool:
        return method.service in self.services

    def enter(self, call: Call) -> None:
        principal = call.principal
        tenant_id = principal.tenant_id if principal is not None else DEFAULT_TENANT
        plan = plan_var.get()
        limit = plan.limit("max_queries_per_hour") if plan is not None else None
        if limit is not None and not (principal is not None and P.PERMISSION_OPERATE in principal.permissions):
            now = time.time_ns()
            used = self.counter.this_hour(tenant_id, now)
            if used >= limit:
                raise exceeded(
                    tenant_id,
                    "max_queries_per_hour",
                    limit,
                    used,
                    f"{used} of {limit} queries used this UTC hour",
                    retry_after=seconds_to_reset(HOUR, now),
                    resets_at_ns=window_end_ns(HOUR, now),
                )
            if self.governor is not None and past_soft(used + 1, limit, self.governor.settings.soft_limit_ratio):
                call.trailing.append((WARNING_KEY, f"max_queries_per_hour: {used + 1} of {limit} used this UTC hour"))
                call.context.set_trailing_metadata(tuple(call.trailing))
                self.governor.warn(tenant_id, "max_queries_per_hour")
        self.counter.count(tenant_id)
