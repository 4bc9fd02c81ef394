"""The rules of an append, written once for every backend: a pure decision.

A backend reads what the decision needs (the stream's head, the tenant's last position, the stored
result of an earlier append with the same request id, the stored events of any client-chosen event
ids) and asks `decide`. The answer is a refusal, a replay of an earlier append (idempotency: nothing is
written), or the versions and positions to write. A backend whose engine enforces concurrency itself
(JetStream's expected-sequence headers) must still agree with this function.

Order of the rules: a request id seen before answers with its original result (or REQUEST_ID_REUSED
when the request differs), whatever happened to the stream since; then event ids seen before make the
append a replay (every id, same stream, same content, same order) or a DUPLICATE_EVENT_ID; only then is
the expected version checked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from allsource.storage.v1 import model_pb2

from services.storage import codec
from shared.core.errors import Aborted, AllSourceError, AlreadyExists, InvalidArgument
from shared.core.reasons import Reason

JSON = "application/json"
_EK = model_pb2.ExpectedVersionKind
# Module constants: attribute lookups on the enum wrapper are slow enough to show up per append.
_NO_STREAM = model_pb2.EXPECTED_VERSION_KIND_NO_STREAM
_STREAM_EXISTS = model_pb2.EXPECTED_VERSION_KIND_STREAM_EXISTS
_EXACT = model_pb2.EXPECTED_VERSION_KIND_EXACT


@dataclass(frozen=True, slots=True)
class PriorRequest:
    """The stored outcome of an earlier append with the same request id (within its retention)."""

    fingerprint: bytes
    result: model_pb2.AppendResult


@dataclass(frozen=True, slots=True)
class FoundEvent:
    """An event already stored (or pending in the same batch) under a client-chosen id of the append."""

    index: int  # which event of the append named this id
    position: int
    stream_id: str
    version: int
    event: model_pb2.StoredEvent | None  # its content, to compare


@dataclass(frozen=True, slots=True)
class Accepted:
    """The append goes ahead: its events take these versions and positions."""

    first_version: int
    first_position: int
    count: int

    @property
    def last_version(self) -> int:
        return self.first_version + self.count - 1

    @property
    def last_position(self) -> int:
        return self.first_position + self.count - 1


Decision = Accepted | model_pb2.AppendResult | AllSourceError


def given_ids(request: model_pb2.AppendInput) -> list[tuple[int, bytes]] | AllSourceError:
    """The client-chosen event ids (index, 16 bytes), or why the append is malformed."""
    if not request.stream_id or "\x00" in request.stream_id or not request.events:
        return InvalidArgument("stream_id and at least one event are required", reason=Reason.INVALID_APPEND)
    given: list[tuple[int, bytes]] = []
    for index, ev in enumerate(request.events):
        if ev.event_id:
            raw = codec.parse_uuid(ev.event_id)
            if raw is None:
                return InvalidArgument(
                    "event_id must be a UUID",
                    reason=Reason.INVALID_EVENT_ID,
                    violations=[(f"events[{index}].event_id", "must be a UUID in 8-4-4-4-12 form")],
                )
            given.append((index, raw))
    if len({raw for _, raw in given}) != len(given):
        return InvalidArgument("event ids must be unique within an append", reason=Reason.DUPLICATE_EVENT_ID_IN_REQUEST)
    return given


def fingerprint(request: model_pb2.AppendInput) -> bytes:
    """What a request id is bound to: the whole request except the id itself."""
    copy = model_pb2.AppendInput()
    copy.CopyFrom(request)
    copy.request_id = ""
    return hashlib.blake2b(copy.SerializeToString(deterministic=True), digest_size=16).digest()


def decide(
    request: model_pb2.AppendInput,
    *,
    stream_version: int,
    last_position: int,
    request_fingerprint: bytes = b"",
    prior: PriorRequest | None = None,
    found: Sequence[FoundEvent] = (),
    deleted: bool = False,
) -> Decision:
    """Refuse, replay or accept an append (see the module doc for the order of the rules). A `deleted`
    (soft-deleted) stream counts as absent for the expected version, and its versions continue."""
    if prior is not None:
        if prior.fingerprint != request_fingerprint:
            return InvalidArgument(
                "request_id was already used for a different request",
                reason=Reason.REQUEST_ID_REUSED,
                metadata={"request_id": request.request_id},
                violations=[("request_id", "already used for a different request")],
            )
        replay = model_pb2.AppendResult()
        replay.CopyFrom(prior.result)
        replay.deduplicated = True
        return replay
    if found:
        return _replay_or_duplicate(request, found)
    kind = request.expected_version.kind
    expected = request.expected_version.version
    exists = stream_version != 0 and not deleted
    if (
        (kind == _NO_STREAM and exists)
        or (kind == _STREAM_EXISTS and not exists)
        or (kind == _EXACT and stream_version != expected)
    ):
        stream_id = request.stream_id
        return Aborted(
            f"stream {stream_id!r} is at version {stream_version}, which does not satisfy the expected "
            f"version ({_EK.Name(kind)}" + (f" {expected})" if kind == _EXACT else ")"),
            reason=Reason.WRONG_EXPECTED_VERSION,
            metadata={
                "stream_id": stream_id,
                "expected_kind": _EK.Name(kind),
                "actual_version": str(stream_version),
                **({"expected_version": str(expected)} if kind == _EXACT else {}),
            },
        )
    return Accepted(stream_version + 1, last_position + 1, len(request.events))


def _replay_or_duplicate(request: model_pb2.AppendInput, found: Sequence[FoundEvent]) -> Decision:
    """Ids seen before: a replay when every id of the append was stored by this very append."""
    ordered = sorted(found, key=lambda f: f.index)
    first = ordered[0]
    consistent = len(ordered) == len(request.events) and all(
        f.stream_id == request.stream_id
        and f.version == first.version + i
        and same_content(request.events[f.index], f.event)
        for i, f in enumerate(ordered)
    )
    if not consistent:
        same = first.stream_id == request.stream_id and same_content(request.events[first.index], first.event)
        event_id = request.events[first.index].event_id
        return AlreadyExists(
            f"event id {event_id} was already appended"
            + ("" if same else " with different content or to another stream"),
            reason=Reason.DUPLICATE_EVENT_ID,
            metadata={"event_id": event_id, "event_index": str(first.index)},
            violations=[(f"events[{first.index}].event_id", "already used by another event")],
        )
    last = ordered[-1]
    recorded = last.event.recorded_at if last.event is not None else None
    return model_pb2.AppendResult(
        first_version=first.version,
        last_version=last.version,
        first_position=first.position,
        last_position=last.position,
        event_ids=[ev.event_id for ev in request.events],
        recorded_at=recorded,
        deduplicated=True,
    )


def same_content(proposed: model_pb2.EventInput, stored: model_pb2.StoredEvent | None) -> bool:
    """Whether an event to append has the content of a stored one (the server-assigned fields aside)."""
    if stored is None:
        return False
    return (
        proposed.event_type == stored.event_type
        and proposed.payload == stored.payload
        and (proposed.content_type or JSON) == stored.content_type
        and dict(proposed.metadata) == dict(stored.metadata)
        and proposed.occurred_at == stored.occurred_at
    )


def as_stored(data: model_pb2.EventInput) -> model_pb2.StoredEvent:
    """An event still being appended, seen as stored (for comparison within one batch)."""
    ev = model_pb2.StoredEvent.FromString(data.SerializeToString())
    if not ev.content_type:
        ev.content_type = JSON
    return ev
