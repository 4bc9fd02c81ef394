"""Trace context: continue the caller's W3C trace (traceparent / tracestate) for the rest of the call."""

from __future__ import annotations

from opentelemetry import context as otel_context

from shared.rpc.chain import Call, MethodInfo, Stage
from shared.telemetry import tracing

_HEADERS = ("traceparent", "tracestate")


class TraceContext(Stage):
    """Attaches the incoming trace context, so log lines and calls to other services carry its trace id."""

    name = "trace"

    def __init__(self, propagate: bool) -> None:
        self.propagate = propagate

    def applies(self, method: MethodInfo) -> bool:
        return self.propagate

    def enter(self, call: Call) -> None:
        headers = [(k, v) for k, v in call.metadata if k in _HEADERS]
        if headers:
            trace_context = tracing.extract(headers)
            if trace_context is not None:
                otel_context.attach(trace_context)  # each RPC runs in its own task: it dies with it
