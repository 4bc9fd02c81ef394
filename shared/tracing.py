"""OpenTelemetry: a tracer provider per service and the gRPC interceptors that carry trace context.

The server interceptor continues the caller's trace (W3C `traceparent` metadata) and the client
interceptors inject the current context into calls to other services, so one trace spans
client -> public service -> storage.
"""

from __future__ import annotations

from typing import Any

import grpc

from shared.settings import TracingSettings

_provider: Any = None


def setup(service: str, settings: TracingSettings) -> None:
    """Install the global tracer provider for this process.

    With no exporter the SDK is not installed: the API's non-recording spans still carry the caller's
    trace context through every hop (and into the logs) at a fraction of the cost of recording spans.
    """
    global _provider
    if not settings.enabled or settings.exporter == "none" or _provider is not None:
        return
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    provider = TracerProvider(
        resource=Resource.create({"service.name": f"allsource-{service}"}),
        sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)),
    )
    if settings.exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    elif settings.exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint, insecure=True)))
    trace.set_tracer_provider(provider)
    _provider = provider


def shutdown() -> None:
    """Flush and stop span export."""
    if _provider is not None:
        _provider.shutdown()


def server_interceptors(settings: TracingSettings) -> list[grpc.aio.ServerInterceptor]:
    """The tracing stage of a server's interceptor chain (outermost)."""
    if not settings.enabled:
        return []
    from opentelemetry.instrumentation.grpc import aio_server_interceptor, filters

    # Health probes and reflection make no useful traces (and the interceptor mishandles the
    # write-style Watch stream of the health service: opentelemetry-python-contrib#3066).
    infra = filters.any_of(filters.service_prefix("grpc.health."), filters.service_prefix("grpc.reflection."))
    return [aio_server_interceptor(filter_=filters.negate(infra))]


def client_interceptors(settings: TracingSettings) -> list[Any]:
    """Interceptors for channels to other services of the suite."""
    if not settings.enabled:
        return []
    from opentelemetry.instrumentation.grpc import aio_client_interceptors, filters

    return list(aio_client_interceptors(filter_=filters.negate(filters.service_prefix("grpc.health."))))
