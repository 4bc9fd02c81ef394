"""Text rules shared by every service: identifiers, UUIDs, JSON payloads, timestamps."""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
from google.protobuf import duration_pb2, timestamp_pb2

JSON = "application/json"
# Control characters, and characters that change how text is displayed without being visible (bidi
# overrides and marks, line / paragraph separators, zero-width and byte-order marks): refused in ids.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
# A UUID in its canonical 8-4-4-4-12 form (either case).
UUID_PATTERN = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# Timestamp range allowed by google.protobuf.Timestamp: 0001-01-01 to 9999-12-31.
MIN_TIMESTAMP_SECONDS, MAX_TIMESTAMP_SECONDS = -62135596800, 253402300799


def timestamp_problem(ts: timestamp_pb2.Timestamp) -> str | None:
    """What is wrong with a Timestamp, or None."""
    if not 0 <= ts.nanos < 1_000_000_000 or not MIN_TIMESTAMP_SECONDS <= ts.seconds <= MAX_TIMESTAMP_SECONDS:
        return "must be a valid timestamp (nanos 0-999999999, years 1-9999)"
    return None


# The longest duration a request may give (a key's lifetime, a rotation's grace, a stream's max age):
# a hundred years, so that "now" plus it stays within a signed 64-bit count of nanoseconds.
MAX_DURATION_SECONDS = 100 * 366 * 86_400


def duration_problem(d: duration_pb2.Duration, max_seconds: int = MAX_DURATION_SECONDS) -> str | None:
    """What is wrong with a Duration a request gives (negative, malformed, or longer than max_seconds), or None."""
    if d.seconds < 0 or d.nanos < 0:
        return "must not be negative"
    if d.nanos >= 1_000_000_000 or d.seconds > max_seconds:
        return f"must be a valid duration (nanos 0-999999999) of at most {max_seconds} seconds"
    return None


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


def json_too_deep(payload: bytes, max_depth: int) -> bool:
    """Whether a JSON document nests arrays and objects more than max_depth levels deep (False for what
    does not parse: its validity is checked apart). Counting brackets first keeps the usual document
    from being parsed here at all."""
    if payload.count(b"[") + payload.count(b"{") <= max_depth:
        return False
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError:
        try:
            value = exact_json(payload)
        except ValueError:
            return payload.count(b"[") + payload.count(b"{") > 1000  # unparsable past any parser's depth
    level: list[tuple[Any, int]] = [(value, 1)]
    while level:
        item, depth = level.pop()
        if isinstance(item, dict | list):
            if depth > max_depth:
                return True
            children = item.values() if isinstance(item, dict) else item
            level.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def text_problem(value: str, max_bytes: int) -> str | None:
    """What is wrong with a required identifier-like string, or None."""
    if not value:
        return "must not be empty"
    if len(value) * 4 > max_bytes and len(value.encode()) > max_bytes:
        return f"must be at most {max_bytes} bytes of UTF-8"
    if CONTROL.search(value):
        return "must not contain control or invisible formatting characters"
    return None
