"""Per-tenant query calls counted by a service and added to storage's counters about once a second.

Storage answers each addition with the tenant's count for the UTC hour, so the service knows where a
tenant stands against max_queries_per_hour without asking: its own calls since the last addition plus
storage's figure (other replicas' calls arrive with their own additions, a second late at most; the
over-admission bound is one flush interval of calls per replica).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter

from allsource.storage.v1 import storage_pb2

from shared.core.errors import AllSourceError
from shared.core.reasons import Reason
from shared.storage.client import StorageClient

log = logging.getLogger(__name__)
HOUR_NS = 3600 * 1_000_000_000


class QueryCounter:
    """Counts query calls per tenant in memory (never a storage write per call)."""

    def __init__(self, storage: StorageClient, flush_s: float = 1.0) -> None:
        self.storage = storage
        self.flush_s = flush_s
        self._counts: Counter[str] = Counter()
        # tenant -> (UTC hour, the hour's count as storage last reported it, calls counted here since)
        self._known: dict[str, tuple[int, int, int]] = {}

    def count(self, tenant_id: str) -> None:
        """One more query call for the tenant."""
        self._counts[tenant_id] += 1
        known = self._known.get(tenant_id)
        if known is not None:
            self._known[tenant_id] = (known[0], known[1], known[2] + 1)

    def this_hour(self, tenant_id: str, now_ns: int | None = None) -> int:
        """The tenant's query calls this UTC hour, as far as this process knows."""
        hour = (time.time_ns() if now_ns is None else now_ns) // HOUR_NS
        known = self._known.get(tenant_id)
        if known is None or known[0] != hour:
            return self._counts.get(tenant_id, 0)
        return known[1] + known[2]

    async def flush(self) -> None:
        """Add what was counted to storage (kept for the next flush when storage does not answer)."""
        counts, self._counts = self._counts, Counter()
        for tenant_id, queries in counts.items():
            try:
                reply = await self.storage.add_usage(storage_pb2.AddUsageRequest(tenant_id=tenant_id, queries=queries))
            except AllSourceError as exc:
                if exc.reason != Reason.TENANT_NOT_FOUND:
                    self._counts[tenant_id] += queries
                    log.warning("cannot record query usage", extra={"detail": exc.message})
                continue
            if len(self._known) > 100_000:
                self._known.clear()
            # Calls counted while this addition was under way are the ones not in storage's figure.
            self._known[tenant_id] = (
                time.time_ns() // HOUR_NS,
                reply.queries_this_hour,
                self._counts.get(tenant_id, 0),
            )

    async def run(self, stop: asyncio.Event) -> None:
        """Flush every flush_s until stop is set, then once more."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.flush_s)
            await self.flush()
