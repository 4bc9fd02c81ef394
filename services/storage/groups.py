"""Consumer groups: the one authority over each group's state and dispatch, whatever the query replicas.

A group reads its tenant's log after its read cursor into a bounded buffer of entries; consumers take
batches of ready entries (as many as their in-flight room allows), then ack or nack them. An entry
leaves the group when it is acked, skipped or parked; the checkpoint is the position below the oldest
entry still in the group (or the read cursor when none is), so everything at or below it is done.

What persists (control-plane records, so any backend keeps them, synced like every record):
- `consumer_groups/<name>`: the definition, the checkpoint and the parked count (a GetConsumerGroupResponse),
  rewritten soon after the checkpoint moves (a restart counts the parked events from their records);
- `consumer_group_parked/<name>/<position>`: each parked event, written before the checkpoint may pass it.
After a restart the group resumes from its saved checkpoint: events above it that were acked are
delivered again (at least once), none is skipped. A replayed parked event stays parked until it is acked.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

from allsource.storage.v1 import model_pb2
from allsource.v1 import event_pb2, groups_pb2

from services.storage.backend import StorageBackend
from shared.core.errors import AllSourceError, AlreadyExists, InvalidArgument, NotFound, ResourceExhausted
from shared.core.reasons import Reason
from shared.core.timestamps import to_timestamp
from shared.core.wire import varint
from shared.limits.plans import exceeded

NS_GROUPS = "consumer_groups"
NS_PARKED = "consumer_group_parked"
# Bounds: each group buffers at most BUFFER entries (in flight included); a tenant holds at most
# MAX_GROUPS groups whatever its plan, each with at most MAX_CONSUMERS consumers.
BUFFER = 2000
READ_BATCH = 500
MAX_BATCH = 500  # events per delivery (and at most half the consumer's window)
MAX_DELIVERY_BYTES = 3 * 1024 * 1024  # bytes per delivery (one event always goes): under clients' 4 MiB default
MAX_SCAN = 5000
MAX_GROUPS = 1000
MAX_CONSUMERS = 64
MAX_IN_FLIGHT = 1000
DEFAULT_IN_FLIGHT = 1000
DEFAULT_ACK_TIMEOUT_S = 30.0
DEFAULT_MAX_RETRIES = 10
MAX_RETRIES = 1000
MAX_REPLAY = 1000
SAVE_EVERY_S = 0.05  # the checkpoint record is rewritten at most this often
IDLE_WAKE_S = 1.0


def with_defaults(group: groups_pb2.ConsumerGroup) -> groups_pb2.ConsumerGroup:
    """The group with its settings' defaults written in."""
    out = groups_pb2.ConsumerGroup()
    out.CopyFrom(group)
    s = out.settings
    s.max_in_flight_per_consumer = s.max_in_flight_per_consumer or DEFAULT_IN_FLIGHT
    if not s.HasField("ack_timeout"):
        s.ack_timeout.FromNanoseconds(int(DEFAULT_ACK_TIMEOUT_S * 1e9))
    if not s.HasField("max_retries"):
        s.max_retries = DEFAULT_MAX_RETRIES
    if s.strategy == groups_pb2.CONSUMER_STRATEGY_UNSPECIFIED:
        s.strategy = groups_pb2.CONSUMER_STRATEGY_ROUND_ROBIN
    if out.start == groups_pb2.CONSUMER_GROUP_START_UNSPECIFIED:
        out.start = groups_pb2.CONSUMER_GROUP_START_BEGINNING
    return out


def not_found(name: str) -> NotFound:
    """The refusal for a group the tenant does not have."""
    return NotFound(
        f"consumer group {name!r} not found", reason=Reason.CONSUMER_GROUP_NOT_FOUND, metadata={"group": name}
    )


def parked_key(name: str, position: int) -> str:
    """Key of a parked event's record: sorted by group, then position."""
    return f"{name}/{position:020d}"


@dataclass(slots=True, eq=False)
class Entry:
    """An event in a group's flow, kept as its stored bytes (delivered as they are, never re-encoded)."""

    position: int
    stream_id: str  # "" when not decoded (round robin does not need it)
    raw: bytes
    retries: int = 0
    consumer: Consumer | None = None
    lease: Lease | None = None
    replay: bool = False
    gone: bool = False  # erased or deleted while in flight or being parked: neither delivered again nor parked


@dataclass(slots=True, eq=False)
class Lease:
    """One delivery: its entries and their ack deadline. `held` counts the entries still in flight under it;
    at 0 the list is dropped, so a finished lease waiting in the deadline heap costs almost nothing."""

    deadline: float
    consumer: Consumer
    entries: list[Entry] | None
    held: int


@dataclass(slots=True, eq=False)
class Consumer:
    """One consumer's stream into a group."""

    consumer_id: str
    name: str
    max_in_flight: int
    in_flight: dict[int, Entry] = field(default_factory=dict)
    acked: int = 0
    stop: asyncio.Event = field(default_factory=asyncio.Event)


def delivery_bytes(batch: list[Entry]) -> bytes:
    """A serialized ConsumeResponse carrying the batch as a delivery, built from the stored bytes: each
    DeliveredEvent is field 1 (the Event's bytes) and field 2 (retry_count, when not 0)."""
    parts: list[bytes] = []
    for entry in batch:
        raw = entry.raw
        length = varint(len(raw))
        retries = b"\x10" + varint(entry.retries) if entry.retries else b""
        parts += (b"\x0a", varint(1 + len(length) + len(raw) + len(retries)), b"\x0a", length, raw, retries)
    events = b"".join(parts)
    return b"\x12" + varint(len(events)) + events  # ConsumeResponse.delivery (2) = ConsumeDelivery{events (1)}


# The holder of an entry being parked: not in flight, not waiting, still holding the checkpoint.
PARKING = Consumer("", "parking", 0)


class Group:
    """One consumer group's live state: buffer, consumers, checkpoint.

    Waiting entries are kept by strategy: round robin, one heap of positions; by stream, a heap of
    positions per stream, and a heap of (oldest waiting position, stream) over the streams with nothing in
    flight (its items may be stale: checked when popped). Either way a batch takes the lowest waiting
    positions first, and a retried event goes before its stream's later ones.
    """

    def __init__(
        self, backend: StorageBackend, tenant_id: str, group: groups_pb2.ConsumerGroup, checkpoint: int, parked: int
    ) -> None:
        self.backend = backend
        self.tenant_id = tenant_id
        self.group = group
        self.name = group.name
        self.by_stream = group.settings.strategy == groups_pb2.CONSUMER_STRATEGY_BY_STREAM
        self.read_cursor = checkpoint
        self.saved_checkpoint = checkpoint
        self.parked_count = parked
        self.parked_above: set[int] = set()  # parked positions above the checkpoint: not read again
        self.entries: dict[int, Entry] = {}
        self.log_order: deque[int] = deque()  # positions read from the log, ascending
        self.ready: list[int] = []  # round robin: heap of positions waiting for a consumer
        self.stream_ready: dict[str, list[int]] = {}  # by stream: heap of waiting positions per stream
        self.heads: list[tuple[int, str]] = []  # by stream: heap of (position, stream) of free streams
        self.busy_streams: dict[str, int] = {}  # by stream: events in flight per stream (1 but after a switch)
        self.leases: list[tuple[float, int, Lease]] = []  # heap by ack deadline
        self._lease_seq = itertools.count()
        self.consumers: dict[str, Consumer] = {}
        self.deleted = False
        self._wake = asyncio.Event()
        self._fill_lock = asyncio.Lock()
        self._saver: asyncio.Task[None] | None = None
        self._dirty = False
        self.filter = model_pb2.EventFilter(
            stream_id=group.stream_id, stream_id_prefix=group.stream_id_prefix, event_types=group.event_types
        )

    # -- settings ---------------------------------------------------------------------------------------

    @property
    def ack_timeout_s(self) -> float:
        return self.group.settings.ack_timeout.ToNanoseconds() / 1e9

    def redefine(self, group: groups_pb2.ConsumerGroup) -> None:
        """Take new settings; a change of strategy sorts the waiting entries again."""
        self.group = group
        by_stream = group.settings.strategy == groups_pb2.CONSUMER_STRATEGY_BY_STREAM
        if by_stream != self.by_stream:
            self.by_stream = by_stream
            for entry in self.entries.values():  # round robin may have left stream ids unknown
                if not entry.stream_id:
                    entry.stream_id = event_pb2.Event.FromString(entry.raw).stream_id
            waiting = sorted((e for e in self.entries.values() if e.consumer is None), key=lambda e: e.position)
            self.ready, self.stream_ready, self.heads, self.busy_streams = [], {}, [], {}
            if by_stream:  # what is in flight already holds its stream
                for consumer in self.consumers.values():
                    for entry in consumer.in_flight.values():
                        self.busy_streams[entry.stream_id] = self.busy_streams.get(entry.stream_id, 0) + 1
            for entry in waiting:
                self._make_ready(entry)
        self.wake()

    def checkpoint(self) -> int:
        """Every matching event at or below this position is acked, skipped or parked."""
        while self.log_order and self.log_order[0] not in self.entries:
            self.log_order.popleft()
        return self.log_order[0] - 1 if self.log_order else self.read_cursor

    def status(self, head: int) -> groups_pb2.ConsumerGroupStatus:
        """The group's progress."""
        checkpoint = self.checkpoint()
        return groups_pb2.ConsumerGroupStatus(
            checkpoint=checkpoint,
            head_position=head,
            lag=max(0, head - checkpoint),
            in_flight=sum(len(c.in_flight) for c in self.consumers.values()),
            parked_count=self.parked_count,
            consumers=[
                groups_pb2.ConsumerInfo(
                    consumer_id=c.consumer_id, name=c.name, in_flight=len(c.in_flight), acked=c.acked
                )
                for c in self.consumers.values()
            ],
        )

    def record(self) -> bytes:
        """The persisted form: definition, checkpoint, parked count."""
        status = groups_pb2.ConsumerGroupStatus(checkpoint=self.checkpoint(), parked_count=self.parked_count)
        return groups_pb2.GetConsumerGroupResponse(group=self.group, status=status).SerializeToString()

    def wake(self) -> None:
        """Wake every consumer waiting for work."""
        self._wake.set()
        self._wake = asyncio.Event()

    # -- the waiting entries ----------------------------------------------------------------------------

    def _make_ready(self, entry: Entry) -> None:
        """The entry waits for a consumer."""
        if not self.by_stream:
            heapq.heappush(self.ready, entry.position)
            return
        stream = entry.stream_id
        queue = self.stream_ready.get(stream)
        if queue is None:
            queue = self.stream_ready[stream] = []
        heapq.heappush(queue, entry.position)
        if stream not in self.busy_streams and queue[0] == entry.position:
            heapq.heappush(self.heads, (entry.position, stream))

    def _release(self, entry: Entry) -> None:
        """The entry is no longer in flight: its lease forgets it, its stream (by stream) is free again."""
        entry.consumer = None
        lease = entry.lease
        if lease is not None:
            entry.lease = None
            lease.held -= 1
            if not lease.held:
                lease.entries = None
        if self.by_stream:
            stream = entry.stream_id
            held = self.busy_streams.get(stream, 0) - 1
            if held > 0:
                self.busy_streams[stream] = held
                return
            self.busy_streams.pop(stream, None)
            queue = self.stream_ready.get(stream)
            if queue:
                heapq.heappush(self.heads, (queue[0], stream))

    def _pick(self, room: int, max_bytes: int) -> list[Entry]:
        """Up to `room` waiting entries (at least one, then within max_bytes), lowest positions first."""
        batch: list[Entry] = []
        size = 0
        entries = self.entries
        if not self.by_stream:
            ready = self.ready
            while ready and len(batch) < room:
                entry = entries.get(ready[0])
                if entry is None or entry.consumer is not None:  # defensive: not waiting after all
                    heapq.heappop(ready)
                    continue
                size += len(entry.raw) + 16
                if batch and size > max_bytes:
                    break
                heapq.heappop(ready)
                batch.append(entry)
            return batch
        heads, busy = self.heads, self.busy_streams
        while heads and len(batch) < room:
            position, stream = heads[0]
            queue = self.stream_ready.get(stream)
            if stream in busy or not queue or queue[0] != position:  # stale
                heapq.heappop(heads)
                continue
            entry = entries.get(position)
            if entry is not None and entry.consumer is None:
                size += len(entry.raw) + 16
                if batch and size > max_bytes:
                    break
            heapq.heappop(heads)
            heapq.heappop(queue)
            if entry is None or entry.consumer is not None:  # defensive: offer the stream's next one
                if queue:
                    heapq.heappush(heads, (queue[0], stream))
                else:
                    del self.stream_ready[stream]
                continue
            if not queue:
                del self.stream_ready[stream]
            busy[stream] = 1
            batch.append(entry)
        return batch

    # -- consumers --------------------------------------------------------------------------------------

    def join(self, name: str, max_in_flight: int) -> Consumer:
        """Add a consumer (TOO_MANY_CONSUMERS past MAX_CONSUMERS)."""
        if len(self.consumers) >= MAX_CONSUMERS:
            raise ResourceExhausted(
                f"consumer group {self.name!r} has {MAX_CONSUMERS} consumers, its maximum",
                reason=Reason.TOO_MANY_CONSUMERS,
                metadata={"group": self.name, "limit": str(MAX_CONSUMERS)},
                retry_after=5.0,
            )
        consumer = Consumer(str(uuid.uuid4()), name, max_in_flight)
        self.consumers[consumer.consumer_id] = consumer
        self.wake()
        return consumer

    async def leave(self, consumer: Consumer) -> None:
        """A consumer went away: what it held goes to the others."""
        self.consumers.pop(consumer.consumer_id, None)
        for entry in list(consumer.in_flight.values()):
            await self._redeliver(consumer, entry, "consumer left")
        self.wake()

    async def take(self, consumer: Consumer) -> list[Entry]:
        """The next batch for a consumer, waiting until there is one (empty when the consumer stops).

        A batch is at most half the consumer's window (and MAX_BATCH events, MAX_DELIVERY_BYTES bytes), so
        the next batch is on its way while the consumer handles one and acks it."""
        while True:
            if self.deleted:
                raise not_found(self.name)
            if consumer.stop.is_set():
                return []
            # A tenant made inactive (or deleted) ends its consumers' streams, as it ends subscriptions:
            # its deactivation wakes the commit wait below.
            await self.backend.check_tenant_usable(self.tenant_id)
            await self._expire()
            await self._fill()
            window = min(consumer.max_in_flight, self.group.settings.max_in_flight_per_consumer)
            room = window - len(consumer.in_flight)
            if room > 0:
                batch = self._pick(min(room, max(1, window // 2), MAX_BATCH), MAX_DELIVERY_BYTES)
                if batch:
                    lease = Lease(time.monotonic() + self.ack_timeout_s, consumer, batch, len(batch))
                    in_flight = consumer.in_flight
                    for entry in batch:
                        entry.consumer, entry.lease = consumer, lease
                        in_flight[entry.position] = entry
                    heapq.heappush(self.leases, (lease.deadline, next(self._lease_seq), lease))
                    return batch
            await self._idle(consumer)

    async def _idle(self, consumer: Consumer) -> None:
        """Wait for an ack, a commit, the next ack deadline or the consumer's end."""
        timeout = IDLE_WAKE_S
        if self.leases:
            timeout = max(0.005, min(timeout, self.leases[0][0] - time.monotonic()))
        waits: list[asyncio.Future[bool]] = [
            asyncio.ensure_future(self._wake.wait()),
            asyncio.ensure_future(consumer.stop.wait()),
        ]
        if len(self.entries) <= BUFFER - READ_BATCH:  # else a commit would not be read yet
            waits.append(asyncio.ensure_future(self.backend.wait_for_commit(self.tenant_id, self.read_cursor, timeout)))
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    async def _fill(self) -> None:
        """Read more of the log into the buffer when there is room."""
        if len(self.entries) > BUFFER - READ_BATCH or self._fill_lock.locked():
            return
        async with self._fill_lock:
            if self.read_cursor >= await self.backend.head_position(self.tenant_id):
                return
            run = await self.backend.read_events(
                self.tenant_id,
                self.filter,
                after_position=self.read_cursor,
                limit=min(READ_BATCH, BUFFER - len(self.entries)),
                max_scan=MAX_SCAN,
            )
            cursor, parked, entries, order = self.read_cursor, self.parked_above, self.entries, self.log_order
            if run.positions is not None and not self.by_stream:
                # Round robin needs only positions, and the backend knows them: no event is decoded here
                # (the stream id is filled in if the group switches to by stream).
                ready = self.ready
                for position, raw in zip(run.positions, run.events, strict=True):
                    if position <= cursor or position in parked:
                        continue
                    entries[position] = Entry(position, "", raw)
                    order.append(position)
                    heapq.heappush(ready, position)
            else:
                parse = event_pb2.Event.FromString
                for raw in run.events:
                    event = parse(raw)
                    position = event.position
                    if position <= cursor or position in parked:
                        continue
                    entry = entries[position] = Entry(position, event.stream_id, raw)
                    order.append(position)
                    self._make_ready(entry)
            self.read_cursor = max(self.read_cursor, run.scanned_to)
            self._moved()

    async def _expire(self) -> None:
        """Take back what is unacked past its deadline (finished leases leave the heap on the way)."""
        leases = self.leases
        if not leases:
            return
        now = time.monotonic()
        while leases and (leases[0][0] <= now or not leases[0][2].held):
            lease = heapq.heappop(leases)[2]
            entries = lease.entries
            if not lease.held or entries is None:
                continue
            for entry in entries:
                if entry.lease is lease:
                    await self._redeliver(lease.consumer, entry, "ack timeout")

    async def _redeliver(self, consumer: Consumer, entry: Entry, why: str) -> None:
        """Take an entry back from a consumer; deliver it again, or park it past max_retries."""
        if consumer.in_flight.pop(entry.position, None) is None:
            return
        self._release(entry)
        if entry.gone:  # erased meanwhile: out of the flow, not delivered again
            self.entries.pop(entry.position, None)
            self.wake()
            return
        entry.retries += 1
        if entry.retries > self.group.settings.max_retries:
            await self._park(entry, f"max retries exceeded ({why})")
        else:
            self._make_ready(entry)
        self.wake()

    # -- acks -------------------------------------------------------------------------------------------

    async def ack(self, consumer: Consumer, positions: Iterable[int]) -> None:
        """The consumer handled these (unknown or no longer held positions are ignored: at least once)."""
        take_back = consumer.in_flight.pop
        entries = self.entries
        replayed: list[Entry] = []
        count = 0
        for position in positions:
            entry = take_back(position, None)
            if entry is None:
                continue
            count += 1
            entries.pop(position, None)
            self._release(entry)
            if entry.replay:
                replayed.append(entry)
        consumer.acked += count
        for entry in replayed:
            await self._unpark(entry)
        self._moved()
        self.wake()

    async def nack(self, consumer: Consumer, positions: Iterable[int], action: int, reason: str) -> None:
        """Retry, park or skip events the consumer could not handle."""
        for position in positions:
            entry = consumer.in_flight.get(position)
            if entry is None:
                continue
            if action == groups_pb2.NACK_ACTION_PARK:
                consumer.in_flight.pop(position)
                self._release(entry)
                if entry.gone:  # erased meanwhile: no copy of it is kept
                    self.entries.pop(position, None)
                else:
                    await self._park(entry, reason or "parked by the consumer")
            elif action == groups_pb2.NACK_ACTION_SKIP:
                consumer.in_flight.pop(position)
                self.entries.pop(position, None)
                self._release(entry)
                if entry.replay:
                    await self._unpark(entry)
            else:
                await self._redeliver(consumer, entry, reason or "nack")
        self._moved()
        self.wake()

    async def _unpark(self, entry: Entry) -> None:
        """A replayed parked event was acked or skipped: it is parked no more."""
        await self.backend.delete_record(self.tenant_id, NS_PARKED, parked_key(self.name, entry.position), None)
        self.parked_count = max(0, self.parked_count - 1)
        self._dirty = True

    async def _park(self, entry: Entry, reason: str) -> None:
        """Keep the event aside (durably, before the checkpoint can pass it) and take it out of the flow.
        The entry is out of flight already and not waiting: it stays in the buffer (holding the
        checkpoint) until its record is written."""
        parked = groups_pb2.ParkedEvent(
            event=event_pb2.Event.FromString(entry.raw),
            retry_count=entry.retries,
            reason=reason[:1024],
            park_time=to_timestamp(time.time_ns()),
        )
        entry.consumer = PARKING
        try:
            await self.backend.put_record(
                self.tenant_id, NS_PARKED, parked_key(self.name, entry.position), parked.SerializeToString(), None
            )
        except BaseException:
            entry.consumer = None
            self._make_ready(entry)  # not parked after all: it is delivered again
            raise
        entry.consumer = None
        self.entries.pop(entry.position, None)
        if entry.gone:  # erased while its record was being written: that copy goes too
            await self.backend.delete_record(self.tenant_id, NS_PARKED, parked_key(self.name, entry.position), None)
            return
        if not entry.replay:
            self.parked_count += 1
            self._dirty = True

    async def drop_removed(self) -> int:
        """Take out of the flow the buffered events that were erased or deleted since they were read (a
        waiting one is never delivered; one in flight or being parked is neither delivered again nor
        parked). Under the fill lock: a read of the log begun before the removal is not added after it."""
        async with self._fill_lock:
            entries = list(self.entries.values())
            if not entries:
                return 0
            dropped = 0
            for entry, there in zip(
                entries, self.backend.present(self.tenant_id, [e.position for e in entries]), strict=True
            ):
                if there:
                    continue
                dropped += 1
                if entry.consumer is None:  # waiting: its heap items go stale and are skipped when popped
                    self.entries.pop(entry.position, None)
                else:
                    entry.gone = True
            if dropped:
                self._moved()
                self.wake()
            return dropped

    async def replay(self, max_events: int) -> int:
        """Put parked events (oldest first) back into the flow; each stays parked until acked or skipped."""
        replayed = 0
        after = f"{self.name}/"
        while replayed < max_events and len(self.entries) < BUFFER:
            records, end = await self.backend.list_records(self.tenant_id, NS_PARKED, after, 200)
            for r in records:
                if not r.key.startswith(f"{self.name}/"):
                    return replayed
                after = r.key
                parked = groups_pb2.ParkedEvent.FromString(r.value)
                position = parked.event.position
                if position in self.entries or replayed >= max_events:
                    continue
                entry = Entry(position, parked.event.stream_id, parked.event.SerializeToString(), replay=True)
                self.entries[position] = entry
                self._make_ready(entry)
                replayed += 1
            if end or not records:
                break
        self.wake()
        return replayed

    # -- persistence ------------------------------------------------------------------------------------

    def _moved(self) -> None:
        if self.checkpoint() != self.saved_checkpoint:
            self._dirty = True
        if self._dirty and (self._saver is None or self._saver.done()):
            self._saver = asyncio.ensure_future(self._save())

    async def _save(self) -> None:
        while self._dirty and not self.deleted:
            self._dirty = False
            checkpoint = self.checkpoint()
            try:
                await self.backend.put_record(self.tenant_id, NS_GROUPS, self.name, self.record(), None)
            except AllSourceError:
                self._dirty = True  # tried again at the next move
                return
            self.saved_checkpoint = checkpoint
            await asyncio.sleep(SAVE_EVERY_S)

    async def flush(self) -> None:
        """Wait for a pending save."""
        if self._saver is not None:
            with contextlib.suppress(Exception):
                await self._saver


class GroupEngine:
    """Every tenant's groups, loaded from their records on first use."""

    def __init__(self, backend: StorageBackend) -> None:
        self.backend = backend
        self.live: dict[tuple[str, str], Group] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, tenant_id: str) -> asyncio.Lock:
        return self._locks.setdefault(tenant_id, asyncio.Lock())

    async def get(self, tenant_id: str, name: str) -> Group:
        """The live group (loaded from its record), or CONSUMER_GROUP_NOT_FOUND."""
        group = self.live.get((tenant_id, name))
        if group is not None:
            return group
        async with self._lock(tenant_id):
            group = self.live.get((tenant_id, name))
            if group is not None:
                return group
            try:
                record = await self.backend.get_record(tenant_id, NS_GROUPS, name)
            except NotFound:
                raise not_found(name) from None
            stored = groups_pb2.GetConsumerGroupResponse.FromString(record.value)
            checkpoint = stored.status.checkpoint
            group = Group(self.backend, tenant_id, stored.group, checkpoint, 0)
            # The parked events are counted from their records, not taken from the group's record: that is
            # rewritten a little after each move, and a kill in between left it counting none of the
            # events parked just before (their records are written before the park is done). Those above
            # the checkpoint are not read from the log again.
            after = f"{name}/"
            while True:
                records, end = await self.backend.list_records(tenant_id, NS_PARKED, after, 500)
                mine = [r for r in records if r.key.startswith(f"{name}/")]
                group.parked_count += len(mine)
                positions = (int(r.key.rsplit("/", 1)[1]) for r in mine)
                group.parked_above.update(p for p in positions if p > checkpoint)
                if end or len(mine) < len(records) or not records:
                    break
                after = records[-1].key
            self.live[(tenant_id, name)] = group
            return group

    async def create(
        self, tenant_id: str, definition: groups_pb2.ConsumerGroup, max_groups: int | None
    ) -> groups_pb2.ConsumerGroup:
        """Create a group (ALREADY_EXISTS, or QUOTA_EXCEEDED past the tenant's quota)."""
        group = with_defaults(definition)
        group.create_time.CopyFrom(to_timestamp(time.time_ns()))
        async with self._lock(tenant_id):
            limit = MAX_GROUPS if max_groups is None else min(max_groups, MAX_GROUPS)
            records, _ = await self.backend.list_records(tenant_id, NS_GROUPS, "", limit + 1)
            if any(r.key == group.name for r in records):
                raise self._exists(group.name)
            if len(records) >= limit:
                raise exceeded(
                    tenant_id,
                    "max_consumer_groups",
                    limit,
                    len(records),
                    f"the tenant has {len(records)} consumer groups; its quota is {limit}",
                )
            if group.start == groups_pb2.CONSUMER_GROUP_START_END:
                checkpoint = await self.backend.head_position(tenant_id)
            elif group.start == groups_pb2.CONSUMER_GROUP_START_POSITION:
                checkpoint = group.start_position
            else:
                checkpoint = 0
            value = groups_pb2.GetConsumerGroupResponse(
                group=group, status=groups_pb2.ConsumerGroupStatus(checkpoint=checkpoint)
            ).SerializeToString()
            try:
                await self.backend.put_record(tenant_id, NS_GROUPS, group.name, value, 0)
            except AllSourceError as exc:
                if exc.reason == Reason.RECORD_REVISION_MISMATCH:
                    raise self._exists(group.name) from None
                raise
            return group

    @staticmethod
    def _exists(name: str) -> AlreadyExists:
        return AlreadyExists(
            f"consumer group {name!r} exists already", reason=Reason.CONSUMER_GROUP_EXISTS, metadata={"group": name}
        )

    async def update(
        self, tenant_id: str, changes: groups_pb2.ConsumerGroup, paths: list[str]
    ) -> groups_pb2.ConsumerGroup:
        """Replace the settings the paths name; live consumers follow at once."""
        group = await self.get(tenant_id, changes.name)
        updated = groups_pb2.ConsumerGroup()
        updated.CopyFrom(group.group)
        for path in paths:
            if path == "settings":
                updated.settings.CopyFrom(changes.settings)
            else:
                name = path.removeprefix("settings.")
                if name in ("ack_timeout", "max_retries") and not changes.settings.HasField(name):
                    updated.settings.ClearField(name)  # back to the default
                else:
                    setattr_field(updated.settings, changes.settings, name)
        group.redefine(with_defaults(updated))
        await self.backend.put_record(tenant_id, NS_GROUPS, group.name, group.record(), None)
        return group.group

    async def delete(self, tenant_id: str, name: str) -> None:
        """Delete a group, its checkpoint and its parked events; its consumers' streams end."""
        group = await self.get(tenant_id, name)
        group.deleted = True
        group.wake()
        await group.flush()
        self.live.pop((tenant_id, name), None)
        await self.backend.delete_record(tenant_id, NS_GROUPS, name, None)
        while True:
            records, end = await self.backend.list_records(tenant_id, NS_PARKED, f"{name}/", 500)
            mine = [r for r in records if r.key.startswith(f"{name}/")]
            for r in mine:
                await self.backend.delete_record(tenant_id, NS_PARKED, r.key, None)
            if end or len(mine) < len(records) or not records:
                return

    async def drop_removed(self, tenant_id: str) -> int:
        """After events of a tenant were erased or deleted: no group keeps a copy of them, neither in its
        buffer nor parked (DECISIONS: erasure; the parked records of every group of the tenant are read a
        page at a time). Returns how many copies went."""
        dropped = 0
        for key, group in list(self.live.items()):
            if key[0] == tenant_id:
                dropped += await group.drop_removed()
        after = ""
        while True:
            records, end = await self.backend.list_records(tenant_id, NS_PARKED, after, 500)
            if not records:
                break
            after = records[-1].key
            positions = [int(r.key.rsplit("/", 1)[1]) for r in records]
            for record, position, there in zip(
                records, positions, self.backend.present(tenant_id, positions), strict=True
            ):
                if there:
                    continue
                await self.backend.delete_record(tenant_id, NS_PARKED, record.key, None)
                dropped += 1
                live = self.live.get((tenant_id, record.key.rsplit("/", 1)[0]))
                if live is not None:
                    live.parked_count = max(0, live.parked_count - 1)
                    live.parked_above.discard(position)
                    live._dirty = True
                    live._moved()
            if end:
                break
        return dropped

    def forget_tenant(self, tenant_id: str) -> int:
        """Drop a deleted tenant's live groups at once: their consumers' streams end (CONSUMER_GROUP_NOT_FOUND)
        and nothing of them answers for a tenant created later with the same id. Returns how many."""
        gone = [key for key in self.live if key[0] == tenant_id]
        for key in gone:
            group = self.live.pop(key)
            group.deleted = True  # no save writes its record again; take() ends its consumers
            group.wake()
        self._locks.pop(tenant_id, None)
        return len(gone)

    async def list_groups(self, tenant_id: str, after: str, limit: int) -> tuple[list[groups_pb2.ConsumerGroup], bool]:
        """Groups by name after `after`."""
        records, end = await self.backend.list_records(tenant_id, NS_GROUPS, after, limit)
        return [groups_pb2.GetConsumerGroupResponse.FromString(r.value).group for r in records], end

    async def list_parked(
        self, tenant_id: str, name: str, after_position: int, limit: int
    ) -> tuple[list[groups_pb2.ParkedEvent], bool]:
        """A group's parked events after a position."""
        await self.get(tenant_id, name)
        records, end = await self.backend.list_records(tenant_id, NS_PARKED, parked_key(name, after_position), limit)
        mine = [r for r in records if r.key.startswith(f"{name}/")]
        return [groups_pb2.ParkedEvent.FromString(r.value) for r in mine], end or len(mine) < len(records)

    async def consume(
        self, tenant_id: str, join: groups_pb2.ConsumeJoin, requests: AsyncIterator[groups_pb2.ConsumeRequest]
    ) -> AsyncIterator[bytes]:
        """One consumer's session: joined, then deliveries while its acks and nacks are applied; yields
        serialized allsource.v1.ConsumeResponse messages (deliveries built from the stored bytes)."""
        group = await self.get(tenant_id, join.group)
        consumer = group.join(join.consumer_name, join.max_in_flight or group.group.settings.max_in_flight_per_consumer)
        failure: list[BaseException] = []

        async def apply() -> None:
            try:
                async for message in requests:
                    kind = message.WhichOneof("content")
                    if kind == "ack":
                        await group.ack(consumer, message.ack.positions[:MAX_IN_FLIGHT])
                    elif kind == "nack":
                        n = message.nack
                        await group.nack(consumer, n.positions[:MAX_IN_FLIGHT], n.action, n.reason)
                    else:
                        raise InvalidArgument(
                            "a Consume stream joins once, with its first message",
                            reason=Reason.INVALID_CONSUME_MESSAGE,
                        )
            except BaseException as exc:
                failure.append(exc)
            consumer.stop.set()

        reader = asyncio.ensure_future(apply())
        try:
            yield groups_pb2.ConsumeResponse(
                joined=groups_pb2.ConsumerJoined(consumer_id=consumer.consumer_id, group=group.group)
            ).SerializeToString()
            while True:
                batch = await group.take(consumer)
                if not batch:
                    break
                yield delivery_bytes(batch)
            if failure and not isinstance(failure[0], asyncio.CancelledError):
                raise failure[0]
        finally:
            consumer.stop.set()
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader
            await group.leave(consumer)


def setattr_field(
    target: groups_pb2.ConsumerGroupSettings, source: groups_pb2.ConsumerGroupSettings, name: str
) -> None:
    """Copy one settings field (messages by value)."""
    if name == "ack_timeout":
        target.ack_timeout.CopyFrom(source.ack_timeout)
    else:
        setattr(target, name, getattr(source, name))
