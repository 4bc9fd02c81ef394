"""Per-tenant usage counted by a service and added to storage's counters about once a second."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter

from allsource.storage.v1 import storage_pb2

from shared.core.errors import AllSourceError
from shared.core.reasons import Reason
from shared.storage.client import StorageClient

log = logging.getLogger(__name__)


class QueryCounter:
    """Counts query calls per tenant in memory (never a storage write per call)."""

    def __init__(self, storage: StorageClient, flush_s: float = 1.0) -> None:
        self.storage = storage
        self.flush_s = flush_s
        self._counts: Counter[str] = Counter()

    def count(self, tenant_id: str) -> None:
        """One more query call for the tenant."""
        self._counts[tenant_id] += 1

    async def flush(self) -> None:
        """Add what was counted to storage (kept for the next flush when storage does not answer)."""
        counts, self._counts = self._counts, Counter()
        for tenant_id, queries in counts.items():
            try:
                await self.storage.add_usage(storage_pb2.AddUsageRequest(tenant_id=tenant_id, queries=queries))
            except AllSourceError as exc:
                if exc.reason != Reason.TENANT_NOT_FOUND:
                    self._counts[tenant_id] += queries
                    log.warning("cannot record query usage", extra={"detail": exc.message})

    async def run(self, stop: asyncio.Event) -> None:
        """Flush every flush_s until stop is set, then once more."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.flush_s)
            await self.flush()
