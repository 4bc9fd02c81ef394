"""Append validation: every problem is a field violation naming the event and field."""

from __future__ import annotations

import uuid

import pytest
from allsource.v1 import event_pb2, ingest_pb2

from services.ingest.validation import AppendValidator
from shared.config.settings import LimitsSettings
from shared.core.errors import InvalidArgument
from shared.core.text import is_json, json_error


def request(**kw: object) -> ingest_pb2.AppendEventsRequest:
    kw.setdefault("stream_id", "order-1")
    kw.setdefault("events", [event_pb2.EventData(event_type="Placed", payload=b"{}")])
    return ingest_pb2.AppendEventsRequest(**kw)  # type: ignore[arg-type]


def fields(req: ingest_pb2.AppendEventsRequest, **limits: int) -> dict[str, str]:
    return dict(AppendValidator(LimitsSettings(**limits)).violations(req))


def test_valid_request_passes() -> None:
    AppendValidator(LimitsSettings()).check(request())


@pytest.mark.parametrize(
    ("stream_id", "problem"),
    [
        ("", "must not be empty"),
        ("a\x00b", "control"),
        ("tab\there", "control"),
        ("x" * 257, "at most 256"),
        ("é" * 129, "at most 256"),
    ],
)
def test_stream_id_rules(stream_id: str, problem: str) -> None:
    assert problem in fields(request(stream_id=stream_id))["stream_id"]


def test_violations_name_event_index_and_field() -> None:
    events = [
        event_pb2.EventData(event_type="Ok", payload=b"{}"),
        event_pb2.EventData(event_type="", payload=b"{}"),
        event_pb2.EventData(event_type="Ok", payload=b"{not json"),
        event_pb2.EventData(event_type="Ok", payload=b"\x00\x01", content_type="application/octet-stream"),
        event_pb2.EventData(event_type="Bad\x7f", payload=b"[]", event_id="nope"),
        event_pb2.EventData(event_type="Ok", payload=b"1", metadata={"": "v"}),
    ]
    found = fields(request(events=events))
    assert set(found) == {
        "events[1].event_type",
        "events[2].payload",
        "events[4].event_type",
        "events[4].event_id",
        "events[5].metadata['']",
    }
    assert "JSON" in found["events[2].payload"]


def test_payload_and_batch_limits() -> None:
    big = event_pb2.EventData(event_type="A", payload=b'"' + b"x" * 98 + b'"')
    assert "at most 50 bytes" in fields(request(events=[big]), max_event_bytes=50)["events[0].payload"]
    many = [event_pb2.EventData(event_type="A", payload=b"{}")] * 11
    assert "at most 10 events" in fields(request(events=many), max_batch_events=10)["events"]
    heavy = [event_pb2.EventData(event_type="A", payload=b'"' + b"x" * 38 + b'"')] * 3
    assert "total at most 100" in fields(request(events=heavy), max_batch_bytes=100)["events"]
    assert fields(request(events=[])) == {"events": "must hold at least one event"}


def test_json_content_types() -> None:
    assert is_json("") and is_json("application/json") and is_json("application/json; charset=utf-8")
    assert is_json("application/vnd.order+json") and not is_json("text/plain")
    assert json_error(b'{"big": 123456789012345678901234567890}') is None  # beyond orjson's 64-bit range
    assert json_error(b"NaN") is not None and json_error(b"") is not None
    text = event_pb2.EventData(event_type="A", payload=b"not json", content_type="text/plain")
    assert fields(request(events=[text])) == {}


def test_event_ids_must_be_uuids_and_unique_in_the_request() -> None:
    eid = str(uuid.uuid4())
    events = [event_pb2.EventData(event_type="A", payload=b"{}", event_id=e) for e in (eid, eid.upper(), "123")]
    found = fields(request(events=events))
    assert found["events[1].event_id"] == "appears more than once in this append"
    assert "UUID" in found["events[2].event_id"]


def test_expected_version_consistency() -> None:
    bad = request(expected_version=ingest_pb2.ExpectedVersion(kind=ingest_pb2.EXPECTED_VERSION_KIND_ANY, version=3))
    assert "expected_version.version" in fields(bad)
    unknown = request(expected_version=ingest_pb2.ExpectedVersion(kind=42))
    assert "expected_version.kind" in fields(unknown)


def test_check_raises_bad_request_with_all_violations() -> None:
    with pytest.raises(InvalidArgument) as err:
        AppendValidator(LimitsSettings()).check(request(stream_id="", events=[]), prefix="append.")
    status = err.value.to_status()
    assert err.value.reason == "INVALID_APPEND"
    assert [v[0] for v in err.value.violations] == ["append.stream_id", "append.events"]
    assert len(status.details) == 2  # ErrorInfo + BadRequest


def _nested(depth: int, wrap: str = "object") -> bytes:
    inner = b"1"
    for level in range(depth):
        inner = b'{"k":' + inner + b"}" if (wrap == "object" or level % 2) else b"[" + inner + b"]"
    return inner


@pytest.mark.parametrize("wrap", ["object", "mixed"])
def test_json_nesting_is_bounded_at_the_limit_and_refused_past_it(wrap: str) -> None:
    """Ingest once took JSON nested ~1,000 deep that no fold could read back; the depth is now bounded."""
    at_limit = request(events=[event_pb2.EventData(event_type="E", payload=_nested(64, wrap))])
    past = request(events=[event_pb2.EventData(event_type="E", payload=_nested(65, wrap))])
    assert fields(at_limit) == {}
    assert fields(past) == {"events[0].payload": "must nest at most 64 levels deep"}
    assert fields(past, max_json_depth=65) == {}
    # Deep but flat-counted documents and brackets inside strings are not mistaken for nesting.
    shallow = b'{"text": "' + b"[" * 500 + b'", "list": [1, 2, 3]}'
    assert fields(request(events=[event_pb2.EventData(event_type="E", payload=shallow)])) == {}
    # Binary payloads are not JSON: no depth applies.
    binary = event_pb2.EventData(event_type="E", payload=b"[" * 500, content_type="application/octet-stream")
    assert fields(request(events=[binary])) == {}


@pytest.mark.parametrize("depth", [64, 255], ids=["default limit", "highest limit settable"])
@pytest.mark.parametrize("wrap", ["object", "mixed"])
def test_the_deepest_payload_ingest_accepts_can_always_be_folded(depth: int, wrap: str) -> None:
    """Ingest once accepted JSON that GetEntityState could never fold again. Whatever limits.max_json_depth
    is set to (at most 255), a payload at the limit folds, its state is written as a snapshot and read
    back, and the fold goes on from the snapshot."""
    from allsource.storage.v1 import model_pb2

    from services.query.state import apply
    from shared.core.text import dump_json, exact_json

    payload = b'{"deep":' + _nested(depth - 1, wrap) + b"}"
    assert fields(request(events=[event_pb2.EventData(event_type="E", payload=payload)]), max_json_depth=depth) == {}
    deeper = b'{"deep":' + _nested(depth, wrap) + b"}"
    assert fields(request(events=[event_pb2.EventData(event_type="E", payload=deeper)]), max_json_depth=depth)
    state: dict[str, object] = {}
    apply(state, model_pb2.StoredEvent(stream_id="s", version=1, payload=payload))
    snapshot = dump_json(state)
    assert exact_json(snapshot) == exact_json(payload)
    resumed = exact_json(snapshot)
    apply(resumed, model_pb2.StoredEvent(stream_id="s", version=2, payload=payload))
    assert dump_json(resumed) == snapshot
