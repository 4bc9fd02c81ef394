"""How many long-lived streams of each kind this query process carries, in all and per tenant: live
subscriptions (Subscribe), consumer-group Consume streams, and exports (StreamEvents).

Each holds a stream to storage or keeps storage scanning for as long as the client keeps it open, so
their number is bounded: past the tenant's share the call is refused with RESOURCE_EXHAUSTED /
QUOTA_EXCEEDED (the tenant may close some), past the process's total with UNAVAILABLE / OVERLOADED
(another replica may have room). Both carry RetryInfo. The bounds are the settings query.max_<kind> and
query.max_<kind>_per_tenant.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator

from shared.config.settings import QuerySettings
from shared.core.errors import ResourceExhausted, Unavailable
from shared.core.reasons import Reason

RETRY_AFTER_S = 5.0


class StreamSlots:
    """Counts the open streams of one kind; `hold` refuses one that would exceed a bound."""

    def __init__(self, settings: QuerySettings, kind: str, what: str) -> None:
        self.settings = settings
        self.kind = kind  # "subscriptions", "consume_streams", "exports": the settings' names
        self.what = what  # how the refusals name them
        self.per_tenant: Counter[str] = Counter()
        self.total = 0

    @contextlib.contextmanager
    def hold(self, tenant_id: str) -> Iterator[None]:
        """Hold a slot for the stream's lifetime."""
        per_tenant, total = f"max_{self.kind}_per_tenant", f"max_{self.kind}"
        limit = getattr(self.settings, per_tenant)
        if self.per_tenant[tenant_id] >= limit:
            raise ResourceExhausted(
                f"this tenant already has {limit} {self.what} on this replica; close one, or retry later",
                reason=Reason.QUOTA_EXCEEDED,
                metadata={"limit": per_tenant, "value": str(limit)},
                quota_violations=[(per_tenant, f"at most {limit} {self.what}")],
                retry_after=RETRY_AFTER_S,
            )
        bound = getattr(self.settings, total)
        if self.total >= bound:
            raise Unavailable(
                f"this replica carries as many {self.what} as it serves; retry later or on another replica",
                reason=Reason.OVERLOADED,
                metadata={"limit": total, "value": str(bound)},
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
