"""The subscription loop, written once against the EventLog and TenantRegistry interfaces.

Catch-up reads committed events after the cursor in bounded runs; once the cursor reaches the tenant's
committed head a CaughtUp marker is sent and the loop waits for commits. The cursor only advances over
positions whose every matching event has been sent, so resuming after the last position seen (from an
event or a checkpoint) gives no gap and no duplicate.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from allsource.storage.v1 import model_pb2, storage_pb2

from services.storage import codec
from services.storage.backend import EventLog, TenantRegistry
from shared.core.errors import NotFound, OutOfRange, Unavailable
from shared.core.reasons import Reason
from shared.core.wire import varint
from shared.rpc.streams import Closing


@dataclass(frozen=True, slots=True)
class SubscriptionParams:
    """What a subscriber asked for, with defaults applied."""

    tenant_id: str
    after_position: int
    from_end: bool
    event_types: tuple[str, ...]
    stream_id_prefix: str
    checkpoint_every_events: int
    checkpoint_interval_s: float
    max_batch_size: int
    max_message_bytes: int = 0


def events_message(events: list[bytes]) -> storage_pb2.SubscribeResponse:
    """A SubscribeResponse carrying stored events, built from their bytes without re-encoding them."""
    batch = codec.repeated_events(events)
    return storage_pb2.SubscribeResponse.FromString(b"\x0a" + varint(len(batch)) + batch)


async def follow(
    log: EventLog,
    tenants: TenantRegistry,
    p: SubscriptionParams,
    closing: Closing | asyncio.Event,
    progress: list[int] | None = None,
) -> AsyncIterator[storage_pb2.SubscribeResponse]:
    """Yield the subscription's messages until the client goes away or the server shuts down; `progress`
    (one item) follows the position examined so far, for the lag metric."""
    incarnation = await tenants.tenant_incarnation(p.tenant_id)
    head = await log.head_position(p.tenant_id)
    if p.after_position > head:
        # Not silently: events up to that position would never be delivered.
        raise OutOfRange(
            f"after_position {p.after_position} is beyond the tenant's last committed position {head}",
            reason=Reason.POSITION_BEYOND_HEAD,
            metadata={"after_position": str(p.after_position), "head_position": str(head)},
        )
    cursor = head if p.from_end else p.after_position
    if progress is None:
        progress = [0]
    event_filter = model_pb2.EventFilter(event_types=p.event_types, stream_id_prefix=p.stream_id_prefix)
    caught_up = False
    passed_over = 0  # events examined since the last message without being sent
    last_message = time.monotonic()
    while True:
        progress[0] = cursor
        if closing.is_set():
            raise Unavailable(
                "the server is shutting down; resume from the last position seen", reason=Reason.SHUTTING_DOWN
            )
        await tenants.check_tenant_usable(p.tenant_id)  # a deactivated or deleted tenant's subscriptions end
        if await tenants.tenant_incarnation(p.tenant_id) != incarnation:  # deleted and created again meanwhile
            raise NotFound(f"tenant {p.tenant_id!r} does not exist", reason=Reason.TENANT_NOT_FOUND)
        if cursor < await log.head_position(p.tenant_id):
            before = cursor
            run = await log.read_events(
                p.tenant_id,
                event_filter,
                after_position=cursor,
                limit=p.max_batch_size,
                max_bytes=p.max_message_bytes,
                max_scan=p.checkpoint_every_events,
            )
            cursor = max(cursor, run.scanned_to)
            if run.events:
                yield events_message(run.events)
                passed_over = 0
                last_message = time.monotonic()
            else:
                passed_over += cursor - before
                if passed_over >= p.checkpoint_every_events:
                    yield storage_pb2.SubscribeResponse(checkpoint=model_pb2.Checkpoint(position=cursor))
                    passed_over = 0
                    last_message = time.monotonic()
            continue
        if not caught_up:
            caught_up = True
            yield storage_pb2.SubscribeResponse(caught_up=model_pb2.CaughtUp(position=cursor))
            last_message = time.monotonic()
            continue  # look at the tenant again: it may have changed while the reader was away
        wait_for = p.checkpoint_interval_s - (time.monotonic() - last_message)
        if wait_for > 0:
            # A drain interrupts this wait through until_closed (the servicer's), which cancels the task.
            await log.wait_for_commit(p.tenant_id, cursor, wait_for)
            continue
        yield storage_pb2.SubscribeResponse(checkpoint=model_pb2.Checkpoint(position=cursor))
        passed_over = 0
        last_message = time.monotonic()
