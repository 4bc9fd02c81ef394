"""gRPC transport options from settings, for servers and for channels between services."""

from __future__ import annotations

from shared.settings import GrpcSettings


def server_options(g: GrpcSettings) -> list[tuple[str, int]]:
    """Transport options for servers: message limits, keepalive, stream limits."""
    return [
        ("grpc.max_receive_message_length", g.max_message_bytes),
        ("grpc.max_send_message_length", g.max_message_bytes),
        ("grpc.keepalive_time_ms", int(g.keepalive_time_s * 1000)),
        ("grpc.keepalive_timeout_ms", int(g.keepalive_timeout_s * 1000)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", int(g.min_ping_interval_s * 1000)),
        ("grpc.http2.max_ping_strikes", 2),
        ("grpc.max_concurrent_streams", g.max_concurrent_streams),
        # Two servers must never share a port silently.
        ("grpc.so_reuseport", 0),
    ]


def channel_options(g: GrpcSettings) -> list[tuple[str, int]]:
    """Transport options for channels between services."""
    return [
        ("grpc.max_receive_message_length", g.max_message_bytes),
        ("grpc.max_send_message_length", g.max_message_bytes),
        ("grpc.keepalive_time_ms", int(max(g.keepalive_time_s, g.min_ping_interval_s) * 1000)),
        ("grpc.keepalive_timeout_ms", int(g.keepalive_timeout_s * 1000)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 2000),
    ]
