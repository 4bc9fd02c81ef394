"""The call chain every public and internal RPC runs through.

`CallChain` is the request-id, access-log, trace-context and error-mapping stage: it gives each call a
request id (from `x-request-id` metadata or a new one), continues the caller's trace context (default
tracing mode, see shared.tracing), writes one access-log line when the call ends, and turns an
AllSourceError raised by a handler into a rich status. Any other exception becomes INTERNAL with the
request id in its ErrorInfo; its stack trace goes to the log, never to the client.

The chain is applied when servicers are registered (`Registrar`), wrapping each method's handler once,
rather than as a grpc.aio.ServerInterceptor, which would cost a coroutine pipeline and a new handler
object on every call: measured here, an interceptor doing the same work cost 0.09 ms per call, a fifth
of what the whole call costs in an echo server.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import itertools
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
from google.protobuf.message import Message
from opentelemetry import context as otel_context

from shared import tracing
from shared.errors import AllSourceError, Internal
from shared.logs import AccessLog, request_id_var, tenant_var

log = logging.getLogger("allsource.rpc")

REQUEST_ID_KEY = "x-request-id"
# Request ids: a random per-process prefix and a counter. Unique, and far cheaper than uuid4 (a
# getrandom syscall per call); they identify calls, they are not secrets.
_ID_PREFIX = os.urandom(6).hex()
_ID_COUNTER = itertools.count(1)
INFRA_PREFIXES = ("/grpc.health.",)
Behavior = Callable[..., Any]

# The call's metadata and peer, read once by the chain: the guard reads them again for credentials and
# the tenant header, and each read from grpc builds new objects (measured: ~2 us per metadata read and
# ~4 us per peer() on a call that costs ~200 us in an echo server).
_call_metadata: contextvars.ContextVar[tuple[tuple[str, Any], ...] | None] = contextvars.ContextVar(
    "call_metadata", default=None
)
_call_peer: contextvars.ContextVar[str | None] = contextvars.ContextVar("call_peer", default=None)


def call_metadata(context: grpc.aio.ServicerContext) -> tuple[tuple[str, Any], ...]:
    """The invocation metadata of the current call (read once per call)."""
    cached = _call_metadata.get()
    return cached if cached is not None else tuple(context.invocation_metadata() or ())


def call_peer(context: grpc.aio.ServicerContext) -> str:
    """The peer of the current call (read once per call)."""
    cached = _call_peer.get()
    return cached if cached is not None else (context.peer() or "")


class Audit(Protocol):
    """An act being audited (shared.audit.AuditEntry): completed with the call's outcome."""

    def finish(self, outcome: str, reason: str = "") -> None: ...


class Guard(Protocol):
    """Admits or refuses a call before its handler runs (raises an AllSourceError to refuse). Returns the
    audit entry to complete when the call ends, if the call is audited."""

    async def admit(self, method: str, context: grpc.aio.ServicerContext, request: Any = None) -> Audit | None: ...


def metadata_values(context: grpc.aio.ServicerContext, key: str) -> list[str]:
    """Every value of an invocation metadata key of the current call, in order."""
    return [v if isinstance(v, str) else v.decode(errors="replace") for k, v in call_metadata(context) if k == key]


async def abort_with(context: grpc.aio.ServicerContext, error: AllSourceError, request_id: str = "") -> None:
    """End the call with the error's rich status (raises grpc.aio.AbortError)."""
    status = error.to_grpc_status()
    trailing = tuple(status.trailing_metadata) + (((REQUEST_ID_KEY, request_id),) if request_id else ())
    await context.abort(status.code, status.details, trailing)


class CallChain:
    """Wraps handlers with request ids, trace context, access logging and error mapping."""

    def __init__(self, *, access_log: AccessLog | None, propagate_trace: bool, guard: Guard | None = None) -> None:
        self.access_log = access_log
        self.propagate_trace = propagate_trace
        self.guard = guard  # authentication and authorization (shared.auth.guard)

    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """The handler for `method` with the chain around it (built once per method)."""
        if method.startswith(INFRA_PREFIXES):
            # Health stays open. Its Watch writes with context.write(); tracing interceptors expect an
            # async generator (opentelemetry-python-contrib#3066), so present it as one.
            return wrap_handler(handler, lambda behavior, streaming: _as_generator(behavior) if streaming else behavior)
        return wrap_handler(handler, lambda behavior, streaming: self._wrap(behavior, streaming, method))

    def _begin(self, context: grpc.aio.ServicerContext, method: str) -> _Call:
        request_id = ""
        trace_headers = []
        metadata = tuple(context.invocation_metadata() or ())
        _call_metadata.set(metadata)  # each RPC runs in its own task: the values die with it
        for key, value in metadata:
            if key == REQUEST_ID_KEY and value:
                request_id = (value if isinstance(value, str) else value.decode())[:128]
            elif key in ("traceparent", "tracestate"):
                trace_headers.append((key, value))
        request_id = request_id or f"{_ID_PREFIX}{next(_ID_COUNTER):08x}"
        request_id_var.set(request_id)  # each RPC runs in its own task: the values die with it
        if trace_headers and self.propagate_trace:
            trace_context = tracing.extract(trace_headers)
            if trace_context is not None:
                otel_context.attach(trace_context)
        context.set_trailing_metadata(((REQUEST_ID_KEY, request_id),))
        # The peer is read now: once a call is cancelled its context must not be touched (asking a
        # cancelled call for its peer crashed the process in grpcio 1.85).
        peer = context.peer() or ""
        _call_peer.set(peer)
        return _Call(method, request_id, peer if self.access_log is not None else "", time.perf_counter())

    def _error_for(self, call: _Call, exc: BaseException) -> AllSourceError | None:
        if isinstance(exc, AllSourceError):
            return exc
        if isinstance(exc, grpc.aio.AbortError | GeneratorExit | asyncio.CancelledError):
            return None
        log.error(
            "unhandled error in %s",
            call.method,
            exc_info=(type(exc), exc, exc.__traceback__),
            extra={"method": call.method},
        )
        return Internal(
            f"internal error; quote request id {call.request_id} when reporting it",
            metadata={"request_id": call.request_id},
        )

    def _log(
        self, context: grpc.aio.ServicerContext, call: _Call, error: AllSourceError | None, exc: BaseException | None
    ) -> None:
        if self.access_log is None:
            return
        if error is not None:
            code_name, reason = error.code.name, error.reason
        elif exc is None:
            code_name, reason = "OK", ""
        elif isinstance(exc, grpc.aio.AbortError):
            code = context.code()  # set by the abort itself
            code_name = code.name if isinstance(code, grpc.StatusCode) else str(code)
            reason = ""
        else:
            code_name, reason = "CANCELLED", ""  # the client went away: leave the context alone
        self.access_log.record(
            call.method,
            code_name,
            reason,
            (time.perf_counter() - call.started) * 1000,
            call.peer,
            call.request_id,
            tenant_var.get(),
        )

    async def _fail(self, context: grpc.aio.ServicerContext, call: _Call, exc: BaseException) -> None:
        error = self._error_for(call, exc)
        self._log(context, call, error, exc)
        if error is not None:
            await abort_with(context, error, call.request_id)

    def _wrap(self, behavior: Behavior, streaming: bool, method: str) -> Behavior:
        if not streaming:

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                call = self._begin(context, method)
                audit = None
                try:
                    if self.guard is not None:
                        audit = await self.guard.admit(method, context, request)
                    response = await behavior(request, context)
                except BaseException as exc:
                    if audit is not None:
                        audit.finish(*self._outcome(context, exc))
                    await self._fail(context, call, exc)
                    raise
                if audit is not None:
                    audit.finish("OK")
                self._log(context, call, None, None)
                return response

            return unary

        async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            call = self._begin(context, method)
            audit = None
            try:
                if self.guard is not None:
                    # A client-streaming request is an iterator: nothing to read a tenant from.
                    audit = await self.guard.admit(method, context, request if isinstance(request, Message) else None)
                async for item in _relay(behavior(request, context)):
                    yield item
            except BaseException as exc:
                if audit is not None:
                    audit.finish(*self._outcome(context, exc))
                await self._fail(context, call, exc)
                raise
            if audit is not None:
                audit.finish("OK")
            self._log(context, call, None, None)

        return stream

    @staticmethod
    def _outcome(context: grpc.aio.ServicerContext, exc: BaseException) -> tuple[str, str]:
        """The status code name and reason an exception ends a call with."""
        if isinstance(exc, AllSourceError):
            return exc.code.name, exc.reason
        if isinstance(exc, grpc.aio.AbortError):
            code = context.code()
            return (code.name if isinstance(code, grpc.StatusCode) else str(code)), ""
        if isinstance(exc, asyncio.CancelledError | GeneratorExit):
            return "CANCELLED", ""
        return "INTERNAL", ""


@dataclass(frozen=True, slots=True)
class _Call:
    method: str
    request_id: str
    peer: str
    started: float


async def _relay(result: Any) -> AsyncIterator[Any]:
    """Messages of a streaming handler, whether it yields them or writes them with context.write()."""
    if inspect.isasyncgen(result):
        async for item in result:
            yield item
    else:
        await result


def _as_generator(behavior: Behavior) -> Behavior:
    def generator(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        return _relay(behavior(request, context))

    return generator


def wrap_handler(handler: grpc.RpcMethodHandler, wrap: Callable[[Behavior, bool], Behavior]) -> grpc.RpcMethodHandler:
    """A copy of handler whose behavior is wrap(behavior, response_streaming)."""
    kw = {"request_deserializer": handler.request_deserializer, "response_serializer": handler.response_serializer}
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(wrap(handler.unary_unary, False), **kw)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(wrap(handler.unary_stream, True), **kw)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(wrap(handler.stream_unary, False), **kw)
    return grpc.stream_stream_rpc_method_handler(wrap(handler.stream_stream, True), **kw)


class _WrappedGeneric(grpc.GenericRpcHandler):
    def __init__(self, inner: grpc.GenericRpcHandler, chain: CallChain) -> None:
        self._inner = inner
        self._chain = chain
        self._cache: dict[str, grpc.RpcMethodHandler | None] = {}

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        if method not in self._cache:
            handler = self._inner.service(handler_call_details)
            self._cache[method] = self._chain.wrap(method, handler) if handler is not None else None
        return self._cache[method]


class Registrar:
    """Stands in for the server when generated `add_*Servicer_to_server` functions register handlers."""

    def __init__(self, server: grpc.aio.Server, chain: CallChain) -> None:
        self._server = server
        self._chain = chain

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        self._server.add_generic_rpc_handlers(tuple(_WrappedGeneric(h, self._chain) for h in handlers))

    def add_registered_method_handlers(self, service_name: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        wrapped = {name: self._chain.wrap(f"/{service_name}/{name}", h) for name, h in handlers.items()}
        self._server.add_registered_method_handlers(service_name, wrapped)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)
