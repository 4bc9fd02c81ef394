"""The Python client of AllSource: typed errors chosen by reason, and a small blocking client.

The generated stubs of the public API are importable as `allsource.v1` (installed with this package).
"""

from allsource_client.client import (
    ANY,
    NO_STREAM,
    STREAM_EXISTS,
    AllSourceClient,
    AllSourceClientError,
    DuplicateEventId,
    EventNotFound,
    InvalidRequest,
    NotFoundError,
    ServiceUnavailable,
    StreamNotFound,
    WrongExpectedVersion,
    error_from_rpc,
    error_from_status,
    event,
    exact,
    status_from_call,
)
from allsource_client.reasons import Reason

__all__ = [
    "ANY",
    "NO_STREAM",
    "STREAM_EXISTS",
    "AllSourceClient",
    "AllSourceClientError",
    "DuplicateEventId",
    "EventNotFound",
    "InvalidRequest",
    "NotFoundError",
    "Reason",
    "ServiceUnavailable",
    "StreamNotFound",
    "WrongExpectedVersion",
    "error_from_rpc",
    "error_from_status",
    "event",
    "exact",
    "status_from_call",
]
