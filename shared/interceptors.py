"""Server interceptors shared by every service.

`CallInterceptor` is the request-id, access-log and error-mapping stage of the chain: it gives each call
a request id (from `x-request-id` metadata or a new one), logs one line when the call ends, and turns an
AllSourceError raised by a handler into a rich status. Any other exception becomes INTERNAL with the
request id in its ErrorInfo; its stack trace goes to the log, never to the client.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from shared.errors import AllSourceError, Internal
from shared.logs import request_id_var

log = logging.getLogger("allsource.access")

REQUEST_ID_KEY = "x-request-id"
_INFRA_PREFIXES = ("/grpc.health.", "/grpc.reflection.")


def metadata_value(context: grpc.aio.ServicerContext, key: str) -> str:
    """The first value of an invocation metadata key, or ''."""
    for k, v in context.invocation_metadata() or ():
        if k == key:
            return v if isinstance(v, str) else v.decode()
    return ""


async def abort_with(context: grpc.aio.ServicerContext, error: AllSourceError) -> None:
    """End the call with the error's rich status (raises grpc.aio.AbortError)."""
    status = error.to_grpc_status()
    await context.abort(status.code, status.details, status.trailing_metadata)


def _request_id(details: grpc.HandlerCallDetails) -> str:
    for key, value in details.invocation_metadata or ():
        if key == REQUEST_ID_KEY and value:
            text = value if isinstance(value, str) else value.decode()
            return text[:128]
    return uuid.uuid4().hex


class CallInterceptor(grpc.aio.ServerInterceptor):
    """Request id, access log and error mapping for every non-infrastructure RPC."""

    def __init__(self, *, access_log: bool = True) -> None:
        self.access_log = access_log

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(_INFRA_PREFIXES):
            return handler
        request_id = _request_id(handler_call_details)
        return wrap_handler(handler, lambda behavior, streaming: self._wrap(behavior, streaming, method, request_id))

    def _wrap(self, behavior: Callable[..., Any], streaming: bool, method: str, request_id: str) -> Callable[..., Any]:
        interceptor = self

        async def finish(context: grpc.aio.ServicerContext, started: float, exc: BaseException | None) -> None:
            if isinstance(exc, AllSourceError):
                await_abort = exc
            elif exc is None or isinstance(exc, grpc.aio.AbortError | GeneratorExit):
                await_abort = None
            else:
                log.error(
                    "unhandled error in %s",
                    method,
                    exc_info=(type(exc), exc, exc.__traceback__),
                    extra={"method": method},
                )
                await_abort = Internal(
                    f"internal error; quote request id {request_id} when reporting it",
                    metadata={"request_id": request_id},
                )
            if interceptor.access_log:
                code = await_abort.code if await_abort else (context.code() or grpc.StatusCode.OK)
                log.info(
                    "rpc",
                    extra={
                        "method": method,
                        "code": code.name if isinstance(code, grpc.StatusCode) else str(code),
                        "reason": await_abort.reason if await_abort else "",
                        "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                        "peer": context.peer(),
                    },
                )
            if await_abort is not None:
                await abort_with(context, await_abort)

        if not streaming:

            async def unary(request_or_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
                token = request_id_var.set(request_id)
                started = time.perf_counter()
                context.set_trailing_metadata(((REQUEST_ID_KEY, request_id),))
                try:
                    response = await behavior(request_or_iterator, context)
                except BaseException as exc:
                    if isinstance(exc, asyncio.CancelledError):
                        raise
                    await finish(context, started, exc)
                    raise
                else:
                    await finish(context, started, None)
                    return response
                finally:
                    request_id_var.reset(token)

            return unary

        async def stream(request_or_iterator: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            token = request_id_var.set(request_id)
            started = time.perf_counter()
            context.set_trailing_metadata(((REQUEST_ID_KEY, request_id),))
            try:
                result = behavior(request_or_iterator, context)
                if inspect.isasyncgen(result):
                    async for item in result:
                        yield item
                else:
                    await result
            except BaseException as exc:
                if isinstance(exc, asyncio.CancelledError):
                    raise
                await finish(context, started, exc)
                raise
            else:
                await finish(context, started, None)
            finally:
                request_id_var.reset(token)

        return stream


def wrap_handler(
    handler: grpc.RpcMethodHandler, wrap: Callable[[Callable[..., Any], bool], Callable[..., Any]]
) -> grpc.RpcMethodHandler:
    """A copy of handler whose behavior is wrap(behavior, response_streaming)."""
    kw = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(wrap(handler.unary_unary, False), **kw)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(wrap(handler.unary_stream, True), **kw)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(wrap(handler.stream_unary, False), **kw)
    return grpc.stream_stream_rpc_method_handler(wrap(handler.stream_stream, True), **kw)
