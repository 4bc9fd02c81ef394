"""How many live subscriptions this query process holds, in all and per tenant.

Each subscription holds a stream to storage and a task for as long as the client keeps it open, so
their number is bounded: past the tenant's share the call is refused with RESOURCE_EXHAUSTED /
QUOTA_EXCEEDED (the tenant may close some), past the process's total with UNAVAILABLE / OVERLOADED
(another replica may have room). Both carry RetryInfo.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator

from shared.config.settings import QuerySettings
from shared.core.errors import ResourceExhausted, Unavailable
from shared.core.reasons import Reason

RETRY_AFTER_S = 5.0


class SubscriptionSlots:
    """Counts open subscriptions; `hold` refuses one that would exceed a bound."""

    def __init__(self, settings: QuerySettings) -> None:
        self.settings = settings
        self.per_tenant: Counter[str] = Counter()
        self.total = 0

    @contextlib.contextmanager
    def hold(self, tenant_id: str) -> Iterator[None]:
        """Hold a slot for the subscription's lifetime."""
        limit = self.settings.max_subscriptions_per_tenant
        if self.per_tenant[tenant_id] >= limit:
            raise ResourceExhausted(
                f"this tenant already has {limit} live subscriptions on this replica; close one, or retry later",
                reason=Reason.QUOTA_EXCEEDED,
                metadata={"limit": "max_subscriptions_per_tenant", "value": str(limit)},
                quota_violations=[("max_subscriptions_per_tenant", f"at most {limit} live subscriptions")],
                retry_after=RETRY_AFTER_S,
            )
        if self.total >= self.settings.max_subscriptions:
            raise Unavailable(
                "this replica holds as many subscriptions as it serves; retry later or on another replica",
                reason=Reason.OVERLOADED,
                metadata={"limit": "max_subscriptions", "value": str(self.settings.max_subscriptions)},
                retry_after=RETRY_AFTER_S,
            )
        self.per_tenant[tenant_id] += 1
        self.total += 1
        try:
            yield
        finally:
            self.total -= 1
            self.per_tenant[tenant_id] -= 1
            if not self.per_tenant[tenant_id]:
                del self.per_tenant[tenant_id]
