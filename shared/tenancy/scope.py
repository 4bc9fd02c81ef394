"""Which tenant a call acts for, and what a scoped credential may touch.

The tenant always comes from the caller's credential (the principal set by the call chain), never from
the request body. API keys restricted to a stream-id prefix or to event types are held to them here.
"""

from __future__ import annotations

from typing import Protocol

import grpc
from allsource.v1 import event_pb2

from shared.auth.principal import current
from shared.core.errors import PermissionDenied
from shared.core.reasons import Reason
from shared.core.tenant_ids import DEFAULT_TENANT


def tenant_of(context: grpc.aio.ServicerContext | None = None) -> str:
    """The tenant the current call acts for."""
    principal = current()
    return principal.tenant_id if principal is not None else DEFAULT_TENANT


def _restricted(what: str) -> PermissionDenied:
    return PermissionDenied(f"this credential may not {what}", reason=Reason.SCOPE_RESTRICTED)


def require_stream(stream_id: str) -> None:
    """Refuse a stream outside the credential's stream-id prefix."""
    principal = current()
    if principal is not None and not principal.allows_stream(stream_id):
        raise _restricted(f"use stream {stream_id!r} (limited to {principal.stream_id_prefix!r}*)")


def require_types(event_types: list[str] | tuple[str, ...]) -> None:
    """Refuse event types outside the credential's list."""
    principal = current()
    if principal is not None:
        for event_type in event_types:
            if not principal.allows_type(event_type):
                raise _restricted(f"use event type {event_type!r}")


def require_whole_streams(what: str) -> None:
    """Refuse a credential limited to event types an operation that needs every event of a stream.

    Folded state mixes all of a stream's events, and snapshots hold that mix, so a partial fold would be a
    different state under the same name; such a key is refused instead.
    """
    principal = current()
    if principal is not None and principal.event_types:
        raise _restricted(f"{what}: it is limited to event types {sorted(principal.event_types)}")


def narrow(event_filter: event_pb2.EventFilter) -> None:
    """Hold a filter to the credential's scope: narrow what it leaves open, refuse what it exceeds."""
    principal = current()
    if principal is None:
        return
    if principal.stream_id_prefix:
        if event_filter.stream_id:
            require_stream(event_filter.stream_id)
        elif not event_filter.stream_id_prefix:
            event_filter.stream_id_prefix = principal.stream_id_prefix
        elif not principal.allows_prefix(event_filter.stream_id_prefix):
            raise _restricted(f"read streams {event_filter.stream_id_prefix!r}*")
    if principal.event_types:
        if event_filter.event_types:
            require_types(list(event_filter.event_types))
        else:
            event_filter.event_types.extend(sorted(principal.event_types))


def limited_to_types() -> bool:
    """Whether the credential sees only some event types (reads of a stream must then drop the others)."""
    principal = current()
    return principal is not None and bool(principal.event_types)


class _Placed(Protocol):
    stream_id: str
    event_type: str


def visible(event: _Placed) -> bool:
    """Whether the credential may see this event (out-of-scope events answer as absent)."""
    principal = current()
    return principal is None or (principal.allows_stream(event.stream_id) and principal.allows_type(event.event_type))
