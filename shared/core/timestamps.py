"""Conversions between nanoseconds since the epoch and protobuf Timestamps."""

from __future__ import annotations

import time

from google.protobuf import timestamp_pb2


def now_ns() -> int:
    """Wall-clock time in nanoseconds since the epoch."""
    return time.time_ns()


def to_timestamp(ns: int) -> timestamp_pb2.Timestamp:
    """A Timestamp for nanoseconds since the epoch."""
    return timestamp_pb2.Timestamp(seconds=ns // 1_000_000_000, nanos=ns % 1_000_000_000)


def from_timestamp(ts: timestamp_pb2.Timestamp) -> int:
    """Nanoseconds since the epoch for a Timestamp."""
    return ts.seconds * 1_000_000_000 + ts.nanos


def optional_timestamp(ns: int) -> timestamp_pb2.Timestamp | None:
    """A Timestamp for nanoseconds since the epoch, or None for 0 (never set)."""
    return to_timestamp(ns) if ns else None
