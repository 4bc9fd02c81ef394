"""Entity state: a stream's JSON object payloads folded by merging their top-level keys in version order.

Events whose content type is not JSON carry no state and are skipped; a JSON payload that is not an
object cannot be merged and fails the call (FAILED_PRECONDITION, reason PAYLOAD_NOT_OBJECT). A fold that
had to apply many events stores a snapshot, so the next fold starts from there. The state at a version
never changes until the stream is deleted or truncated, so the replica's read cache keeps it by (stream,
version): a repeated fold costs one head lookup.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from allsource.storage.v1 import model_pb2, storage_pb2
from allsource.v1 import query_pb2
from google.protobuf import timestamp_pb2

from services.query.cache import ReadCache
from shared.config.flags import FLAGS
from shared.core.errors import AllSourceError, FailedPrecondition
from shared.core.reasons import Reason
from shared.core.shares import ThreadShares
from shared.core.text import dump_json, exact_json, is_json
from shared.storage.client import StorageClient

log = logging.getLogger(__name__)
READ_CHUNK = 1000
# Folding (parsing every payload) is CPU: past this many payload bytes at a time it runs on a thread, one
# per tenant at a time, so that a tenant folding megabytes of state leaves the loop to everyone's calls.
INLINE_BYTES = 64 * 1024
FOLDING = ThreadShares(1)


def apply(state: dict[str, Any], event: model_pb2.StoredEvent) -> None:
    """Merge one event's payload into the state."""
    if not is_json(event.content_type):
        return
    try:
        value = exact_json(event.payload)  # not orjson: it turns integers beyond 64 bits into floats
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise FailedPrecondition(
            f"event at version {event.version} of stream {event.stream_id!r} is not a JSON object and cannot be folded",
            reason=Reason.PAYLOAD_NOT_OBJECT,
            metadata={"stream_id": event.stream_id, "version": str(event.version)},
        )
    state.update(value)


async def fold_stream(
    storage: StorageClient,
    cache: ReadCache,
    tenant_id: str,
    stream_id: str,
    *,
    as_of_version: int | None,
    as_of_time: timestamp_pb2.Timestamp | None,
    snapshot_after: int,
    max_bytes: int = 4 << 20,
) -> query_pb2.GetEntityStateResponse:
    """Fold the stream up to the requested version or time, starting from the newest usable snapshot; a
    state past max_bytes of JSON is refused (ENTITY_STATE_TOO_LARGE)."""
    ticket = cache.ticket(tenant_id, stream_id)
    try:
        info = await storage.get_stream(
            storage_pb2.GetStreamRequest(tenant_id=tenant_id, stream_id=stream_id, as_of_time=as_of_time)
        )
        target = info.version_at_time
        if as_of_version is not None:
            target = min(as_of_version, info.stream.version)
        key = ("s", stream_id, target)
        kept = cache.get(tenant_id, "state", key) if not info.volatile else None
        if kept is not None:
            state = query_pb2.GetEntityStateResponse.FromString(kept)
            state.events_folded, state.snapshot_version = 0, state.version  # nothing folded by this call
            return state
        state = await _fold(storage, tenant_id, stream_id, target, snapshot_after, max_bytes)
        if not info.volatile:
            data = state.SerializeToString()
            cache.keep(ticket, "state", key, data, len(data), stream_id)
        return state
    finally:
        cache.done(ticket)


def _too_large(stream_id: str, max_bytes: int) -> FailedPrecondition:
    return FailedPrecondition(
        f"the entity state of stream {stream_id!r} is larger than {max_bytes} bytes, the most this service folds",
        reason=Reason.ENTITY_STATE_TOO_LARGE,
        metadata={"stream_id": stream_id, "limit": str(max_bytes)},
    )


def _merge(
    state: dict[str, Any], events: Sequence[model_pb2.StoredEvent], stream_id: str, max_bytes: int, unmeasured: int
) -> int:
    """Merge events into the state (ENTITY_STATE_TOO_LARGE past max_bytes); the bytes merged since it
    was last measured."""
    for event in events:
        apply(state, event)
        unmeasured += len(event.payload)
        if unmeasured > max_bytes:
            if len(dump_json(state)) > max_bytes:
                raise _too_large(stream_id, max_bytes)
            unmeasured = 0
    return unmeasured


async def _fold(
    storage: StorageClient, tenant_id: str, stream_id: str, target: int, snapshot_after: int, max_bytes: int
) -> query_pb2.GetEntityStateResponse:
    state: dict[str, Any] = {}
    version = snapshot_version = folded = 0
    # Payload bytes merged since the state's size was last measured: it is measured (serialized) again
    # once they could have taken it past max_bytes, so the cost stays in proportion to what is folded.
    unmeasured = 0
    updated_at = timestamp_pb2.Timestamp()
    if target:
        snap = await storage.get_snapshot(
            storage_pb2.GetSnapshotRequest(tenant_id=tenant_id, stream_id=stream_id, max_version=target)
        )
        if snap.found:
            raw = snap.state
            state = (
                exact_json(raw) if len(raw) <= INLINE_BYTES else await FOLDING.run(tenant_id, lambda: exact_json(raw))
            )
            version = snapshot_version = snap.version
            updated_at.CopyFrom(snap.updated_at)
        while version < target:
            piece, _ = await storage.read_stream(
                storage_pb2.ReadStreamRequest(
                    tenant_id=tenant_id,
                    stream_id=stream_id,
                    from_version=version + 1,
                    limit=READ_CHUNK,
                    to_version=target,
                ),
            )
            events = piece.events
            if not events:
                break
            if sum(len(e.payload) for e in events) <= INLINE_BYTES:
                unmeasured = _merge(state, events, stream_id, max_bytes, unmeasured)
            else:
                unmeasured = await FOLDING.run(tenant_id, _merge, state, events, stream_id, max_bytes, unmeasured)
            version = events[-1].version
            updated_at.CopyFrom(events[-1].recorded_at)
            folded += len(events)
            if not piece.next_version:
                break
    folded_json = dump_json(state) if len(state) < 1000 else await FOLDING.run(tenant_id, dump_json, state)
    if len(folded_json) > max_bytes:
        raise _too_large(stream_id, max_bytes)
    if target and folded >= snapshot_after:
        if FLAGS.enabled("entity_state_snapshots", tenant=tenant_id, stream=stream_id):
            await _save_snapshot(storage, tenant_id, stream_id, version, folded_json, updated_at)
    return query_pb2.GetEntityStateResponse(
        stream_id=stream_id,
        state=folded_json,
        version=version,
        updated_at=updated_at if version else None,
        events_folded=folded,
        snapshot_version=snapshot_version,
    )


async def _save_snapshot(
    storage: StorageClient,
    tenant_id: str,
    stream_id: str,
    version: int,
    state: bytes,
    at: timestamp_pb2.Timestamp,
) -> None:
    try:
        await storage.put_snapshot(
            storage_pb2.PutSnapshotRequest(
                tenant_id=tenant_id, stream_id=stream_id, version=version, state=state, updated_at=at
            ),
        )
    except AllSourceError:  # a snapshot only saves work later; the fold itself succeeded
        log.warning("could not store a snapshot", extra={"stream_id": stream_id, "version": version}, exc_info=True)
