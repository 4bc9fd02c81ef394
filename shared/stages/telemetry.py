"""Telemetry: the span of every RPC (continuing the caller's W3C trace) and its RED metrics.

The first stage of every chain, so that its span covers the others and its duration the whole call.
Spans are made here with the OpenTelemetry API rather than by an interceptor (shared.telemetry.tracing
says why); a call whose trace is not sampled costs a non-recording span, and is recorded after the fact
if it fails with a server error or is slow.
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry.trace import NonRecordingSpan

from shared.core.reasons import Reason
from shared.rpc.chain import Call, MethodInfo, Outcome, Stage
from shared.telemetry import tracing
from shared.telemetry.metrics import AUTH_FAILURES, LIMIT_REFUSALS, RpcMetrics

_LIMIT_REASONS = frozenset({Reason.RATE_LIMITED, Reason.QUOTA_EXCEEDED, Reason.LIMITER_UNAVAILABLE})


class Telemetry(Stage):
    """Starts the call's span and ends it with the call's outcome; counts and times the call."""

    name = "telemetry"

    def __init__(self, service: str, *, propagate: bool, metrics: bool) -> None:
        self.service = service
        self.propagate = propagate  # tracing.enabled
        self.metrics = RpcMetrics(service) if metrics else None
        self._attributes: dict[str, dict[str, Any]] = {}

    def applies(self, method: MethodInfo) -> bool:
        if not (self.propagate or self.metrics):
            return False
        service, _, name = method.path[1:].partition("/")
        self._attributes[method.path] = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}
        return True

    def enter(self, call: Call) -> None:
        if self.metrics is not None:
            self.metrics.in_flight.inc()
        if self.propagate:
            parent = tracing.parse_traceparent(call.metadata)
            call.parent = parent
            span = tracing.start_server_span(call.method.path[1:], parent, self._attributes[call.method.path])
            call.span = span
            tracing.attach(span)

    def exit(self, call: Call, outcome: Outcome) -> None:
        took = time.perf_counter() - call.started
        code = outcome.code
        if self.metrics is not None:
            self.metrics.in_flight.dec()
            self.metrics.observe(call.method.path, code, took)
            if outcome.reason:
                if code == "UNAUTHENTICATED":
                    AUTH_FAILURES.labels(self.service, outcome.reason).inc()
                elif outcome.reason in _LIMIT_REASONS:
                    limit = outcome.error.metadata.get("limit", "") if outcome.error is not None else ""
                    LIMIT_REFUSALS.labels(self.service, outcome.reason, limit).inc()
        span = call.span
        if span is None:
            return
        if span.is_recording():
            self._finish(span, call, outcome)
            span.end()
            return
        if type(span) is NonRecordingSpan and tracing.STATE.tracer is not None:
            why = ""
            if code in tracing.SERVER_ERRORS and tracing.STATE.keep_errors:
                why = "error"
            elif took > tracing.STATE.keep_slower_than_s and not call.method.streaming:
                why = "slow"
            if why:
                kept = tracing.keep(
                    call.method.path[1:],
                    call.parent,
                    self._attributes[call.method.path],
                    why,
                    time.time_ns() - int(took * 1e9),
                )
                if kept is not None:
                    self._finish(kept, call, outcome)
                    kept.end()

    @staticmethod
    def _finish(span: Any, call: Call, outcome: Outcome) -> None:
        if call.principal is not None:
            span.set_attribute("allsource.tenant", call.principal.tenant_id)
        if call.request_id:
            span.set_attribute("allsource.request_id", call.request_id)
        message = outcome.error.message if outcome.error is not None else ""
        tracing.end_rpc(span, outcome.code, outcome.reason, message)
