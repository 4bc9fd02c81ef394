"""The query replica's read cache: events by id, stream pages and folded entity states.

Events never change, and neither does a stream page that stops short of the stream's end, except by a
deletion, a truncation or a metadata change. So the cache is kept exact by storage's commit feed
(services.query.feed): a new head drops the pages that reached the old end and moves the head the
others report; a lifecycle change drops everything of the stream (or of the tenant). Storage answers a
write only after this replica applied its change, so a read through this replica after an
acknowledged write always sees it. The cache is used only while the feed is alive (a heartbeat heard
within query.cache_feed_silence_s); it starts empty each time the feed is (re)established.

A read that misses takes a ticket before it asks storage; a change to its stream while it is in flight
voids the ticket, and the answer is then returned but not kept (it may predate the change).

Bounded per tenant and in total (bytes of what is kept, plus a fixed overhead per entry): a tenant's
entries are evicted least recently used first once it holds its share, and when the total is reached
the tenant holding the most gives up its oldest entry, so no tenant can push another below an equal
share of the total. Authorization and scope checks run before the handlers, so they apply to cached
answers exactly as to fresh ones. While storage cannot be reached at all, GetEvent answers from the
events kept here, also those read while the feed was not watching them (degraded reads: events never
change; only a deletion could have removed one meanwhile).

Only the tenants this replica caches are followed: the first read of a tenant registers it with
storage, and entries are kept exact from its confirmation on (a change committed before it arrives
first, in order). Writes of tenants no replica caches pay nothing for the feed.

The feed also brings each append's log position, so a read with min_position (services.query.freshness)
knows when this replica has applied it; a read that has to go past the cache for it sets BYPASS.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from allsource.storage.v1 import storage_pb2

# Bytes counted per entry beyond its data and the text of its key: the entry, the page, its key tuple,
# the LRU links, the stream's key set (measured with tracemalloc: 160 counted a third of what it took).
ENTRY_OVERHEAD = 464
KINDS = ("event", "page", "state")
# Set for a call whose reads must come from storage (it asked for a position this cache has not applied
# yet): gets miss; what the reads return is kept as usual (tickets decide whether it is exact).
BYPASS: ContextVar[bool] = ContextVar("read_cache_bypass", default=False)


@dataclass(slots=True)
class Page:
    """A stream page: its events as storage sent them (field 1 of the read responses), with the head."""

    events: bytes
    count: int
    stream_version: int
    next_version: int
    open: bool  # it reached the stream's end (or starts from it): a new head changes it


def make_page(piece: storage_pb2.ReadStreamResponse, raw: bytes, backward: bool, from_version: int) -> Page:
    """A Page of storage's slice `piece`, serialized as `raw`: its events field is cut from the bytes
    (the other fields follow it; see storage.proto), never re-encoded."""
    tail = storage_pb2.ReadStreamResponse(
        stream_version=piece.stream_version, next_version=piece.next_version, volatile=piece.volatile
    ).SerializeToString()
    if raw.endswith(tail):
        events = raw[: len(raw) - len(tail)]
    else:  # another field order than ours: re-encode rather than guess
        events = storage_pb2.ReadStreamResponse(events=piece.events).SerializeToString()
    return Page(
        events, len(piece.events), piece.stream_version, piece.next_version, open_page(piece, backward, from_version)
    )


def open_page(piece: storage_pb2.ReadStreamResponse, backward: bool, from_version: int) -> bool:
    """Whether a new head of the stream changes this page: it reached the end (forwards), or starts at or
    beyond it (backwards from 0 or from past the head)."""
    if backward:
        return from_version == 0 or from_version > piece.stream_version
    return piece.next_version == 0


@dataclass(slots=True)
class _Entry:
    kind: str
    value: Any
    size: int
    stream_id: str
    exact: bool  # kept under the feed's watch; an event kept without it serves degraded reads only


class Ticket:
    """A read in flight; voided when its stream changes before the answer is kept."""

    __slots__ = ("epoch", "heads", "stream_id", "tenant_id", "valid")

    def __init__(self, tenant_id: str, stream_id: str, heads: bool, epoch: int, registered: bool) -> None:
        self.tenant_id = tenant_id
        self.stream_id = stream_id  # "" for reads by event id (any stream of the tenant)
        self.heads = heads  # a new head of the stream changes the answer (pages), not just a reset
        self.epoch = epoch
        # Storage had confirmed the tenant when the read began: every later change reaches us first.
        self.valid = registered


class ReadCache:
    """What this replica read, by tenant; LRU within bounds; exact while the commit feed is heard."""

    def __init__(self, *, max_bytes: int, max_bytes_per_tenant: int, enabled: bool = True) -> None:
        self.max_bytes = max_bytes
        self.max_bytes_per_tenant = max_bytes_per_tenant
        self.enabled = enabled
        self.held_back = False  # under memory pressure (shared.limits.memory): keep nothing new
        self.silence_s = 0.5
        self._tenants: dict[str, OrderedDict[Hashable, _Entry]] = {}
        self._tenant_bytes: dict[str, int] = {}
        self._streams: dict[tuple[str, str], set[Hashable]] = {}  # (tenant, stream) -> keys of its entries
        # Per stream with entries: the keys of its open pages (a new head drops them), and the newest head the
        # feed brought (the closed pages report it when read, rather than each being rewritten per append:
        # a change costs what it drops, not the number of pages kept of the stream).
        self._open: dict[tuple[str, str], set[Hashable]] = {}
        self._heads: dict[tuple[str, str], int] = {}
        self._reading: dict[tuple[str, str], set[Ticket]] = {}
        self._heard = -1.0  # monotonic time the feed was last heard; < 0 while there is no feed
        self.epoch = 0  # bumped whenever the feed starts or stops: older tickets are void
        # Tenants storage confirmed it sends us the changes of, and those asked for (services.query.feed
        # sets `ask`): nothing of a tenant is kept before its confirmation.
        self.registered: set[str] = set()
        self._asked: set[str] = set()
        self.ask: Callable[[str], None] | None = None
        # The highest log position of each registered tenant the feed brought (appends since its
        # confirmation), and an event set (and replaced) whenever one moves.
        self.positions: dict[str, int] = {}
        self.moved = asyncio.Event()
        self.size = 0
        self.hits: Counter[str] = Counter()
        self.misses: Counter[str] = Counter()
        self.evictions: Counter[str] = Counter()  # for room
        self.invalidations: Counter[str] = Counter()  # by the feed

    # -- the feed --------------------------------------------------------------------------------------

    def usable(self) -> bool:
        """Whether the cache may answer now: enabled, and the feed heard recently."""
        return self.enabled and self._heard >= 0 and time.monotonic() - self._heard < self.silence_s

    def feed_started(self) -> None:
        """The feed is (re)established: what was kept may have missed changes, so start empty."""
        self.clear()
        self.epoch += 1
        self.registered.clear()
        self._asked.clear()
        self.positions.clear()
        self._heard = time.monotonic()

    def confirmed(self, tenant_ids: Iterable[str]) -> None:
        """Storage sends us these tenants' changes from now on."""
        self.registered.update(tenant_ids)

    def feed_heard(self) -> None:
        """A message or heartbeat of the feed arrived (and was applied). After a silence of silence_s or
        more (this process paused or starved), storage may have cut this replica off meanwhile and
        acknowledged appends it was never told of, while what it had sent before still arrives: what is
        kept starts over, as on a new feed, rather than answering again from entries that may be stale."""
        now = time.monotonic()
        if self._heard >= 0 and now - self._heard >= self.silence_s:
            self.feed_started()
            return
        self._heard = now

    def feed_lost(self) -> None:
        """The feed ended: stop answering and keeping (the events stay for degraded reads)."""
        self._heard = -1.0
        self.epoch += 1

    def applied(self, tenant_id: str) -> int:
        """The tenant's log position this cache is known to have applied (0: none known), while usable."""
        return self.positions.get(tenant_id, 0) if tenant_id in self.registered and self.usable() else 0

    def reached(self, tenant_id: str, position: int) -> None:
        """The feed brought (and this cache applied) the tenant's append ending at `position`."""
        if position > self.positions.get(tenant_id, 0):
            self.positions[tenant_id] = position
            self.moved.set()
            self.moved = asyncio.Event()

    def advance(self, tenant_id: str, stream_id: str, version: int) -> None:
        """The stream's head is now `version`: pages that reached the old end go, the others move on."""
        for ticket in self._reading.get((tenant_id, stream_id), ()):
            if ticket.heads:
                ticket.valid = False
        stream = (tenant_id, stream_id)
        if stream not in self._streams:
            return
        if version > self._heads.get(stream, 0):
            self._heads[stream] = version
        for key in list(self._open.get(stream, ())):
            self._evict(tenant_id, key, self.invalidations)

    def reset(self, tenant_id: str, stream_id: str = "") -> None:
        """Forget everything of the stream, or of the whole tenant without a stream id."""
        for (tenant, stream), tickets in self._reading.items():
            if tenant == tenant_id and (not stream_id or stream in (stream_id, "")):
                for ticket in tickets:
                    ticket.valid = False
        if not stream_id:
            self.positions.pop(tenant_id, None)  # deleted or restored: its log may start again
            for key in list(self._tenants.get(tenant_id, ())):
                self._evict(tenant_id, key, self.invalidations)
            return
        for key in list(self._streams.get((tenant_id, stream_id), ())):
            self._evict(tenant_id, key, self.invalidations)

    def clear(self) -> None:
        """Forget everything."""
        for tenant_id in list(self._tenants):
            self.reset(tenant_id)

    def relieve(self) -> None:
        """The memory pressure is over: keep again."""
        self.held_back = False

    def shed(self) -> None:
        """Memory pressure: give back everything (counted as evictions) and keep nothing until it is over
        (held_back, which the monitor's owner clears)."""
        self.held_back = True
        for tenant_id in list(self._tenants):
            for key in list(self._tenants[tenant_id]):
                self._evict(tenant_id, key, self.evictions)

    # -- reads -----------------------------------------------------------------------------------------

    def get(self, tenant_id: str, kind: str, key: Hashable) -> Any:
        """The value kept under key (marked recently used), or None; counts a hit or a miss."""
        entries = self._tenants.get(tenant_id)
        entry = entries.get(key) if entries is not None else None
        if entry is None or entries is None or not entry.exact or not self.usable() or BYPASS.get():
            self.misses[kind] += 1
            return None
        self.hits[kind] += 1
        entries.move_to_end(key)
        if kind == "page":
            head = self._heads.get((tenant_id, entry.stream_id), 0)
            if head > entry.value.stream_version:
                entry.value.stream_version = head
        return entry.value

    def peek_event(self, tenant_id: str, event_id: str) -> bytes | None:
        """A kept event whatever the feed's state (for degraded reads while storage is unreachable)."""
        entries = self._tenants.get(tenant_id)
        entry = entries.get(("e", event_id)) if entries is not None else None
        return entry.value if entry is not None else None

    def ticket(self, tenant_id: str, stream_id: str = "", *, heads: bool = False) -> Ticket:
        """Register a read about to ask storage; pass the ticket to keep() and then to done()."""
        ticket = Ticket(tenant_id, stream_id, heads, self.epoch, tenant_id in self.registered)
        self._reading.setdefault((tenant_id, stream_id), set()).add(ticket)
        return ticket

    def done(self, ticket: Ticket) -> None:
        """The read is over."""
        tickets = self._reading.get((ticket.tenant_id, ticket.stream_id))
        if tickets is not None:
            tickets.discard(ticket)
            if not tickets:
                del self._reading[(ticket.tenant_id, ticket.stream_id)]

    def keep(self, ticket: Ticket, kind: str, key: Hashable, value: Any, size: int, stream_id: str) -> None:
        """Keep what a read returned, unless its stream changed meanwhile or the feed is not trusted."""
        tenant_id = ticket.tenant_id
        if tenant_id not in self.registered and tenant_id not in self._asked and self.ask is not None:
            self._asked.add(tenant_id)  # kept from the next read on, once storage confirms
            self.ask(tenant_id)
        if self.held_back:
            return
        exact = ticket.valid and ticket.epoch == self.epoch and self.usable()
        if not exact and kind != "event":
            return  # an event is kept anyway, for degraded reads only (events never change)
        size += ENTRY_OVERHEAD + _key_bytes(key)
        if size > self.max_bytes_per_tenant or size > self.max_bytes:
            return
        entries = self._tenants.setdefault(tenant_id, OrderedDict())
        if key in entries:
            self._evict(tenant_id, key, None)
        while self._tenant_bytes.get(tenant_id, 0) + size > self.max_bytes_per_tenant:
            self._evict(tenant_id, next(iter(entries)), self.evictions)
        while self.size + size > self.max_bytes:
            largest = max(self._tenant_bytes, key=self._tenant_bytes.__getitem__)
            self._evict(largest, next(iter(self._tenants[largest])), self.evictions)
        entries = self._tenants.setdefault(tenant_id, entries)
        entries[key] = _Entry(kind, value, size, stream_id, exact)
        self._streams.setdefault((tenant_id, stream_id), set()).add(key)
        if kind == "page" and value.open:
            self._open.setdefault((tenant_id, stream_id), set()).add(key)
        self._tenant_bytes[tenant_id] = self._tenant_bytes.get(tenant_id, 0) + size
        self.size += size

    def tenant_bytes(self, tenant_id: str) -> int:
        """Bytes the tenant's entries take."""
        return self._tenant_bytes.get(tenant_id, 0)

    def _evict(self, tenant_id: str, key: Hashable, why: Counter[str] | None) -> None:
        entries = self._tenants[tenant_id]
        entry = entries.pop(key)
        stream = (tenant_id, entry.stream_id)
        keys = self._streams.get(stream)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._streams[stream]
                self._heads.pop(stream, None)
        if entry.kind == "page" and entry.value.open:
            opened = self._open.get(stream)
            if opened is not None:
                opened.discard(key)
                if not opened:
                    del self._open[stream]
        self._tenant_bytes[tenant_id] -= entry.size
        self.size -= entry.size
        if why is not None:
            why[entry.kind] += 1
        if not entries:
            del self._tenants[tenant_id]
            del self._tenant_bytes[tenant_id]


def _key_bytes(key: Hashable) -> int:
    """The text a key holds (a stream id, an event id, event types): counted with the entry."""
    if not isinstance(key, tuple):
        return 0
    return sum(len(part) for part in key if isinstance(part, str | bytes)) + sum(
        _key_bytes(part) for part in key if isinstance(part, tuple)
    )
