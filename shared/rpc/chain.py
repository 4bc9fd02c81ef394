"""The call chain every RPC runs through: an ordered list of stages around the handler.

A stage is one small class with one job (telemetry: span and metrics, request id and access log, authentication,
tenant resolution, authorization, audit, admission, usage accounting; see shared.stages). Each service
declares its chain once (shared.harness.chains). When a method is registered the chain keeps only the
stages that apply to it and that have work to do, so a call pays for nothing else: `enter` hooks run in
order before the handler (any may refuse the call by raising an AllSourceError), `after` hooks with a
unary handler's response, `exit` hooks in reverse order once the call has ended, with its outcome.
Around all of them the chain maps errors: an AllSourceError becomes its rich status, any other
exception becomes INTERNAL with the request id in its ErrorInfo; its stack trace goes to the log, never
to the client.

The chain is applied when servicers are registered (`Registrar`), wrapping each method's handler once,
rather than as a grpc.aio.ServerInterceptor, which would cost a coroutine pipeline and a new handler
object on every call (docs/PERFORMANCE.md has the figures).
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc

from shared.auth.principal import Principal
from shared.auth.rbac import Requirement
from shared.core.errors import AllSourceError, Internal, InvalidArgument
from shared.core.reasons import Reason
from shared.core.wire import Prebuilt

log = logging.getLogger("allsource.rpc")
# When the RPC being handled must be answered (time.monotonic()), if its caller set a deadline: calls
# this one makes to other services carry the rest of it.
call_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("call_deadline", default=None)

REQUEST_ID_KEY = "x-request-id"
INFRA_PREFIXES = ("/grpc.health.",)
CONTROL_PREFIX = "/allsource.control."
REFLECTION_PREFIX = "/grpc.reflection."
Behavior = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class MethodInfo:
    """What the chain knows about a method when it is registered."""

    path: str  # /package.Service/Method
    requirement: Requirement | None  # declared in the protos (public services); None otherwise
    streaming: bool = False  # the client or the server streams

    @property
    def service(self) -> str:
        """The full service name."""
        return self.path[1:].split("/", 1)[0]

    @property
    def control(self) -> bool:
        """A ControlService method (run-time control, for the admin service only)."""
        return self.path.startswith(CONTROL_PREFIX)

    @property
    def reflection(self) -> bool:
        """A server reflection method."""
        return self.path.startswith(REFLECTION_PREFIX)


@dataclass(slots=True)
class Call:
    """One RPC in progress, as its stages see it: each stage reads what earlier ones found."""

    method: MethodInfo
    context: grpc.aio.ServicerContext
    request: Any  # the request message; None for client-streaming calls
    metadata: tuple[tuple[str, Any], ...]
    peer: str
    started: float
    request_id: str = ""
    principal: Principal | None = None  # authenticated caller (authentication, tenant resolution)
    tenant: Any = None  # the record of the tenant acted on (allsource.v1.Tenant; tenant resolution)
    switched: bool = False  # an operator acting on another tenant (x-allsource-tenant)
    audit: Any = None  # the audit entry of an audited act
    admitted: bool = False  # holds a slot of the admission stage
    share: str = ""  # whose share of the admission stage's slots it holds (a tenant)
    rate: Any = None  # the rate limits admission charged (settled against the response: page reads)
    span: Any = None  # the call's span (telemetry), recorded or not
    parent: Any = None  # the caller's span context, when it sent one
    # Trailing metadata the call ends with (a stage that adds to it also sets it on the context).
    trailing: list[tuple[str, str]] = field(default_factory=list)

    def metadata_values(self, key: str) -> list[str]:
        """Every value of an invocation metadata key, in order."""
        return [v if isinstance(v, str) else v.decode(errors="replace") for k, v in self.metadata if k == key]


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a call ended: a status code name, the ErrorInfo reason, and the error it ended with."""

    code: str
    reason: str = ""
    error: AllSourceError | None = None


OK = Outcome("OK")


class Stage:
    """One step of the call chain. Subclasses override what they need; the chain skips the rest."""

    name = "stage"

    def applies(self, method: MethodInfo) -> bool:
        """Whether this stage runs for the method (decided once, when the method is registered)."""
        return True

    def enter(self, call: Call) -> Awaitable[None] | None:
        """Before the handler: refuse the call by raising an AllSourceError. May be a coroutine."""
        return None

    def after(self, call: Call, response: Any) -> None:
        """After a unary handler has answered, with its response (in reverse stage order)."""

    def exit(self, call: Call, outcome: Outcome) -> None:
        """After the call has ended, with its outcome (in reverse stage order)."""


def add_trailing(context: grpc.aio.ServicerContext, key: str, value: str) -> None:
    """Add to the trailing metadata a handler's call ends with (keeping what stages set)."""
    context.set_trailing_metadata((*tuple(context.trailing_metadata() or ()), (key, value)))


def _overrides(stage: Stage, hook: str) -> bool:
    return getattr(type(stage), hook) is not getattr(Stage, hook)


# Every refusal the service makes tells gRPC clients not to repeat the call on their own (gRPC's server
# pushback: a negative delay means no retry). A client's retry policy (the published service config
# retries reads on UNAVAILABLE) then covers only a server that did not answer; a refusal that may be
# tried again says when in its RetryInfo, which a client honours itself (allsource_client does).
NO_RETRY_PUSHBACK = ("grpc-retry-pushback-ms", "-1")


async def abort_with(context: grpc.aio.ServicerContext, error: AllSourceError, trailing: Sequence[Any] = ()) -> None:
    """End the call with the error's rich status (raises grpc.aio.AbortError)."""
    status = error.to_grpc_status()
    await context.abort(status.code, status.details, (*status.trailing_metadata, *trailing, NO_RETRY_PUSHBACK))


class CallChain:
    """Wraps handlers with the stages of one service."""

    def __init__(self, stages: Iterable[Stage] = (), requirements: Mapping[str, Requirement] | None = None) -> None:
        self.stages: list[Stage] = list(stages)
        self.requirements = dict(requirements or {})

    def names(self) -> list[str]:
        """The stage names, outermost first."""
        return [stage.name for stage in self.stages]

    def stage(self, cls: type[Stage]) -> Any:
        """The chain's stage of this class, if it has one (for reloads)."""
        return next((s for s in self.stages if isinstance(s, cls)), None)

    def wrap(self, path: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """The handler for `path` with the chain around it (built once per method)."""
        if path.startswith(INFRA_PREFIXES):
            # Health stays open. Its Watch writes with context.write(); tracing interceptors expect an
            # async generator (opentelemetry-python-contrib#3066), so it is presented as one.
            return wrap_handler(handler, lambda behavior, streaming: _infra(behavior, streaming, path))
        info = MethodInfo(path, self.requirements.get(path), streaming=handler.unary_unary is None)
        applied = [s for s in self.stages if s.applies(info)]
        enters = tuple(s.enter for s in applied if _overrides(s, "enter"))
        afters = tuple(s.after for s in reversed(applied) if _overrides(s, "after"))
        exits = tuple(s.exit for s in reversed(applied) if _overrides(s, "exit"))
        return wrap_handler(
            handler, lambda behavior, streaming: _wrap(behavior, streaming, info, enters, exits, afters)
        )


class Undecodable:
    """What a request that failed to decode becomes (the handler never sees it: the chain refuses it)."""

    __slots__ = ("problem",)

    def __init__(self, problem: str) -> None:
        self.problem = problem


def _malformed(request: Undecodable, info: MethodInfo) -> InvalidArgument:
    return InvalidArgument(
        f"the request message could not be decoded ({request.problem}); send a valid serialized "
        f"request for {info.path}",
        reason=Reason.MALFORMED_REQUEST,
        metadata={"method": info.path},
    )


def _lenient(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """A deserializer that turns undecodable bytes (corrupt protobuf, invalid UTF-8 in a string field)
    into an Undecodable marker instead of an exception, which grpc would answer with UNKNOWN and a
    traceback in the log for every such request."""
    if deserializer is None:
        return None

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as exc:
            return Undecodable(type(exc).__name__)

    return deserialize


async def _checked(requests: AsyncIterator[Any], info: MethodInfo) -> AsyncIterator[Any]:
    """A client stream's requests, ending the call at the first one that did not decode."""
    async for request in requests:
        if type(request) is Undecodable:
            raise _malformed(request, info)
        yield request


def _begin(info: MethodInfo, context: grpc.aio.ServicerContext, request: Any) -> Call:
    # The peer is read now: once a call is cancelled its context must not be touched (asking a
    # cancelled call for its peer crashed the process in grpcio 1.85).
    remaining = context.time_remaining()
    call_deadline.set(time.monotonic() + remaining if remaining is not None else None)
    metadata = tuple(context.invocation_metadata() or ())
    return Call(info, context, request, metadata, context.peer() or "", time.perf_counter())


def _outcome(call: Call, exc: BaseException) -> Outcome:
    """The outcome an exception ends a call with; unexpected exceptions are logged and become INTERNAL."""
    if isinstance(exc, AllSourceError):
        return Outcome(exc.code.name, exc.reason, exc)
    if isinstance(exc, grpc.aio.AbortError):
        code = call.context.code()  # set by the abort itself
        return Outcome(code.name if isinstance(code, grpc.StatusCode) else str(code))
    if isinstance(exc, GeneratorExit | asyncio.CancelledError):
        return Outcome("CANCELLED")  # the client went away: leave the context alone
    log.error(
        "unhandled error in %s",
        call.method.path,
        exc_info=(type(exc), exc, exc.__traceback__),
        extra={"method": call.method.path},
    )
    error = Internal(
        f"internal error; quote request id {call.request_id} when reporting it",
        metadata={"request_id": call.request_id},
    )
    return Outcome(error.code.name, error.reason, error)


def _wrap(
    behavior: Behavior,
    streaming: bool,
    info: MethodInfo,
    enters: tuple[Callable[[Call], Awaitable[None] | None], ...],
    exits: tuple[Callable[[Call, Outcome], None], ...],
    afters: tuple[Callable[[Call, Any], None], ...] = (),
) -> Behavior:
    async def admit(call: Call) -> None:
        for enter in enters:
            pending = enter(call)
            if pending is not None:
                await pending

    async def fail(call: Call, exc: BaseException) -> None:
        outcome = _outcome(call, exc)
        for leave in exits:
            leave(call, outcome)
        if outcome.error is not None:
            await abort_with(call.context, outcome.error, call.trailing)

    if not streaming:

        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            call = _begin(info, context, request)
            try:
                if type(request) is Undecodable:
                    raise _malformed(request, info)
                if hasattr(request, "__aiter__"):
                    request = _checked(request, info)
                for enter in enters:  # inlined rather than a helper coroutine: this runs on every call
                    pending = enter(call)
                    if pending is not None:
                        await pending
                response = await behavior(request, context)
                for after in afters:
                    after(call, response)
            except BaseException as exc:
                await fail(call, exc)
                raise
            for leave in exits:
                leave(call, OK)
            return response

        return unary

    async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        # A client-streaming request is an iterator, not a message.
        streamed = hasattr(request, "__aiter__")
        call = _begin(info, context, None if streamed else request)
        try:
            if type(request) is Undecodable:
                raise _malformed(request, info)
            if streamed:
                request = _checked(request, info)
            await admit(call)
            async for item in _relay(behavior(request, context)):
                yield item
        except BaseException as exc:
            await fail(call, exc)
            raise
        for leave in exits:
            leave(call, OK)

    return stream


async def _relay(result: Any) -> AsyncIterator[Any]:
    """Messages of a streaming handler, whether it yields them or writes them with context.write()."""
    if inspect.isasyncgen(result):
        async for item in result:
            yield item
    else:
        await result


def _infra(behavior: Behavior, streaming: bool, path: str) -> Behavior:
    """Health, outside the chain: only undecodable requests are refused."""
    info = MethodInfo(path, None)
    if streaming:

        async def generator(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            if type(request) is Undecodable:
                await abort_with(context, _malformed(request, info))
            async for item in _relay(behavior(request, context)):
                yield item

        return generator

    async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if type(request) is Undecodable:
            await abort_with(context, _malformed(request, info))
        return await behavior(request, context)

    return unary


def _prebuilt_or(serializer: Callable[[Any], bytes] | None) -> Callable[[Any], bytes] | None:
    """A unary response serializer that sends a Prebuilt response's bytes as they are."""
    if serializer is None:
        return None

    def serialize(response: Any) -> bytes:
        return response.data if type(response) is Prebuilt else serializer(response)

    return serialize


def wrap_handler(handler: grpc.RpcMethodHandler, wrap: Callable[[Behavior, bool], Behavior]) -> grpc.RpcMethodHandler:
    """A copy of handler whose behavior is wrap(behavior, response_streaming)."""
    kw = {
        "request_deserializer": _lenient(handler.request_deserializer),
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary:
        kw["response_serializer"] = _prebuilt_or(handler.response_serializer)
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
    """Stands in for the server when generated `add_*Servicer_to_server` functions register handlers.

    Registration is deferred until `install`, once the chain's stages are known (some stages need the
    names of the services registered)."""

    def __init__(self, server: grpc.aio.Server, chain: CallChain) -> None:
        self._server = server
        self.chain = chain
        self._generic: list[grpc.GenericRpcHandler] = []
        self._registered: list[tuple[str, dict[str, grpc.RpcMethodHandler]]] = []

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        self._generic.extend(handlers)

    def add_registered_method_handlers(self, service_name: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        self._registered.append((service_name, handlers))

    def install(self) -> None:
        """Register everything added so far with the chain around it."""
        if self._generic:
            self._server.add_generic_rpc_handlers(tuple(_WrappedGeneric(h, self.chain) for h in self._generic))
        for service_name, handlers in self._registered:
            wrapped = {name: self.chain.wrap(f"/{service_name}/{name}", h) for name, h in handlers.items()}
            self._server.add_registered_method_handlers(service_name, wrapped)
        self._generic, self._registered = [], []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)
