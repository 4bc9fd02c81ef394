"""The commit feed: each query replica's read cache hears of every new stream head and lifecycle change
before the write that made it is acknowledged.

A follower (one FollowCommits stream) gets one message per published batch of changes, in order, and
acknowledges it by sequence. `publish` returns once every follower has acknowledged, or has been cut off
after `ack_timeout_s` (its stream ends; the replica stops using its cache until it follows again and
starts from an empty one). So an append acknowledged to its writer is already known to every cache that
is in use: a read after it, through any replica, sees it. Messages are small (stream ids and versions)
and a follower holds at most one unacknowledged message per concurrent writer call, so its queue is
bounded by the writers' concurrency.

A follower registers the tenants it caches (and keeps nothing of a tenant before storage confirmed it);
only their changes are sent to it and waited for, so writes of tenants nobody reads through a cache pay
nothing for the feed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Sequence

from allsource.storage.v1 import storage_pb2

from shared.core.errors import Unavailable
from shared.core.reasons import Reason

log = logging.getLogger(__name__)
MAX_TENANTS = 100_000  # tenants one follower may register


class Follower:
    """One FollowCommits stream: messages to send, and the waits for their acknowledgement."""

    def __init__(self) -> None:
        self.sent = 0
        self.acked = 0
        self.outbox: deque[storage_pb2.FollowCommitsResponse] = deque()
        self.ended: str | None = None  # why the follower was cut off
        self.tenants: set[str] = set()  # whose changes it is sent (and waited for)
        self._wake = asyncio.Event()
        self._waits: deque[tuple[int, asyncio.Future[None]]] = deque()

    def send(self, changes: Sequence[storage_pb2.StreamChange]) -> asyncio.Future[None]:
        """Queue a message; the future resolves once the follower acknowledged it (or is gone)."""
        self.sent += 1
        self.outbox.append(storage_pb2.FollowCommitsResponse(sequence=self.sent, changes=changes))
        self._wake.set()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.ended is not None:
            future.set_result(None)
        else:
            self._waits.append((self.sent, future))
        return future

    def register(self, tenant_ids: Sequence[str]) -> None:
        """The follower starts caching these tenants: confirm, in order with the changes already sent."""
        if len(self.tenants) + len(tenant_ids) > MAX_TENANTS:
            self.end(f"a follower caches at most {MAX_TENANTS} tenants")
            return
        self.tenants.update(tenant_ids)
        self.sent += 1
        self.outbox.append(storage_pb2.FollowCommitsResponse(sequence=self.sent, registered_tenant_ids=tenant_ids))
        self._wake.set()

    def ack(self, sequence: int) -> None:
        """The follower applied every message up to this sequence."""
        self.acked = max(self.acked, min(sequence, self.sent))
        while self._waits and self._waits[0][0] <= self.acked:
            _, future = self._waits.popleft()
            if not future.done():
                future.set_result(None)

    def end(self, why: str) -> None:
        """Cut the follower off: nobody waits for it any more, and its stream ends."""
        if self.ended is None:
            self.ended = why
        while self._waits:
            _, future = self._waits.popleft()
            if not future.done():
                future.set_result(None)
        self._wake.set()

    async def messages(self, heartbeat_s: float) -> AsyncIterator[storage_pb2.FollowCommitsResponse]:
        """What to send: queued messages, and a heartbeat whenever nothing was sent for heartbeat_s."""
        yield storage_pb2.FollowCommitsResponse(sequence=0, heartbeat_s=heartbeat_s)
        while True:
            # Cut off, what is still queued is not sent (the follower must not take it as the feed going
            # on): the stream ends at once.
            while self.outbox and self.ended is None:
                yield self.outbox.popleft()
            if self.ended is not None:
                raise Unavailable(
                    f"commit feed ended: {self.ended}", reason=Reason.COMMIT_FOLLOWER_CUT_OFF, retry_after=0.1
                )
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), heartbeat_s)
            except TimeoutError:
                yield storage_pb2.FollowCommitsResponse(sequence=self.sent, heartbeat_s=heartbeat_s)


class CommitFeed:
    """The followers of this storage process, and publishing to them."""

    def __init__(self, *, ack_timeout_s: float, heartbeat_s: float, max_followers: int) -> None:
        self.ack_timeout_s = ack_timeout_s
        self.heartbeat_s = heartbeat_s
        self.max_followers = max_followers
        self.followers: set[Follower] = set()
        self.cut_off = 0  # followers ended for not acknowledging in time

    def join(self) -> Follower:
        """A new follower (UNAVAILABLE past max_followers)."""
        if len(self.followers) >= self.max_followers:
            raise Unavailable(
                f"storage serves at most {self.max_followers} commit followers", reason=Reason.OVERLOADED, retry_after=1
            )
        follower = Follower()
        self.followers.add(follower)
        return follower

    def leave(self, follower: Follower) -> None:
        """The follower's stream ended."""
        follower.end("the follower left")
        self.followers.discard(follower)

    async def publish(self, changes: Sequence[storage_pb2.StreamChange]) -> None:
        """Tell every follower caching a tenant of the changes; return once each acknowledged or was cut off."""
        if not changes or not self.followers:
            return
        sent = {}
        for follower in list(self.followers):
            if follower.tenants:
                theirs = [change for change in changes if change.tenant_id in follower.tenants]
                if theirs:
                    sent[follower] = follower.send(theirs)
        if not sent:
            return
        _, late = await asyncio.wait(sent.values(), timeout=self.ack_timeout_s)
        if late:
            for follower, future in sent.items():
                if future in late:
                    self.cut_off += 1
                    log.warning(
                        "a commit follower did not acknowledge in time; cut off",
                        extra={"timeout_s": self.ack_timeout_s},
                    )
                    follower.end(f"no acknowledgement within {self.ack_timeout_s:g} s")
                    self.followers.discard(follower)


def stream_change(tenant_id: str, stream_id: str = "", version: int = 0, position: int = 0) -> storage_pb2.StreamChange:
    """A new head (version set, with the append's last log position) or a reset of a stream (or of the
    whole tenant, without stream_id)."""
    return storage_pb2.StreamChange(
        tenant_id=tenant_id, stream_id=stream_id, version=version, reset=not version, position=position
    )
