"""Commit notifications for live readers, living on the event loop.

The writer publishes each tenant's new head position after a batch is durable; subscribers wait here
instead of polling the database.
"""

from __future__ import annotations

import asyncio


class CommitHub:
    """Each tenant's committed head position, and a way to wait for it to move."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._heads: dict[int, int] = {}
        self._waiters: dict[int, asyncio.Future[None]] = {}

    def head(self, tenant_no: int) -> int:
        """The tenant's last committed position."""
        return self._heads.get(tenant_no, 0)

    def set_head(self, tenant_no: int, position: int) -> None:
        """Record a head without waking anyone (used when opening the store)."""
        self._heads[tenant_no] = position

    def publish(self, heads: dict[int, int]) -> None:
        """Record new heads after a durable commit and wake the readers waiting for them."""
        for tenant_no, position in heads.items():
            if position > self._heads.get(tenant_no, 0):
                self._heads[tenant_no] = position
            waiter = self._waiters.pop(tenant_no, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def wake(self, tenant_no: int) -> None:
        """Wake the tenant's waiting readers without a new head (its status changed: they re-check it)."""
        waiter = self._waiters.pop(tenant_no, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self, tenant_no: int, after_position: int, timeout: float) -> bool:
        """Wait until the tenant's head is beyond after_position; False when the timeout passes first."""
        deadline = self._loop.time() + timeout
        while self._heads.get(tenant_no, 0) <= after_position:
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                return False
            waiter = self._waiters.get(tenant_no)
            if waiter is None or waiter.done():
                waiter = self._loop.create_future()
                self._waiters[tenant_no] = waiter
            try:
                await asyncio.wait_for(asyncio.shield(waiter), remaining)
            except TimeoutError:
                return False
            if self._heads.get(tenant_no, 0) <= after_position:
                return False  # woken without a commit (see wake): let the reader look again
        return True
