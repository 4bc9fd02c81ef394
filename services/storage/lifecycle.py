"""Which events of a stream stay visible, given its lifecycle record: the rules, once for every backend.

A stream's record holds its metadata (max_age, max_count, truncate_before) and its deletion state (soft
deletion through a version, or a tombstone). An event is visible when its version is at or above the
stream's cut (the highest of truncate_before, the deleted versions + 1 and, with max_count, the head
version - max_count + 1) and, with max_age, it was recorded recently enough. Reads apply this at once;
the background sweep removes what it hides.
"""

from __future__ import annotations

from allsource.storage.v1 import lifecycle_pb2, model_pb2

from shared.core.errors import AllSourceError, FailedPrecondition
from shared.core.reasons import Reason
from shared.core.timestamps import from_timestamp

Rec = lifecycle_pb2.StreamLifecycleRecord


def cut(rec: Rec, head_version: int) -> int:
    """The first version that may be visible."""
    first = max(1, rec.metadata.truncate_before, rec.deleted_through + 1)
    if rec.tombstoned:
        return head_version + 1
    if rec.metadata.max_count:
        first = max(first, head_version - rec.metadata.max_count + 1)
    return first


def max_age_ns(rec: Rec) -> int:
    """The age past which events are hidden (0: none)."""
    age = rec.metadata.max_age
    return age.seconds * 1_000_000_000 + age.nanos


def visible(rec: Rec, event: model_pb2.StoredEvent, head_version: int, now_ns: int) -> bool:
    """Whether an event of the stream is visible now."""
    if event.version < cut(rec, head_version):
        return False
    age = max_age_ns(rec)
    return not age or from_timestamp(event.recorded_at) >= now_ns - age


def deleted(rec: Rec | None, head_version: int) -> bool:
    """The stream is tombstoned, or soft-deleted with nothing appended since: it reads as absent."""
    return rec is not None and (rec.tombstoned or (rec.deleted_through > 0 and rec.deleted_through >= head_version))


def nothing_visible(rec: Rec | None, head_version: int, last_recorded_ns: int, now_ns: int) -> bool:
    """The stream has no visible event: deleted, cut past its head, or its newest event is past max_age.
    Listings leave such a stream out, as they leave out a deleted one."""
    if rec is None:
        return False
    if deleted(rec, head_version) or cut(rec, head_version) > head_version:
        return True
    age = max_age_ns(rec)
    return bool(age) and last_recorded_ns < now_ns - age


def volatile(rec: Rec | None) -> bool:
    """Whether the visible events change with time (max_age) or with appends (max_count) alone, with no
    lifecycle change in between: a read cache may not keep what it read of such a stream."""
    return rec is not None and bool(rec.metadata.max_count or max_age_ns(rec))


def restricts(rec: Rec | None) -> bool:
    """Whether the record hides anything at all (snapshots of such a stream are not used)."""
    if rec is None:
        return False
    m = rec.metadata
    return bool(rec.tombstoned or rec.deleted_through or m.truncate_before > 1 or m.max_count or max_age_ns(rec))


def tombstone_refusal(stream_id: str) -> AllSourceError:
    """The error of every write to a hard-deleted stream."""
    return FailedPrecondition(
        f"stream {stream_id!r} was hard-deleted and can never be written again",
        reason=Reason.STREAM_DELETED,
        metadata={"stream_id": stream_id},
    )
