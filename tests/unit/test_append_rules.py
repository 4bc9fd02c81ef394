"""The append rules on their own (services/storage/append_rules.py): the pure decision every storage
backend calls, branch by branch. The RocksDB contract (tests/storage/contract.py) shows the same rules
end to end; this pins the function a second backend must agree with, without any backend."""

from __future__ import annotations

import uuid

import grpc
import pytest
from allsource.storage.v1 import model_pb2
from google.protobuf import timestamp_pb2

from services.storage import codec
from services.storage.append_rules import (
    Accepted,
    FoundEvent,
    PriorRequest,
    as_stored,
    decide,
    fingerprint,
    given_ids,
    same_content,
)
from shared.core.errors import AllSourceError

ANY = model_pb2.EXPECTED_VERSION_KIND_ANY
UNSPECIFIED = model_pb2.EXPECTED_VERSION_KIND_UNSPECIFIED
NO_STREAM = model_pb2.EXPECTED_VERSION_KIND_NO_STREAM
STREAM_EXISTS = model_pb2.EXPECTED_VERSION_KIND_STREAM_EXISTS
EXACT = model_pb2.EXPECTED_VERSION_KIND_EXACT


def event(n: int = 1, *, event_id: str = "", **kw: object) -> model_pb2.EventInput:
    kw.setdefault("payload", b'{"n":%d}' % n)
    return model_pb2.EventInput(event_id=event_id, event_type=str(kw.pop("event_type", "E")), **kw)  # type: ignore[arg-type]


def append(
    *events: model_pb2.EventInput, stream: str = "s-1", kind: int = ANY, version: int = 0, request_id: str = ""
) -> model_pb2.AppendInput:
    return model_pb2.AppendInput(
        stream_id=stream,
        expected_version=model_pb2.ExpectedVersion(kind=kind, version=version),  # type: ignore[arg-type]
        events=list(events) or [event()],
        request_id=request_id,
    )


def stored(data: model_pb2.EventInput, stream: str, version: int, position: int) -> FoundEvent:
    """A FoundEvent for an event stored earlier with this content."""
    ev = as_stored(data)
    ev.stream_id, ev.version, ev.position = stream, version, position
    ev.recorded_at.FromNanoseconds(1_700_000_000_000_000_000 + position)
    return FoundEvent(index=0, position=position, stream_id=stream, version=version, event=ev)


def at(found: FoundEvent, index: int) -> FoundEvent:
    return FoundEvent(index, found.position, found.stream_id, found.version, found.event)


def refusal(decision: object) -> tuple[grpc.StatusCode, str]:
    assert isinstance(decision, AllSourceError), decision
    return decision.code, decision.reason


# -- expected versions --------------------------------------------------------------------------------

ABSENT, EXISTS, DELETED = "absent", "exists at 3", "soft-deleted at 3"
STATES = {ABSENT: (0, False), EXISTS: (3, False), DELETED: (3, True)}
EXPECTATIONS = [
    # kind, expected version, stream state, accepted?
    (ANY, 0, ABSENT, True),
    (ANY, 0, EXISTS, True),
    (ANY, 0, DELETED, True),
    (UNSPECIFIED, 0, ABSENT, True),
    (UNSPECIFIED, 0, EXISTS, True),
    (NO_STREAM, 0, ABSENT, True),
    (NO_STREAM, 0, EXISTS, False),
    (NO_STREAM, 0, DELETED, True),  # a soft-deleted stream counts as absent
    (STREAM_EXISTS, 0, ABSENT, False),
    (STREAM_EXISTS, 0, EXISTS, True),
    (STREAM_EXISTS, 0, DELETED, False),
    (EXACT, 0, ABSENT, True),
    (EXACT, 1, ABSENT, False),
    (EXACT, 3, EXISTS, True),
    (EXACT, 2, EXISTS, False),
    (EXACT, 4, EXISTS, False),
    (EXACT, 0, EXISTS, False),
]


@pytest.mark.parametrize(
    ("kind", "expected", "state", "accepted"),
    EXPECTATIONS,
    ids=[f"{model_pb2.ExpectedVersionKind.Name(k)[22:]}-{v}-{s}" for k, v, s, _ in EXPECTATIONS],
)
def test_expected_version_kinds_against_each_stream_state(kind: int, expected: int, state: str, accepted: bool) -> None:
    version, deleted = STATES[state]
    request = append(event(1), event(2), kind=kind, version=expected)
    decision = decide(request, stream_version=version, last_position=10, deleted=deleted)
    if accepted:
        # Versions continue from the head (a soft-deleted stream's too); positions from the tenant's last.
        assert isinstance(decision, Accepted), decision
        assert decision == Accepted(first_version=version + 1, first_position=11, count=2)
        assert (decision.last_version, decision.last_position) == (version + 2, 12)
        return
    assert refusal(decision) == (grpc.StatusCode.ABORTED, "WRONG_EXPECTED_VERSION")
    assert isinstance(decision, AllSourceError)
    kind_name = model_pb2.ExpectedVersionKind.Name(kind)
    assert decision.metadata == {
        "stream_id": "s-1",
        "expected_kind": kind_name,
        "actual_version": str(version),
        **({"expected_version": str(expected)} if kind == EXACT else {}),
    }
    assert kind_name in decision.message and f"at version {version}" in decision.message


# -- request ids ----------------------------------------------------------------------------------------


def test_a_request_id_seen_before_replays_its_first_result_whatever_the_stream_did_since() -> None:
    request = append(event(1), kind=NO_STREAM, request_id="r-1")
    first = model_pb2.AppendResult(first_version=1, last_version=1, first_position=7, last_position=7)
    prior = PriorRequest(fingerprint(request), first)
    # The stream has moved on (NO_STREAM no longer holds) and the event ids would clash: the id wins.
    clash = stored(request.events[0], "other-stream", 9, 99)
    decision = decide(
        request,
        stream_version=5,
        last_position=50,
        request_fingerprint=fingerprint(request),
        prior=prior,
        found=[clash],
    )
    assert isinstance(decision, model_pb2.AppendResult)
    assert (decision.first_version, decision.first_position, decision.deduplicated) == (1, 7, True)
    assert not first.deduplicated, "the stored result itself must not be changed"


def test_a_request_id_reused_for_another_request_is_refused() -> None:
    original = append(event(1), request_id="r-1")
    other = append(event(2), request_id="r-1")
    prior = PriorRequest(fingerprint(original), model_pb2.AppendResult(first_version=1, last_version=1))
    decision = decide(other, stream_version=1, last_position=1, request_fingerprint=fingerprint(other), prior=prior)
    assert refusal(decision) == (grpc.StatusCode.INVALID_ARGUMENT, "REQUEST_ID_REUSED")
    assert isinstance(decision, AllSourceError)
    assert decision.metadata == {"request_id": "r-1"}
    assert [field for field, _ in decision.violations] == ["request_id"]


def test_a_fingerprint_covers_everything_but_the_request_id() -> None:
    base = append(event(1), request_id="a")
    assert fingerprint(base) == fingerprint(append(event(1), request_id="b"))
    for changed in (
        append(event(2), request_id="a"),
        append(event(1), stream="s-2", request_id="a"),
        append(event(1), kind=NO_STREAM, request_id="a"),
        append(event(1), event(2), request_id="a"),
        append(event(1, event_type="F"), request_id="a"),
    ):
        assert fingerprint(changed) != fingerprint(base), changed


# -- client-chosen event ids --------------------------------------------------------------------------


def test_the_same_events_again_replay_the_original_result_even_where_the_expected_version_fails() -> None:
    ids = [str(uuid.uuid4()) for _ in range(3)]
    request = append(*(event(i, event_id=ids[i]) for i in range(3)), kind=NO_STREAM)
    # Stored as versions 4-6 at positions 20, 22, 25 (other streams' events in between); given out of order.
    found = [at(stored(request.events[i], "s-1", 4 + i, (20, 22, 25)[i]), i) for i in (2, 0, 1)]
    decision = decide(request, stream_version=6, last_position=30, found=found)
    assert isinstance(decision, model_pb2.AppendResult), decision
    assert (decision.first_version, decision.last_version) == (4, 6)
    assert (decision.first_position, decision.last_position) == (20, 25)
    assert list(decision.event_ids) == ids and decision.deduplicated
    assert decision.recorded_at == found[0].event.recorded_at  # the last event's (index 2)


def duplicate(request: model_pb2.AppendInput, found: list[FoundEvent]) -> str:
    decision = decide(request, stream_version=1, last_position=1, found=found)
    assert refusal(decision) == (grpc.StatusCode.ALREADY_EXISTS, "DUPLICATE_EVENT_ID")
    assert isinstance(decision, AllSourceError)
    index = decision.metadata["event_index"]
    assert decision.metadata["event_id"] == request.events[int(index)].event_id
    assert [field for field, _ in decision.violations] == [f"events[{index}].event_id"]
    return decision.message


def test_event_ids_seen_before_in_any_other_way_are_duplicates() -> None:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    request = append(event(1, event_id=a), event(2, event_id=b))
    first, second = stored(request.events[0], "s-1", 1, 1), at(stored(request.events[1], "s-1", 2, 2), 1)
    # Only some of the ids were stored before (with the same content): the message does not blame content.
    message = duplicate(request, [first])
    assert "different content" not in message
    message = duplicate(request, [second])
    assert "different content" not in message
    # Stored in another stream.
    assert "another stream" in duplicate(
        request, [stored(request.events[0], "s-9", 1, 1), at(stored(request.events[1], "s-9", 2, 2), 1)]
    )
    # Stored with versions that are not consecutive (not by this one append).
    duplicate(request, [first, at(stored(request.events[1], "s-1", 3, 3), 1)])
    # Stored with other content, field by field.
    single = append(event(1, event_id=a))
    other_time = timestamp_pb2.Timestamp(seconds=1)
    for changed in (
        event(9, event_id=a),
        event(1, event_id=a, event_type="F"),
        event(1, event_id=a, content_type="text/plain"),
        event(1, event_id=a, metadata={"k": "v"}),
        event(1, event_id=a, occurred_at=other_time),
    ):
        message = duplicate(single, [stored(changed, "s-1", 1, 1)])
        assert a in message and "different content" in message
    # An id whose stored event cannot be compared (content unknown) is never taken for a replay.
    duplicate(request, [first, FoundEvent(1, 2, "s-1", 2, None)])


def test_an_omitted_content_type_is_json_when_comparing() -> None:
    proposed = event(1)
    assert same_content(proposed, as_stored(proposed))
    assert as_stored(proposed).content_type == "application/json"
    explicit = event(1, content_type="application/json")
    assert same_content(proposed, as_stored(explicit)) and same_content(explicit, as_stored(proposed))
    assert not same_content(proposed, None)


def test_given_ids_refuses_malformed_appends_and_lists_the_ids() -> None:
    def reason_of(request: model_pb2.AppendInput) -> str:
        result = given_ids(request)
        assert isinstance(result, AllSourceError) and result.code == grpc.StatusCode.INVALID_ARGUMENT
        return result.reason

    assert reason_of(append(stream="")) == "INVALID_APPEND"
    assert reason_of(append(stream="a\x00b")) == "INVALID_APPEND"
    assert reason_of(model_pb2.AppendInput(stream_id="s-1")) == "INVALID_APPEND"
    bad = given_ids(append(event(1), event(2, event_id="not-a-uuid")))
    assert isinstance(bad, AllSourceError) and bad.reason == "INVALID_EVENT_ID"
    assert [field for field, _ in bad.violations] == ["events[1].event_id"]
    same = str(uuid.uuid4())
    assert reason_of(append(event(1, event_id=same), event(2, event_id=same))) == "DUPLICATE_EVENT_ID_IN_REQUEST"
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    assert given_ids(append(event(1, event_id=a), event(2), event(3, event_id=b))) == [
        (0, codec.parse_uuid(a)),
        (2, codec.parse_uuid(b)),
    ]
