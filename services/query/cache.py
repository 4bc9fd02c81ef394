"""Events this query replica has read, by id, kept in memory (events are immutable).

Bounded per tenant and in total (bytes of the stored event encodings): a tenant's entries are evicted
least recently used first once it holds its share, and the oldest of any tenant once the total is
reached, so no tenant can evict another's entries below its share. While storage cannot be reached,
GetEvent answers from here (degraded reads); authorization and scope checks apply to cached events
exactly as to fresh ones.
"""

from __future__ import annotations

from collections import OrderedDict


class EventCache:
    """Serialized events by (tenant, event id), LRU within bounds."""

    def __init__(self, *, max_bytes: int, max_bytes_per_tenant: int) -> None:
        self.max_bytes = max_bytes
        self.max_bytes_per_tenant = max_bytes_per_tenant
        self._tenants: dict[str, OrderedDict[str, bytes]] = {}
        self._tenant_bytes: dict[str, int] = {}
        self._order: OrderedDict[tuple[str, str], None] = OrderedDict()  # all entries, oldest first
        self.size = 0
        self.hits = self.misses = self.evictions = 0

    def get(self, tenant_id: str, event_id: str) -> bytes | None:
        """The event, if cached (and marks it recently used)."""
        entries = self._tenants.get(tenant_id)
        data = entries.get(event_id) if entries is not None else None
        if data is None or entries is None:
            self.misses += 1
            return None
        self.hits += 1
        entries.move_to_end(event_id)
        self._order.move_to_end((tenant_id, event_id))
        return data

    def put(self, tenant_id: str, event_id: str, data: bytes) -> None:
        """Keep an event (too large ones are not kept)."""
        if len(data) > self.max_bytes_per_tenant or self.max_bytes <= 0:
            return
        entries = self._tenants.setdefault(tenant_id, OrderedDict())
        if event_id in entries:
            entries.move_to_end(event_id)
            self._order.move_to_end((tenant_id, event_id))
            return
        while self._tenant_bytes.get(tenant_id, 0) + len(data) > self.max_bytes_per_tenant:
            self._evict(tenant_id, next(iter(entries)))
        while self.size + len(data) > self.max_bytes:
            self._evict(*next(iter(self._order)))
        entries[event_id] = data
        self._order[(tenant_id, event_id)] = None
        self._tenant_bytes[tenant_id] = self._tenant_bytes.get(tenant_id, 0) + len(data)
        self.size += len(data)

    def forget_tenant(self, tenant_id: str) -> None:
        """Drop a tenant's entries (it was deleted or deactivated)."""
        for event_id in list(self._tenants.get(tenant_id, ())):
            self._evict(tenant_id, event_id)

    def _evict(self, tenant_id: str, event_id: str) -> None:
        entries = self._tenants[tenant_id]
        data = entries.pop(event_id)
        del self._order[(tenant_id, event_id)]
        self._tenant_bytes[tenant_id] -= len(data)
        self.size -= len(data)
        self.evictions += 1
        if not entries:
            del self._tenants[tenant_id]
            del self._tenant_bytes[tenant_id]
