"""Bounded shares per tenant of work that would otherwise be first come, first served.

`Turns`: at most `per_key` holders per key (a tenant) at a time, the rest wait their turn; one tenant's
many callers queue behind each other, not in front of everyone else's. `ThreadShares`: CPU-heavy work (a
password hash, an entity-state fold) on a thread within such a share, so that one tenant's flood waits
behind its own work, not in front of other tenants' in the thread pool.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

T = TypeVar("T")


class Turns:
    """At most `per_key` holders per key at a time; the others wait (FIFO) for one to leave."""

    def __init__(self, per_key: int) -> None:
        self.per_key = per_key
        self._turns: dict[object, tuple[asyncio.Semaphore, list[int]]] = {}  # per key: the bound, its callers

    @contextlib.asynccontextmanager
    async def hold(self, key: object) -> AsyncIterator[None]:
        turn = self._turns.get(key)
        if turn is None:
            turn = self._turns[key] = (asyncio.Semaphore(self.per_key), [0])
        bound, callers = turn
        callers[0] += 1
        try:
            async with bound:
                yield
        finally:
            callers[0] -= 1
            if not callers[0]:
                del self._turns[key]


class ThreadShares:
    """At most `per_tenant` of a tenant's calls on threads at a time; the rest wait their turn."""

    def __init__(self, per_tenant: int) -> None:
        self.turns = Turns(per_tenant)

    async def run(self, tenant_id: str, fn: Callable[..., T], *args: Any) -> T:
        """fn(*args) on a thread, within the tenant's share."""
        async with self.turns.hold(tenant_id):
            return await asyncio.to_thread(fn, *args)
