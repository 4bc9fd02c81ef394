"""Validation of appends, reporting every problem as a BadRequest field violation.

Violations name the field as a path into the request (`events[3].event_type`), so a client can point at
the offending event. Validation runs before anything is sent to storage: a rejected append writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

from allsource.v1 import ingest_pb2

from shared.config.flags import FLAGS
from shared.config.settings import LimitsSettings
from shared.core.errors import InvalidArgument
from shared.core.reasons import Reason
from shared.core.text import (
    CONTROL,
    UUID_PATTERN,
    is_json,
    json_error,
    json_too_deep,
    text_problem,
    timestamp_problem,
)

_KINDS = set(ingest_pb2.ExpectedVersionKind.values())
_EXACT = ingest_pb2.EXPECTED_VERSION_KIND_EXACT
_MAX_VIOLATIONS = 100


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
                reason=Reason.INVALID_APPEND,
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
            elif not ev.content_type or is_json(ev.content_type):
                if check_json and (error := json_error(payload)) is not None:
                    out.append((f"{prefix}events[{i}].payload", f"is not valid JSON ({error})"))
                elif json_too_deep(payload, lim.max_json_depth):
                    out.append((f"{prefix}events[{i}].payload", f"must nest at most {lim.max_json_depth} levels deep"))
            if ev.content_type and (len(ev.content_type) > 255 or CONTROL.search(ev.content_type)):
                out.append((f"{prefix}events[{i}].content_type", "must be a MIME type of at most 255 characters"))
            if ev.event_id:
                if not UUID_PATTERN.fullmatch(ev.event_id):
                    out.append((f"{prefix}events[{i}].event_id", "must be a UUID in 8-4-4-4-12 form"))
                elif ev.event_id.lower() in seen_ids:
                    out.append((f"{prefix}events[{i}].event_id", "appears more than once in this append"))
                else:
                    seen_ids.add(ev.event_id.lower())
            if ev.metadata:
                out.extend(self._metadata(ev.metadata, f"{prefix}events[{i}].metadata"))
            if ev.HasField("occurred_at"):
                if timestamp_problem(ev.occurred_at):
                    out.append((f"{prefix}events[{i}].occurred_at", "must be a valid timestamp"))
        if total > lim.max_batch_bytes:
            out.append((f"{prefix}events", f"payloads must total at most {lim.max_batch_bytes} bytes (have {total})"))
        return out

    def _metadata(self, metadata: Mapping[str, str], path: str) -> list[tuple[str, str]]:
        lim = self.limits
        out = []
        if len(metadata) > lim.max_metadata_entries:
            out.append((path, f"must have at most {lim.max_metadata_entries} entries"))
        size = sum(len(k) + len(v) for k, v in metadata.items())
        if 4 * size > lim.max_metadata_bytes:  # UTF-8 takes up to 4 bytes a character: count them
            size = sum(len(k.encode()) + len(v.encode()) for k, v in metadata.items())
        if size > lim.max_metadata_bytes:
            out.append((path, f"must total at most {lim.max_metadata_bytes} bytes"))
        for key in metadata:
            if not key or CONTROL.search(key):
                out.append((f"{path}[{key!r}]", "keys must be non-empty and free of control characters"))
        return out
