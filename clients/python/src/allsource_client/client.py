"""A small synchronous Python client for the public services.

Errors come back as typed exceptions chosen by the ErrorInfo reason (never by parsing message text),
carrying the reason, metadata and BadRequest field violations of the server's status.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import grpc
from allsource.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    event_pb2,
    ingest_pb2,
    ingest_pb2_grpc,
    query_pb2,
    query_pb2_grpc,
)
from google.rpc import error_details_pb2, status_pb2

from allsource_client.reasons import Reason
from allsource_client.service_config import SERVICE_CONFIG

ANY = ingest_pb2.ExpectedVersion(kind=ingest_pb2.EXPECTED_VERSION_KIND_ANY)
NO_STREAM = ingest_pb2.ExpectedVersion(kind=ingest_pb2.EXPECTED_VERSION_KIND_NO_STREAM)
STREAM_EXISTS = ingest_pb2.ExpectedVersion(kind=ingest_pb2.EXPECTED_VERSION_KIND_STREAM_EXISTS)


def exact(version: int) -> ingest_pb2.ExpectedVersion:
    """Expect the stream to be at exactly this version (0: no stream)."""
    return ingest_pb2.ExpectedVersion(kind=ingest_pb2.EXPECTED_VERSION_KIND_EXACT, version=version)


class AllSourceClientError(Exception):
    """An error returned by an AllSource service."""

    def __init__(self, code: grpc.StatusCode, message: str, status: status_pb2.Status | None) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.reason = ""
        self.metadata: dict[str, str] = {}
        self.violations: list[tuple[str, str]] = []
        # Seconds to wait before trying again, when the server says (RetryInfo): it did nothing with
        # the request, so trying again is safe whatever the call.
        self.retry_after: float | None = None
        for detail in status.details if status else ():
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                self.reason, self.metadata = info.reason, dict(info.metadata)
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                self.violations = [(v.field, v.description) for v in bad.field_violations]
            elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                retry = error_details_pb2.RetryInfo()
                detail.Unpack(retry)
                self.retry_after = retry.retry_delay.ToNanoseconds() / 1e9


class InvalidRequest(AllSourceClientError):
    """The request was malformed (see .violations)."""


class NotFoundError(AllSourceClientError):
    """The resource does not exist."""


class StreamNotFound(NotFoundError):
    """The stream has no events."""


class EventNotFound(NotFoundError):
    """No event has that id."""


class WrongExpectedVersion(AllSourceClientError):
    """The stream was not at the expected version; .metadata has expected and actual versions."""


class DuplicateEventId(AllSourceClientError):
    """An event id was reused with different content."""


class ServiceUnavailable(AllSourceClientError):
    """A service is down or shutting down; retry later."""


_BY_REASON: dict[str, type[AllSourceClientError]] = {
    Reason.WRONG_EXPECTED_VERSION: WrongExpectedVersion,
    Reason.DUPLICATE_EVENT_ID: DuplicateEventId,
    Reason.STREAM_NOT_FOUND: StreamNotFound,
    Reason.EVENT_NOT_FOUND: EventNotFound,
}
_BY_CODE: dict[grpc.StatusCode, type[AllSourceClientError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequest,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.UNAVAILABLE: ServiceUnavailable,
}


def error_from_status(status: status_pb2.Status) -> AllSourceClientError:
    """The typed exception for a google.rpc.Status (as found in BatchAppend results)."""
    code = next((c for c in grpc.StatusCode if c.value[0] == status.code), grpc.StatusCode.UNKNOWN)
    generic = AllSourceClientError(code, status.message, status)
    cls = _BY_REASON.get(generic.reason) or _BY_CODE.get(code, AllSourceClientError)
    return cls(code, status.message, status)


def status_from_call(err: grpc.RpcError) -> status_pb2.Status | None:
    """The google.rpc.Status a failed call carries in its trailing metadata (grpc-status-details-bin)."""
    trailing = err.trailing_metadata() if hasattr(err, "trailing_metadata") else None
    for key, value in trailing or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            return status if status.code == err.code().value[0] else None
    return None


def error_from_rpc(err: grpc.RpcError) -> AllSourceClientError:
    """The typed exception for a failed call."""
    status = status_from_call(err)
    if status is None:
        status = status_pb2.Status(code=err.code().value[0], message=err.details() or "")
    return error_from_status(status)


def event(
    event_type: str, data: Any = None, *, event_id: str = "", metadata: Mapping[str, str] | None = None
) -> event_pb2.EventData:
    """An EventData with a JSON payload."""
    payload = data if isinstance(data, bytes) else json.dumps({} if data is None else data).encode()
    return event_pb2.EventData(event_id=event_id, event_type=event_type, payload=payload, metadata=metadata or {})


class AllSourceClient:
    """Blocking access to IngestService, QueryService and AdminService."""

    def __init__(
        self,
        ingest: grpc.Channel | str,
        query: grpc.Channel | str,
        admin: grpc.Channel | str | None = None,
        *,
        metadata: Sequence[tuple[str, str]] = (),
        timeout: float = 30.0,
        credentials: grpc.ChannelCredentials | None = None,
        options: Sequence[tuple[str, Any]] = (),
        retries: int = 3,
        max_retry_wait: float = 10.0,
    ) -> None:
        self.retries = retries
        self.max_retry_wait = max_retry_wait
        self._owned: list[grpc.Channel] = []
        self._credentials = credentials
        self._options = [
            ("grpc.max_receive_message_length", 64 << 20),
            ("grpc.max_send_message_length", 64 << 20),
            # The suite's published retry policy: reads retried on UNAVAILABLE by gRPC itself.
            ("grpc.service_config", SERVICE_CONFIG),
            *options,
        ]
        self.ingest = ingest_pb2_grpc.IngestServiceStub(self._channel(ingest))
        self.query = query_pb2_grpc.QueryServiceStub(self._channel(query))
        self.admin = admin_pb2_grpc.AdminServiceStub(self._channel(admin)) if admin is not None else None
        self.metadata = tuple(metadata)
        self.timeout = timeout

    def _channel(self, target: grpc.Channel | str) -> grpc.Channel:
        if isinstance(target, str):
            channel = (
                grpc.secure_channel(target, self._credentials, options=self._options)
                if self._credentials is not None
                else grpc.insecure_channel(target, options=self._options)
            )
            self._owned.append(channel)
            return channel
        return target

    def _call(self, method: Any, request: Any, **kw: Any) -> Any:
        """One call; a refusal that carries RetryInfo (overloaded, rate limited, storage briefly away: the
        server did nothing) is tried again after the delay it names, up to `retries` times."""
        timeout = kw.pop("timeout", self.timeout)
        for attempt in range(self.retries + 1):
            try:
                return method(request, timeout=timeout, metadata=self.metadata, **kw)
            except grpc.RpcError as err:
                error = error_from_rpc(err)
            if error.retry_after is None or attempt == self.retries or error.retry_after > self.max_retry_wait:
                raise error from None
            time.sleep(error.retry_after)
        raise AssertionError("unreachable")

    def append(
        self,
        stream_id: str,
        events: Iterable[event_pb2.EventData],
        *,
        expected: ingest_pb2.ExpectedVersion = ANY,
        request_id: str = "",
    ) -> ingest_pb2.AppendEventsResponse:
        """Append events to one stream atomically."""
        request = ingest_pb2.AppendEventsRequest(
            stream_id=stream_id, expected_version=expected, events=list(events), request_id=request_id
        )
        return self._call(self.ingest.AppendEvents, request)

    def get_event(self, event_id: str, *, min_position: int = 0) -> event_pb2.Event:
        """One event by id (min_position: as of at least that log position, e.g. an append's
        last_position made through another replica)."""
        request = query_pb2.GetEventRequest(event_id=event_id, min_position=min_position)
        return self._call(self.query.GetEvent, request).event

    def read_stream(
        self,
        stream_id: str,
        *,
        backward: bool = False,
        from_version: int = 0,
        page_size: int = 0,
        min_position: int = 0,
    ) -> list[event_pb2.Event]:
        """Every event of a stream, following page tokens (min_position: as in get_event)."""
        out: list[event_pb2.Event] = []
        token = ""
        while True:
            page = self._call(
                self.query.ReadStream,
                query_pb2.ReadStreamRequest(
                    stream_id=stream_id,
                    direction=query_pb2.READ_DIRECTION_BACKWARD if backward else query_pb2.READ_DIRECTION_FORWARD,
                    from_version=from_version,
                    page_size=page_size,
                    page_token=token,
                    min_position=min_position,
                ),
            )
            out.extend(page.events)
            token = page.next_page_token
            if not token:
                return out

    def list_events(
        self, event_filter: event_pb2.EventFilter | None = None, *, page_size: int = 0, min_position: int = 0
    ) -> Iterator[event_pb2.Event]:
        """Every matching event, following page tokens (min_position: as in get_event)."""
        token = ""
        while True:
            page = self._call(
                self.query.ListEvents,
                query_pb2.ListEventsRequest(
                    filter=event_filter, page_size=page_size, page_token=token, min_position=min_position
                ),
            )
            yield from page.events
            token = page.next_page_token
            if not token:
                return

    def stream_events(
        self, event_filter: event_pb2.EventFilter | None = None, *, batch_size: int = 0
    ) -> Iterator[event_pb2.Event]:
        """Every matching event through the server-streaming StreamEvents."""
        try:
            for message in self.query.StreamEvents(
                query_pb2.StreamEventsRequest(filter=event_filter, batch_size=batch_size),
                timeout=self.timeout,
                metadata=self.metadata,
            ):
                yield from message.events
        except grpc.RpcError as err:
            raise error_from_rpc(err) from None

    def get_state(self, stream_id: str, *, as_of_version: int | None = None) -> tuple[dict[str, Any], int]:
        """The folded state of a stream and the version it reflects."""
        request = query_pb2.GetEntityStateRequest(stream_id=stream_id)
        if as_of_version is not None:
            request.as_of_version = as_of_version
        reply = self._call(self.query.GetEntityState, request)
        return json.loads(reply.state), reply.version

    def subscribe(
        self, request: query_pb2.SubscribeRequest, timeout: float | None = None
    ) -> Iterator[query_pb2.SubscribeResponse]:
        """The subscription's messages; cancel by closing the iterator or letting the timeout pass."""
        call = self.query.Subscribe(request, timeout=timeout, metadata=self.metadata)
        try:
            yield from call
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.CANCELLED:
                raise error_from_rpc(err) from None
        finally:
            call.cancel()

    def system_info(self) -> admin_pb2.GetSystemInfoResponse:
        """Version, uptime, health of every service, storage statistics."""
        if self.admin is None:
            raise ValueError("no admin address given")
        return self._call(self.admin.GetSystemInfo, admin_pb2.GetSystemInfoRequest())

    def close(self) -> None:
        """Close the channels this client opened."""
        for channel in self._owned:
            channel.close()

    def __enter__(self) -> AllSourceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
