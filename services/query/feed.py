"""Following storage's commit feed (StorageService.FollowCommits) into this replica's read cache.

Each message is applied to the cache on the event loop and then acknowledged; storage answers the
writes it carries only after that (services.storage.feed). When the feed breaks, the cache stops being
used at once; it starts empty when the feed is back. Reconnection backs off from 50 ms to 1 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from allsource.storage.v1 import storage_pb2

from services.query.cache import ReadCache
from shared.core.errors import AllSourceError
from shared.storage.client import StorageClient

log = logging.getLogger(__name__)
BACKOFF_S = (0.05, 1.0)


class CommitFollower:
    """Keeps a ReadCache exact from the commit feed while the process runs."""

    def __init__(self, storage: StorageClient, cache: ReadCache) -> None:
        self.storage = storage
        self.cache = cache
        self.silence_s = 0.5  # query.cache_feed_silence_s
        self.messages = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Follow until stop is set, reconnecting after failures."""
        backoff = BACKOFF_S[0]
        stopped = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                backoff = await self._follow_once(stopped, backoff)
        finally:
            stopped.cancel()

    async def _follow_once(self, stopped: asyncio.Future[Any], backoff: float) -> float:
        """One connection to the feed, given up as soon as the process stops (the feed itself never
        ends: waiting for it made every shutdown last the whole grace period); returns the next backoff."""
        following = asyncio.ensure_future(self._follow())
        try:
            await asyncio.wait((following, stopped), return_when=asyncio.FIRST_COMPLETED)
            if not following.done():
                following.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await following
                return backoff
            try:
                following.result()
                backoff = BACKOFF_S[0]
            except AllSourceError as exc:
                log.info("the commit feed broke; the read cache is off until it is back", extra={"detail": exc.message})
        finally:
            self.cache.ask = None
            self.cache.feed_lost()
        await asyncio.wait((stopped,), timeout=backoff)
        return min(backoff * 2, BACKOFF_S[1])

    async def _follow(self) -> None:
        # Acknowledgements (sequence numbers) and tenants to register (ids), in the order they arose.
        outbox: asyncio.Queue[int | str] = asyncio.Queue()

        async def requests() -> AsyncIterator[storage_pb2.FollowCommitsRequest]:
            yield storage_pb2.FollowCommitsRequest(sequence=0)
            while True:
                items = [await outbox.get()]
                while not outbox.empty():  # what piled up goes in one message
                    items.append(outbox.get_nowait())
                acked = [item for item in items if isinstance(item, int)]
                yield storage_pb2.FollowCommitsRequest(
                    sequence=max(acked, default=0), tenant_ids=[item for item in items if isinstance(item, str)]
                )

        cache = self.cache
        async for message in self.storage.follow_commits(requests()):
            self.messages += 1
            if message.sequence == 0 and not message.changes:
                cache.silence_s = max(self.silence_s, 3 * message.heartbeat_s)
                cache.feed_started()
                cache.ask = outbox.put_nowait
                continue
            if message.registered_tenant_ids:
                cache.confirmed(message.registered_tenant_ids)
            for change in message.changes:
                if change.reset:
                    cache.reset(change.tenant_id, change.stream_id)
                else:
                    cache.advance(change.tenant_id, change.stream_id, change.version)
                    cache.reached(change.tenant_id, change.position)
            cache.feed_heard()
            if message.changes:
                outbox.put_nowait(message.sequence)
