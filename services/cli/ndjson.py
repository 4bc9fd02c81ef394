"""Export events to NDJSON and import them again, idempotently.

One line per `allsource.v1.Event` in protobuf's JSON mapping with the protos' field names (payload
base64). Import appends each stream's events in file order with their original event ids, so the
server's deduplication (same id, same content: `deduplicated: true`) makes a second import write nothing.
Appends go in waves through BatchAppend: a wave holds at most one request per stream, and the next wave
starts when the previous one is answered, so a stream's events can never overtake each other.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import grpc
import orjson
from allsource.v1 import event_pb2, ingest_pb2, query_pb2
from allsource_client import AllSourceClientError, Reason, error_from_status
from google.protobuf import json_format

from services.cli.errors import ServerRefusal, UsageProblem, from_rpc
from services.cli.session import Session

# Well inside the server's default bounds of an append (10,000 events, 8 MiB).
MAX_EVENTS_PER_APPEND = 1000
MAX_BYTES_PER_APPEND = 4 << 20
# Events read before a window's waves are sent: bounds memory, whatever the file's size (and however big
# its events: a window also closes at WINDOW_BYTES of payloads and metadata).
WINDOW_EVENTS = 20_000
WINDOW_BYTES = 64 << 20
_ANY = ingest_pb2.ExpectedVersion(kind=ingest_pb2.EXPECTED_VERSION_KIND_ANY)


def event_line(event: event_pb2.Event) -> bytes:
    """One NDJSON line (with its newline) for an event."""
    return orjson.dumps(json_format.MessageToDict(event, preserving_proto_field_name=True)) + b"\n"


def parse_line(line: bytes, number: int) -> event_pb2.Event:
    """An event from one NDJSON line; a malformed line is a usage problem naming its number."""
    try:
        return json_format.ParseDict(orjson.loads(line), event_pb2.Event())
    except (orjson.JSONDecodeError, json_format.ParseError, TypeError) as exc:
        raise UsageProblem(f"line {number}: not an allsource.v1.Event in JSON: {exc}") from None


def export_events(
    session: Session,
    out: IO[bytes],
    event_filter: event_pb2.EventFilter,
    *,
    batch_size: int = 1000,
    on_batch: Callable[[int, int], None] = lambda count, position: None,
) -> Iterator[int]:
    """Write every matching event to `out` through StreamEvents, flushing after each batch; yields the
    last position written after each batch, so a caller always knows where to resume."""
    request = query_pb2.StreamEventsRequest(filter=event_filter, batch_size=batch_size)
    for message in session.stream(session.query.StreamEvents, request):
        if not message.events:
            continue
        out.write(b"".join(event_line(e) for e in message.events))
        out.flush()
        last = message.events[-1].position
        on_batch(len(message.events), last)
        yield last


def resume_point(path: str) -> int:
    """The position of the last complete line of an export file, cutting off a line left half-written."""
    with open(path, "rb+") as handle:
        size = handle.seek(0, os.SEEK_END)
        # Look back far enough to hold one whole line (an event is at most a few MiB).
        start = max(0, size - (16 << 20))
        handle.seek(start)
        tail = handle.read()
        end = tail.rfind(b"\n")
        if end < 0:
            if start == 0:
                handle.truncate(0)
                return 0
            raise UsageProblem(f"{path}: no complete line near its end; cannot resume")
        if start + end + 1 != size:
            handle.truncate(start + end + 1)
        begin = tail.rfind(b"\n", 0, end) + 1
        if start > 0 and begin == 0:
            raise UsageProblem(f"{path}: its last line is too long to read back; cannot resume")
        return int(parse_line(tail[begin:end], 0).position)


@dataclass
class ImportResult:
    """What an import did."""

    events: int = 0
    appended: int = 0
    deduplicated: int = 0
    appends: int = 0
    streams: set[str] = field(default_factory=set)

    def as_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "appended": self.appended,
            "deduplicated": self.deduplicated,
            "appends": self.appends,
            "streams": len(self.streams),
        }


def read_events(lines: Iterable[bytes]) -> Iterator[event_pb2.Event]:
    """The events of NDJSON lines, skipping blank ones."""
    for number, line in enumerate(lines, 1):
        if line.strip():
            yield parse_line(line, number)


def import_events(
    session: Session,
    events: Iterable[event_pb2.Event],
    *,
    keep_versions: bool = True,
    on_progress: Callable[[int], None] = lambda count: None,
) -> ImportResult:
    """Append the events, stream by stream in order, in waves of BatchAppend requests (see module doc).

    With keep_versions each append expects its stream at the version before its first event, so the
    imported streams get the exported versions or the import stops at the first stream that cannot."""
    result = ImportResult()
    window: list[event_pb2.Event] = []
    held = 0
    for event in events:
        window.append(event)
        held += event.ByteSize()
        if len(window) >= WINDOW_EVENTS or held >= WINDOW_BYTES:
            _import_window(session, window, keep_versions, result, on_progress)
            window, held = [], 0
    if window:
        _import_window(session, window, keep_versions, result, on_progress)
    return result


def _import_window(
    session: Session,
    window: list[event_pb2.Event],
    keep_versions: bool,
    result: ImportResult,
    on_progress: Callable[[int], None],
) -> None:
    by_stream: dict[str, list[event_pb2.Event]] = {}
    for event in window:
        if not event.stream_id:
            raise UsageProblem(f"event {event.event_id or '(no id)'} has no stream_id")
        if keep_versions and not event.version:
            raise UsageProblem(f"event {event.event_id or '(no id)'} has no version: import with --renumber")
        by_stream.setdefault(event.stream_id, []).append(event)
    result.events += len(window)
    result.streams.update(by_stream)
    chunked = {stream: list(_chunks(events, keep_versions)) for stream, events in by_stream.items()}
    depth = max(len(chunks) for chunks in chunked.values())
    for wave in range(depth):
        requests = [
            _append_request(stream, chunks[wave], keep_versions)
            for stream, chunks in chunked.items()
            if wave < len(chunks)
        ]
        _send_wave(session, requests, keep_versions, result, on_progress)


def _chunks(events: list[event_pb2.Event], keep_versions: bool) -> Iterator[list[event_pb2.Event]]:
    """A stream's events in appends of bounded size; with kept versions, never across a version gap."""
    chunk: list[event_pb2.Event] = []
    size = 0
    for event in events:
        weight = len(event.payload) + 256
        gap = keep_versions and chunk and event.version != chunk[-1].version + 1
        if chunk and (gap or len(chunk) >= MAX_EVENTS_PER_APPEND or size + weight > MAX_BYTES_PER_APPEND):
            yield chunk
            chunk, size = [], 0
        chunk.append(event)
        size += weight
    if chunk:
        yield chunk


def _append_request(stream: str, events: list[event_pb2.Event], keep_versions: bool) -> ingest_pb2.AppendEventsRequest:
    expected = (
        ingest_pb2.ExpectedVersion(kind=ingest_pb2.EXPECTED_VERSION_KIND_EXACT, version=events[0].version - 1)
        if keep_versions
        else _ANY
    )
    return ingest_pb2.AppendEventsRequest(
        stream_id=stream,
        expected_version=expected,
        events=[
            event_pb2.EventData(
                event_id=e.event_id,
                event_type=e.event_type,
                payload=e.payload,
                content_type=e.content_type,
                metadata=e.metadata,
                occurred_at=e.occurred_at if e.HasField("occurred_at") else None,
            )
            for e in events
        ],
    )


def _send_wave(
    session: Session,
    requests: list[ingest_pb2.AppendEventsRequest],
    keep_versions: bool,
    result: ImportResult,
    on_progress: Callable[[int], None],
) -> None:
    messages = (ingest_pb2.BatchAppendRequest(append=r) for r in requests)
    try:
        replies = list(session.ingest.BatchAppend(messages, metadata=session.metadata(), timeout=300))
    except grpc.RpcError as err:
        raise from_rpc(err) from None
    for reply in replies:
        request = requests[reply.request_index]
        if reply.HasField("success"):
            _count(result, reply.success, len(request.events))
        else:
            error = error_from_status(reply.error)
            if error.reason != Reason.DUPLICATE_EVENT_ID:
                raise _stopped(request, error)
            # Some of these events are stored and some are not (an earlier import cut its appends
            # elsewhere): one event at a time, each either found again or appended.
            for single in _singles(request, keep_versions):
                _count(result, _append_one(session, single), 1)
        on_progress(len(request.events))


def _singles(request: ingest_pb2.AppendEventsRequest, keep_versions: bool) -> Iterator[ingest_pb2.AppendEventsRequest]:
    for offset, data in enumerate(request.events):
        expected = (
            ingest_pb2.ExpectedVersion(
                kind=ingest_pb2.EXPECTED_VERSION_KIND_EXACT, version=request.expected_version.version + offset
            )
            if keep_versions
            else _ANY
        )
        yield ingest_pb2.AppendEventsRequest(stream_id=request.stream_id, expected_version=expected, events=[data])


def _append_one(session: Session, request: ingest_pb2.AppendEventsRequest) -> Any:
    try:
        return session.ingest.AppendEvents(request, metadata=session.metadata(), timeout=session.profile.timeout)
    except grpc.RpcError as err:
        refusal = from_rpc(err)
        raise _stopped(request, refusal.error) from None


def _count(result: ImportResult, reply: Any, events: int) -> None:
    result.appends += 1
    if reply.deduplicated:
        result.deduplicated += events
    else:
        result.appended += events


def _stopped(request: ingest_pb2.AppendEventsRequest, error: AllSourceClientError) -> ServerRefusal:
    first = request.events[0].event_id if request.events else ""
    hint = f"stream {request.stream_id}, from event {first}; events before it are imported: run the import again"
    if error.reason == Reason.WRONG_EXPECTED_VERSION:
        hint += " (the stream's versions differ from the file's: --renumber appends after what is there)"
    return ServerRefusal(error, hint)
