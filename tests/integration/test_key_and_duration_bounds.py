"""Bounds of what an API key and a stream's metadata may carry: a key's scope is copied into every read
filter it makes, so it is held to the read filters' bounds (limits.max_filter_event_types,
max_event_type_bytes, max_stream_id_bytes); durations (a key's ttl, a rotation's grace period, a stream's
max_age) must be valid and bounded. Each refusal is INVALID_ARGUMENT with a BadRequest violation on the
field (never INTERNAL, never a status too large for the client's trailers), and nothing is created."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from allsource.v1 import (
    auth_pb2,
    auth_pb2_grpc,
    event_pb2,
    ingest_pb2,
    ingest_pb2_grpc,
    lifecycle_pb2,
    query_pb2_grpc,
)
from google.protobuf import duration_pb2

from shared.config.settings import LimitsSettings
from tests.harness import Suite
from tests.limits.support import Refusal, refusal

Metadata = tuple[tuple[str, str], ...]

# The coded defaults (the suite runs with them): shared/config/settings.py, LimitsSettings.
MAX_TYPES: int = LimitsSettings.model_fields["max_filter_event_types"].default
MAX_TYPE_BYTES: int = LimitsSettings.model_fields["max_event_type_bytes"].default
MAX_STREAM_BYTES: int = LimitsSettings.model_fields["max_stream_id_bytes"].default
YEARS_300 = duration_pb2.Duration(seconds=300 * 365 * 86_400)


def refused(call: Any, request: Any, timeout: float = 20) -> Refusal:
    """The refusal of a unary call (fails, naming the request, when the call succeeds)."""
    try:
        call(request, timeout=timeout)
    except grpc.RpcError as err:
        return refusal(err)
    raise AssertionError(f"{type(request).__name__} was accepted: {str(request)[:300]}")


def auth(suite: Suite, md: Metadata) -> auth_pb2_grpc.AuthServiceStub:
    return auth_pb2_grpc.AuthServiceStub(suite.channel("admin", md))


def keys(suite: Suite, md: Metadata) -> list[auth_pb2.ApiKey]:
    return list(auth(suite, md).ListApiKeys(auth_pb2.ListApiKeysRequest(page_size=1000), timeout=20).api_keys)


def on(got: Refusal, field: str) -> bool:
    """Whether a refusal names `field` (or one entry of it, `field[i]`)."""
    return any(v == field or v.startswith(f"{field}[") for v in got.violations)


# -- 7: a key's scope -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        pytest.param({"event_types": [f"Type{i}" for i in range(MAX_TYPES + 1)]}, "event_types", id="too-many-types"),
        pytest.param({"event_types": ["T" * (MAX_TYPE_BYTES + 1)]}, "event_types", id="long-type"),
        # Bytes, not characters: 2 bytes each.
        pytest.param({"event_types": ["é" * (MAX_TYPE_BYTES // 2 + 1)]}, "event_types", id="long-type-bytes"),
        pytest.param({"stream_id_prefix": "p" * (MAX_STREAM_BYTES + 1)}, "stream_id_prefix", id="long-prefix"),
    ],
)
def test_a_keys_scope_is_held_to_the_read_filter_bounds(
    suite: Suite, unique: str, fields: dict[str, object], field: str
) -> None:
    md = suite.create_tenant(f"{unique}scope".rstrip("-"))
    before = len(keys(suite, md))
    got = refused(
        auth(suite, md).CreateApiKey,
        auth_pb2.CreateApiKeyRequest(name="wide", role=auth_pb2.ROLE_READ_ONLY, **fields),  # type: ignore[arg-type]
        timeout=30,
    )
    assert got.code == "INVALID_ARGUMENT" and on(got, field), got
    assert len(keys(suite, md)) == before


def test_at_the_bounds_a_keys_scope_is_accepted(suite: Suite, unique: str) -> None:
    md = suite.create_tenant(f"{unique}edge".rstrip("-"))
    made = auth(suite, md).CreateApiKey(
        auth_pb2.CreateApiKeyRequest(
            name="edge",
            role=auth_pb2.ROLE_READ_ONLY,
            event_types=[f"{i:0{MAX_TYPE_BYTES}d}" for i in range(MAX_TYPES)],
            stream_id_prefix="p" * MAX_STREAM_BYTES,
        ),
        timeout=30,
    )
    assert len(made.api_key.event_types) == MAX_TYPES and len(made.api_key.stream_id_prefix) == MAX_STREAM_BYTES


def test_200000_empty_event_types_are_invalid_not_too_large_a_refusal(suite: Suite, unique: str) -> None:
    md = suite.create_tenant(f"{unique}empty".rstrip("-"))
    before = len(keys(suite, md))
    got = refused(
        auth(suite, md).CreateApiKey,
        auth_pb2.CreateApiKeyRequest(name="k", role=auth_pb2.ROLE_READ_ONLY, event_types=[""] * 200_000),
        timeout=60,
    )
    # Before: RESOURCE_EXHAUSTED from the client itself, the refusal's 200,000 violations (13 MB of status)
    # past its 16 KiB limit on trailers.
    assert got.code == "INVALID_ARGUMENT", got.code
    assert 1 <= len(got.violations) <= 100, len(got.violations)
    assert on(got, "event_types"), got.violations[:5]
    assert len(keys(suite, md)) == before


# -- 8: a key's ttl and a rotation's grace period -------------------------------------------------------


def test_a_key_ttl_of_300_years_is_invalid(suite: Suite, unique: str) -> None:
    md = suite.create_tenant(f"{unique}ttl".rstrip("-"))
    before = len(keys(suite, md))
    got = refused(
        auth(suite, md).CreateApiKey,
        auth_pb2.CreateApiKeyRequest(name="k", role=auth_pb2.ROLE_READ_ONLY, ttl=YEARS_300),
        timeout=20,
    )
    assert got.code == "INVALID_ARGUMENT" and "ttl" in got.violations, got
    assert len(keys(suite, md)) == before


def test_a_rotation_grace_period_of_300_years_is_invalid(suite: Suite, unique: str) -> None:
    md = suite.create_tenant(f"{unique}grace".rstrip("-"))
    stub = auth(suite, md)
    made = stub.CreateApiKey(auth_pb2.CreateApiKeyRequest(name="k", role=auth_pb2.ROLE_READ_ONLY), timeout=20)
    got = refused(
        stub.RotateApiKey,
        auth_pb2.RotateApiKeyRequest(key_id=made.api_key.key_id, grace_period=YEARS_300),
        timeout=20,
    )
    assert got.code == "INVALID_ARGUMENT" and "grace_period" in got.violations, got
    (key,) = [k for k in keys(suite, md) if k.key_id == made.api_key.key_id]
    assert not key.HasField("previous_secret_valid_until"), key  # not rotated


# -- 9: a stream's max_age ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "max_age",
    [
        pytest.param(duration_pb2.Duration(nanos=2_000_000_000), id="nanos-2e9"),
        pytest.param(duration_pb2.Duration(seconds=10**15), id="seconds-1e15"),
    ],
)
def test_an_invalid_max_age_is_refused(suite: Suite, unique: str, max_age: duration_pb2.Duration) -> None:
    md = suite.create_tenant(f"{unique}maxage".rstrip("-"))
    ingest = ingest_pb2_grpc.IngestServiceStub(suite.channel("ingest", md))
    ingest.AppendEvents(
        ingest_pb2.AppendEventsRequest(stream_id="s-1", events=[event_pb2.EventData(event_type="T", payload=b"{}")]),
        timeout=20,
    )
    got = refused(
        ingest.SetStreamMetadata,
        lifecycle_pb2.SetStreamMetadataRequest(stream_id="s-1", metadata=lifecycle_pb2.StreamMetadata(max_age=max_age)),
        timeout=20,
    )
    assert got.code == "INVALID_ARGUMENT" and "metadata.max_age" in got.violations, got
    meta = query_pb2_grpc.QueryServiceStub(suite.channel("query", md)).GetStreamMetadata(
        lifecycle_pb2.GetStreamMetadataRequest(stream_id="s-1"), timeout=20
    )
    assert meta.metadata_version == 0, meta  # not set


def test_a_refusal_is_never_internal(suite: Suite, unique: str) -> None:
    """The durations past any bound (the largest a Duration may hold) are refused as invalid, too."""
    md = suite.create_tenant(f"{unique}huge".rstrip("-"))
    stub = auth(suite, md)
    huge = duration_pb2.Duration(seconds=315_576_000_000)
    made = stub.CreateApiKey(auth_pb2.CreateApiKeyRequest(name="k", role=auth_pb2.ROLE_READ_ONLY), timeout=20)
    for call, request in (
        (stub.CreateApiKey, auth_pb2.CreateApiKeyRequest(name="k", role=auth_pb2.ROLE_READ_ONLY, ttl=huge)),
        (stub.RotateApiKey, auth_pb2.RotateApiKeyRequest(key_id=made.api_key.key_id, grace_period=huge)),
    ):
        try:
            call(request, timeout=20)
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (err.code(), err.details())
        else:
            raise AssertionError(f"{request} was accepted")
