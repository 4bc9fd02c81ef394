"""gRPC transport from settings: options, TLS credentials, and channels between services."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc

from shared.config.settings import GrpcSettings, TlsSettings

# Calls between services carry a public request with a little more (the tenant, a signed scope, the
# coalescer's framing): their messages may exceed grpc.max_message_bytes by this much, so that a request
# the public service accepted is never refused on its way to storage.
INTERNAL_HEADROOM_BYTES = 1 << 20


def server_options(g: GrpcSettings, *, internal: bool = False) -> list[tuple[str, int]]:
    """Transport options for servers: message limits, keepalive, stream limits (`internal`: a server only
    the other services call, storage, whose messages have INTERNAL_HEADROOM_BYTES more room)."""
    limit = g.max_message_bytes + (INTERNAL_HEADROOM_BYTES if internal else 0)
    return [
        ("grpc.max_receive_message_length", limit),
        ("grpc.max_send_message_length", limit),
        ("grpc.keepalive_time_ms", int(g.keepalive_time_s * 1000)),
        ("grpc.keepalive_timeout_ms", int(g.keepalive_timeout_s * 1000)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", int(g.min_ping_interval_s * 1000)),
        ("grpc.http2.max_ping_strikes", 2),
        ("grpc.max_concurrent_streams", g.max_concurrent_streams),
        # Calls waiting for the server to pick them up: past grpc's own default (1,000) a burst of calls
        # was cancelled without a word; within this bound they reach the admission stage, which
        # refuses what is too much with UNAVAILABLE / OVERLOADED and a retry delay.
        ("grpc.server.max_pending_requests", g.max_pending_calls),
        ("grpc.server.max_pending_requests_hard_limit", 2 * g.max_pending_calls),
        # Two servers must never share a port silently.
        ("grpc.so_reuseport", 0),
    ]


def channel_options(g: GrpcSettings) -> list[tuple[str, int]]:
    """Transport options for channels between services: keepalive notices a silently dead peer within
    seconds, and a restarted peer is reconnected within half a second (the backoff ceiling)."""
    return [
        ("grpc.max_receive_message_length", g.max_message_bytes + INTERNAL_HEADROOM_BYTES),
        ("grpc.max_send_message_length", g.max_message_bytes + INTERNAL_HEADROOM_BYTES),
        ("grpc.keepalive_time_ms", int(max(g.internal_keepalive_s, g.min_ping_interval_s) * 1000)),
        ("grpc.keepalive_timeout_ms", int(min(g.keepalive_timeout_s, g.internal_keepalive_s) * 1000)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.min_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 500),
    ]


def _read(path: str) -> bytes:
    return Path(path).read_bytes()


def server_credentials(tls: TlsSettings) -> grpc.ServerCredentials | None:
    """TLS (or mTLS) server credentials, or None for plaintext."""
    if not tls.enabled or tls.key is None:
        return None
    return grpc.ssl_server_credentials(
        [(tls.key.get_secret_value().encode(), _read(tls.cert_file))],
        root_certificates=_read(tls.ca_file) if tls.ca_file else None,
        require_client_auth=tls.require_client_cert,
    )


def channel_options_for(g: GrpcSettings, tls: TlsSettings) -> list[tuple[str, Any]]:
    """Channel options, with the TLS name override when one is configured."""
    options: list[tuple[str, Any]] = list(channel_options(g))
    if tls.enabled and tls.server_name:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    return options


def open_channel(
    address: str,
    g: GrpcSettings,
    tls: TlsSettings,
    interceptors: Any = None,
    own_connection: bool = False,
    stream_window: int = 0,
) -> grpc.aio.Channel:
    """A channel to another service of the suite: TLS when the suite uses it (presenting this service's
    certificate, for mTLS), plaintext otherwise. With `own_connection` it never shares its TCP connection
    with another channel (gRPC shares connections between channels with equal options otherwise)."""
    options = channel_options_for(g, tls)
    if own_connection:
        options.append(("grpc.use_local_subchannel_pool", 1))
    if stream_window:
        # A fixed receive window per stream: gRPC otherwise grows it (BDP probing) to megabytes, which a
        # stream whose reader has stalled then fills, for each of a thousand subscriptions.
        options += [("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", stream_window)]
    if not tls.enabled or tls.key is None:
        return grpc.aio.insecure_channel(address, options=options, interceptors=interceptors)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_read(tls.ca_file) if tls.ca_file else None,
        private_key=tls.key.get_secret_value().encode(),
        certificate_chain=_read(tls.cert_file),
    )
    return grpc.aio.secure_channel(address, credentials, options=options, interceptors=interceptors)
