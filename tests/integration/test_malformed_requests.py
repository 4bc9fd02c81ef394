"""Undecodable bytes, on every RPC of every service (walked from the descriptors): a clear
INVALID_ARGUMENT with reason MALFORMED_REQUEST, one log line per call and no traceback. A unary request
is refused before any credential is asked for; a client stream's messages are read once the call is
admitted, so those calls carry credentials. Mid-stream, a corrupt message ends the stream the same way."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from allsource.control.v1 import control_pb2
from allsource.storage.v1 import storage_pb2
from allsource.v1 import admin_pb2, auth_pb2, event_pb2, ingest_pb2, query_pb2
from allsource_client import status_from_call
from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2

from shared.auth.scopes import SCOPE_KEY, ScopeSigner
from tests.harness import Suite

CORRUPT = b"\x0a\xff\xff\xff\xff\x0f"  # field 1, length-delimited, longer than the message
DEV_SERVICE_SECRET = b"development-only-service-secret"  # config/development.toml
SERVICES = {
    "ingest": [ingest_pb2.DESCRIPTOR.services_by_name["IngestService"]],
    "query": [query_pb2.DESCRIPTOR.services_by_name["QueryService"]],
    "admin": [
        admin_pb2.DESCRIPTOR.services_by_name["AdminService"],
        auth_pb2.DESCRIPTOR.services_by_name["AuthService"],
    ],
    "storage": [storage_pb2.DESCRIPTOR.services_by_name["StorageService"]],
}
CONTROL = control_pb2.DESCRIPTOR.services_by_name["ControlService"]
HEALTH = health_pb2.DESCRIPTOR.services_by_name["Health"]


def _bad_utf8(method: MethodDescriptor) -> bytes | None:
    """A request whose first string field holds invalid UTF-8 (None when the request has no string)."""
    for field in method.input_type.fields:
        if field.type == FieldDescriptor.TYPE_STRING and not field.is_repeated:
            return bytes([(field.number << 3) | 2, 2]) + b"\xff\xfe"
    return None


def _cases() -> Iterator[tuple[str, MethodDescriptor, bytes]]:
    for name, services in SERVICES.items():
        for service in [*services, CONTROL, HEALTH]:
            for method in service.methods:
                yield name, method, CORRUPT
                bad = _bad_utf8(method)
                if bad is not None:
                    yield name, method, bad


def _reason(err: grpc.RpcError) -> str:
    status = status_from_call(err)
    assert status is not None, f"no rich status: {err.code()} {err.details()}"
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason
    raise AssertionError("no ErrorInfo")


def _call(channel: grpc.Channel, method: MethodDescriptor, data: bytes) -> None:
    path = f"/{method.containing_service.full_name}/{method.name}"
    kw = {"request_serializer": None, "response_deserializer": None}
    if method.client_streaming and method.server_streaming:
        list(channel.stream_stream(path, **kw)(iter([data]), timeout=10))
    elif method.client_streaming:
        channel.stream_unary(path, **kw)(iter([data]), timeout=10)
    elif method.server_streaming:
        list(channel.unary_stream(path, **kw)(data, timeout=10))
    else:
        channel.unary_unary(path, **kw)(data, timeout=10)


def test_every_rpc_refuses_undecodable_bytes_clearly(suite: Suite) -> None:
    cases = list(_cases())
    assert len(cases) > 60
    problems = []
    for service, method, data in cases:
        # A client stream's messages are read after the call is admitted: send the credentials the
        # service takes (a signed service scope for storage), so that the undecodable message is reached.
        metadata: tuple[tuple[str, str], ...] = ()
        if method.client_streaming:
            metadata = (
                ((SCOPE_KEY, ScopeSigner(DEV_SERVICE_SECRET, "query", 60).mint("default", "test")),)
                if service == "storage"
                else suite.auth_metadata()
            )
        with suite.channel(service, metadata) if metadata else suite.raw_channel(service) as channel:
            try:
                _call(channel, method, data)
            except grpc.RpcError as err:
                got = (err.code(), _reason(err))
                if got != (grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED_REQUEST"):
                    problems.append(f"{service} {method.full_name} {data!r}: {got}")
            else:
                problems.append(f"{service} {method.full_name} {data!r}: accepted")
    assert not problems, "\n".join(problems)
    for name in SERVICES:
        log = suite.log(name)
        assert "Traceback" not in log and "Exception deserializing" not in log, name


def test_a_corrupt_message_mid_batch_append_ends_the_stream_after_the_good_ones(suite: Suite, unique: str) -> None:
    good = ingest_pb2.BatchAppendRequest(
        append=ingest_pb2.AppendEventsRequest(
            stream_id=unique + "s", events=[event_pb2.EventData(event_type="E", payload=b"{}")]
        )
    ).SerializeToString()
    channel = suite.channel("ingest")
    call = channel.stream_stream(
        "/allsource.v1.IngestService/BatchAppend",
        request_serializer=None,
        response_deserializer=ingest_pb2.BatchAppendResponse.FromString,
    )
    answers = []
    with pytest.raises(grpc.RpcError) as err:
        for response in call(iter([good, good, CORRUPT, good]), timeout=10):
            answers.append(response)
    assert (err.value.code(), _reason(err.value)) == (grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED_REQUEST")
    assert all(a.WhichOneof("result") == "success" for a in answers)
    with suite.client() as client:  # what was answered was written; the fourth request was not
        assert len(client.read_stream(unique + "s")) == len(answers) <= 2
