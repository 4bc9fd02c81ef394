"""Validation of appends, reporting every problem as a BadRequest field violation.

Violations name the field as a path into the request (`events[3].event_type`), so a client can point at
the offending event. Validation runs before anything is sent to storage: a rejected append writes nothing.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
from allsource.v1 import ingest_pb2

from shared.errors import InvalidArgument
from shared.flags import FLAGS
from shared.settings import LimitsSettings

JSON = "application/json"
# Control characters, and characters that change how text is displayed without being visible (bidi
# overrides and marks, line / paragraph separators, zero-width and byte-order marks): refused in ids.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_KINDS = set(ingest_pb2.ExpectedVersionKind.values())
_EXACT = ingest_pb2.EXPECTED_VERSION_KIND_EXACT
_MAX_VIOLATIONS = 100
# Timestamp range allowed by google.protobuf.Timestamp: 0001-01-01 to 9999-12-31.
_MIN_SECONDS, _MAX_SECONDS = -62135596800, 253402300799


def is_json(content_type: str) -> bool:
    """Whether a content type is JSON (application/json, or a +json suffix), ignoring parameters."""
    if not content_type:
        return True
    base = content_type.split(";", 1)[0].strip().lower()
    return base == JSON or base.endswith("+json")


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def parse_json(payload: bytes) -> Any:
    """Parse JSON text strictly; raises ValueError saying what is wrong.

    orjson decides quickly for almost every document; what it refuses (for example integers beyond 64
    bits) is decided by the stdlib, refusing NaN and Infinity, numbers that overflow to infinity, lone
    surrogates, and nesting deeper than the interpreter's recursion limit.
    """
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        first = exc
    try:
        return exact_json(payload)
    except ValueError:
        raise ValueError(str(first)) from None


def exact_json(payload: bytes | str) -> Any:
    """Parse JSON keeping every number exact (integers of any size); refuses what is not portable JSON."""
    try:
        value = json.loads(payload, parse_constant=_reject_constant)
        # Infinity from an overflowing number, and unpaired surrogates, cannot be written back as JSON.
        json.dumps(value, allow_nan=False, ensure_ascii=False).encode()
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except (UnicodeError, TypeError) as exc:
        raise ValueError(f"not portable JSON ({type(exc).__name__})") from None
    return value


def dump_json(value: Any) -> bytes:
    """Compact JSON bytes, exact for integers of any size."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def json_error(payload: bytes) -> str | None:
    """None when payload is valid JSON text, else what is wrong with it."""
    try:
        parse_json(payload)
    except ValueError as exc:
        return str(exc)
    return None


def text_problem(value: str, max_bytes: int) -> str | None:
    """What is wrong with a required identifier-like string, or None."""
    if not value:
        return "must not be empty"
    if len(value) * 4 > max_bytes and len(value.encode()) > max_bytes:
        return f"must be at most {max_bytes} bytes of UTF-8"
    if CONTROL.search(value):
        return "must not contain control or invisible formatting characters"
    return None


class AppendValidator:
    """Checks AppendEventsRequests against the configured limits."""

    def __init__(self, limits: LimitsSettings) -> None:
        self.limits = limits
        self._good_types: set[str] = set()

    def check(self, request: ingest_pb2.AppendEventsRequest, prefix: str = "", tenant: str = "") -> None:
        """Raise InvalidArgument listing every violation; return when the request is valid."""
        violations = self.violations(request, prefix, tenant)
        if violations:
            raise InvalidArgument(
                f"the append is invalid: {violations[0][0]} {violations[0][1]}"
                + (f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""),
                reason="INVALID_APPEND",
                metadata={"violations": str(len(violations))},
                violations=violations,
            )

    def violations(
        self, request: ingest_pb2.AppendEventsRequest, prefix: str = "", tenant: str = ""
    ) -> list[tuple[str, str]]:
        """Every (field, description) problem of the request."""
        lim = self.limits
        check_json = FLAGS.enabled("json_payload_validation", tenant=tenant)
        out: list[tuple[str, str]] = []
        problem = text_problem(request.stream_id, lim.max_stream_id_bytes)
        if problem:
            out.append((f"{prefix}stream_id", problem))
        expected = request.expected_version
        if expected.kind not in _KINDS:
            out.append((f"{prefix}expected_version.kind", "is not a known ExpectedVersionKind"))
        elif expected.version and expected.kind != _EXACT:
            out.append((f"{prefix}expected_version.version", "may be set only with EXPECTED_VERSION_KIND_EXACT"))
        if request.request_id:
            problem = text_problem(request.request_id, lim.max_request_id_bytes)
            if problem:
                out.append((f"{prefix}request_id", problem))
        events = request.events
        if not events:
            out.append((f"{prefix}events", "must hold at least one event"))
        elif len(events) > lim.max_batch_events:
            out.append((f"{prefix}events", f"must hold at most {lim.max_batch_events} events (has {len(events)})"))
            return out
        total = 0
        seen_ids: set[str] = set()
        good_types = self._good_types
        max_event = lim.max_event_bytes
        for i, ev in enumerate(events):
            if len(out) >= _MAX_VIOLATIONS:
                break
            event_type = ev.event_type
            if event_type not in good_types:
                problem = text_problem(event_type, lim.max_event_type_bytes)
                if problem:
                    out.append((f"{prefix}events[{i}].event_type", problem))
                else:
                    if len(good_types) > 10_000:
                        good_types.clear()
                    good_types.add(event_type)
            payload = ev.payload
            total += len(payload)
            if len(payload) > max_event:
                out.append((f"{prefix}events[{i}].payload", f"must be at most {max_event} bytes (has {len(payload)})"))
            elif (
                check_json
                and (not ev.content_type or is_json(ev.content_type))
                and (error := json_error(payload)) is not None
            ):
                out.append((f"{prefix}events[{i}].payload", f"is not valid JSON ({error})"))
            if ev.content_type and (len(ev.content_type) > 255 or CONTROL.search(ev.content_type)):
                out.append((f"{prefix}events[{i}].content_type", "must be a MIME type of at most 255 characters"))
            if ev.event_id:
                if not _UUID.fullmatch(ev.event_id):
                    out.append((f"{prefix}events[{i}].event_id", "must be a UUID in 8-4-4-4-12 form"))
                elif ev.event_id.lower() in seen_ids:
                    out.append((f"{prefix}events[{i}].event_id", "appears more than once in this append"))
                else:
                    seen_ids.add(ev.event_id.lower())
            if ev.metadata:
                out.extend(self._metadata(ev.metadata, f"{prefix}events[{i}].metadata"))
            if ev.HasField("occurred_at"):
                ts = ev.occurred_at
                if not (_MIN_SECONDS <= ts.seconds <= _MAX_SECONDS) or not (0 <= ts.nanos < 1_000_000_000):
                    out.append((f"{prefix}events[{i}].occurred_at", "must be a valid timestamp"))
        if total > lim.max_batch_bytes:
            out.append((f"{prefix}events", f"payloads must total at most {lim.max_batch_bytes} bytes (have {total})"))
        return out

    def _metadata(self, metadata: dict[str, str], path: str) -> list[tuple[str, str]]:
        lim = self.limits
        out = []
        if len(metadata) > lim.max_metadata_entries:
            out.append((path, f"must have at most {lim.max_metadata_entries} entries"))
        size = sum(len(k) + len(v) for k, v in metadata.items())
        if size > lim.max_metadata_bytes:
            out.append((path, f"must total at most {lim.max_metadata_bytes} bytes"))
        for key in metadata:
            if not key or CONTROL.search(key):
                out.append((f"{path}[{key!r}]", "keys must be non-empty and free of control characters"))
        return out
