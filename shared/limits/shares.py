"""Work on threads, a bounded share per tenant: CPU-heavy work (a password hash, an entity-state fold)
leaves the event loop for a thread, and no tenant holds more than `per_tenant` threads of the pool at
once, so one tenant's flood waits behind its own work, not in front of everyone else's."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class ThreadShares:
    """At most `per_tenant` of a tenant's calls on threads at a time; the rest wait their turn."""

    def __init__(self, per_tenant: int) -> None:
        self.per_tenant = per_tenant
        self._turns: dict[str, tuple[asyncio.Semaphore, list[int]]] = {}  # per tenant: the bound, its callers

    async def run(self, tenant_id: str, fn: Callable[..., T], *args: Any) -> T:
        """fn(*args) on a thread, within the tenant's share."""
        turn = self._turns.get(tenant_id)
        if turn is None:
            turn = self._turns[tenant_id] = (asyncio.Semaphore(self.per_tenant), [0])
        bound, callers = turn
        callers[0] += 1
        try:
            async with bound:
                return await asyncio.to_thread(fn, *args)
        finally:
            callers[0] -= 1
            if not callers[0]:
                del self._turns[tenant_id]
