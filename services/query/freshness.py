"""Reads with min_position: read-your-writes across query replicas.

A writer's append through any replica answers with its log position; a read through another replica
may name it as min_position, and the read waits until this replica has seen the tenant's log reach it:

- the commit feed brought it (the replica follows the tenant and its cache applied that append): the
  read goes on as usual, cache included;
- else storage's head has reached it (storage commits before it publishes to the feed, and a replica
  that does not follow the tenant has nothing cached of it): the read goes on past the cache (BYPASS),
  straight to storage, which has it;
- else the read waits, woken by the feed or polling storage's head (5 ms doubling to 100 ms), for at
  most query.min_position_wait_ms; then UNAVAILABLE with MIN_POSITION_NOT_REACHED and RetryInfo. A
  position beyond the tenant's log therefore costs the wait and a bounded number of small storage calls,
  never a hang. Waiting reads of a tenant share its head calls: at most one is in flight per tenant.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from allsource.storage.v1 import model_pb2, storage_pb2

from services.query.cache import BYPASS, ReadCache
from shared.core.errors import Unavailable
from shared.core.reasons import Reason
from shared.storage.client import StorageClient

POLL_S = (0.005, 0.1)
# ReadEvents after this position examines nothing (the range is empty) and reports the tenant's head.
_PAST_ANY = 1 << 62


async def storage_head(storage: StorageClient, tenant_id: str) -> int:
    """The tenant's last committed log position, as storage has it now."""
    run, _ = await storage.read_events(
        storage_pb2.ReadEventsRequest(
            tenant_id=tenant_id, filter=model_pb2.EventFilter(), after_position=_PAST_ANY, limit=1, max_scan=1
        )
    )
    return run.head_position


class HeadPolls:
    """Storage head calls shared by the reads waiting on a tenant (one in flight per tenant). A read that
    joins a call begun before its position was committed may see an older head: it simply asks again."""

    def __init__(self, storage: StorageClient) -> None:
        self.storage = storage
        self.calls = 0
        self._inflight: dict[str, asyncio.Future[int]] = {}

    async def head(self, tenant_id: str) -> int:
        """The tenant's head from the call in flight, or from a new one."""
        future = self._inflight.get(tenant_id)
        if future is None:
            self.calls += 1
            future = asyncio.ensure_future(storage_head(self.storage, tenant_id))
            self._inflight[tenant_id] = future
            future.add_done_callback(lambda done: self._finished(tenant_id, done))
        return await asyncio.shield(future)

    def _finished(self, tenant_id: str, future: asyncio.Future[int]) -> None:
        if self._inflight.get(tenant_id) is future:
            del self._inflight[tenant_id]
        if not future.cancelled():
            future.exception()  # retrieved here too, should every waiter have gone


async def await_position(cache: ReadCache, heads: HeadPolls, tenant_id: str, min_position: int, wait_s: float) -> None:
    """Return once this replica may answer reads of the tenant as of min_position (see the module)."""
    if not min_position or cache.applied(tenant_id) >= min_position:
        return
    deadline = time.monotonic() + wait_s
    delay = POLL_S[0]
    while True:
        head = await heads.head(tenant_id)
        if cache.applied(tenant_id) >= min_position:
            return
        if head >= min_position:
            BYPASS.set(True)  # this handler's task only: its reads go to storage
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Unavailable(
                f"the tenant's log has not reached position {min_position} here within {wait_s * 1000:g} ms "
                f"(it is at {head})",
                reason=Reason.MIN_POSITION_NOT_REACHED,
                metadata={"min_position": str(min_position), "head_position": str(head)},
                retry_after=max(wait_s, 0.1),
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(cache.moved.wait(), min(delay, remaining))
        delay = min(delay * 2, POLL_S[1])
