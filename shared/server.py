"""The process harness every service runs in.

It builds the grpc.aio server with the shared interceptor chain and transport settings, registers
grpc.health.v1 and server reflection from the services' descriptors, reports health (NOT_SERVING while a
dependency is down), and drains on SIGTERM/SIGINT: health turns NOT_SERVING, long-lived streams are told
to end, in-flight calls get `grpc.shutdown_grace_s` to finish, then the service releases its resources.
"""

from __future__ import annotations

import abc
import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc
from google.protobuf import descriptor_pool
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

from shared import logs, tracing
from shared.interceptors import CallChain, Registrar
from shared.settings import Endpoint, LoadedSettings, Settings, SettingsError, load_settings
from shared.storage_client import StorageClient
from shared.transport import server_options

log = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class _MethodAwarePool:
    """The default descriptor pool, also resolving `package.Service.Method` symbols.

    The upb-based protobuf runtime does not find files by method symbol, which `grpcurl describe
    package.Service.Method` asks reflection for.
    """

    def __init__(self) -> None:
        self._pool = descriptor_pool.Default()

    def FindFileContainingSymbol(self, symbol: str) -> Any:
        try:
            return self._pool.FindFileContainingSymbol(symbol)
        except KeyError:
            try:
                return self._pool.FindMethodByName(symbol).containing_service.file
            except KeyError:
                raise KeyError(symbol) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)


class Service(abc.ABC):
    """One AllSource service as the harness runs it."""

    name: str

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.health: health_aio.HealthServicer | None = None
        self.service_names: list[str] = []

    @abc.abstractmethod
    def endpoint(self) -> Endpoint:
        """Where this service listens."""

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Acquire resources before the server accepts calls."""

    @abc.abstractmethod
    def register(self, server: grpc.aio.Server) -> list[str]:
        """Add servicers (with the generated add_*_to_server functions); return their full service names."""

    async def dependencies_ok(self) -> tuple[bool, str]:
        """Whether every dependency this service needs answers; checked every second while running."""
        return True, ""

    def begin_shutdown(self) -> None:  # noqa: B027 - optional hook
        """Tell long-lived calls (subscriptions) to end; called before the server stops."""

    async def stop(self) -> None:  # noqa: B027 - optional hook
        """Release resources after the last call has finished."""

    async def set_serving(self, serving: bool) -> None:
        """Set the health status of the whole server and of each of its services."""
        if self.health is None:
            return
        status = SERVING if serving else NOT_SERVING
        for name in ("", *self.service_names):
            await self.health.set(name, status)


class StorageBackedService(Service):
    """A public service: it reaches storage through a StorageClient and serves only while storage does."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.storage = StorageClient(settings)

    async def dependencies_ok(self) -> tuple[bool, str]:
        ok, why, _ = await self.storage.health()
        return ok, why

    async def stop(self) -> None:
        await self.storage.close()


async def run(service: Service, *, ready: Callable[[int], Awaitable[None]] | None = None) -> None:
    """Serve until SIGTERM or SIGINT, then drain and stop."""
    settings = service.settings
    server = grpc.aio.server(
        interceptors=tracing.server_interceptors(settings.tracing),
        options=server_options(settings.grpc),
    )
    access_log = logs.AccessLog(service.name) if settings.log.access_log else None
    chain = CallChain(access_log=access_log, propagate_trace=tracing.propagating(settings.tracing))
    registrar = Registrar(server, chain)
    await service.start()
    service.service_names = service.register(registrar)
    service.health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(service.health, registrar)
    reflection.enable_server_reflection(
        [*service.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], server, pool=_MethodAwarePool()
    )
    endpoint = service.endpoint()
    try:
        port = server.add_insecure_port(endpoint.bind())
    except RuntimeError as exc:
        raise SystemExit(f"{service.name}: cannot listen on {endpoint.bind()}: {exc}") from exc
    await server.start()
    ok, why = await service.dependencies_ok()
    await service.set_serving(ok)
    log.info(
        "listening",
        extra={"address": f"{endpoint.host}:{port}", "services": service.service_names, "serving": ok, "detail": why},
    )
    if ready is not None:
        await ready(port)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    monitor = asyncio.create_task(_watch_dependencies(service, ok, stop))
    await stop.wait()

    log.info("shutting down", extra={"grace_s": settings.grpc.shutdown_grace_s})
    monitor.cancel()
    await service.set_serving(False)
    service.begin_shutdown()
    for sig in signals:  # a second signal during the grace period stops at once
        loop.add_signal_handler(sig, lambda: asyncio.ensure_future(server.stop(0)))
    await server.stop(settings.grpc.shutdown_grace_s)
    await service.stop()
    if access_log is not None:
        access_log.flush()
    tracing.shutdown()
    log.info("stopped")


async def _watch_dependencies(service: Service, serving: bool, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await asyncio.sleep(1.0)
        ok, why = await service.dependencies_ok()
        if ok != serving:
            log.warning("serving" if ok else "not serving", extra={"detail": why})
            await service.set_serving(ok)
            serving = ok


def parse_args(name: str, argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line arguments common to every service."""
    parser = argparse.ArgumentParser(prog=f"allsource-{name}", description=f"Run the AllSource {name} service.")
    parser.add_argument("--config", metavar="PATH", help="configuration file (.toml, .yaml or .json)")
    return parser.parse_args(argv)


def load_or_exit(name: str, config: str | None) -> LoadedSettings:
    """Load settings; on a settings error print it and exit with status 2."""
    try:
        return load_settings(config)
    except SettingsError as exc:
        print(f"allsource-{name}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def main(name: str, factory: Callable[[Settings], Service], argv: Sequence[str] | None = None) -> None:
    """Entry point of a service's console script."""
    args = parse_args(name, argv)
    loaded = load_or_exit(name, args.config)
    settings = loaded.settings
    logs.configure(name, settings.log.level)
    tracing.setup(name, settings.tracing)

    async def serve() -> None:
        # Built inside the loop: grpc.aio channels bind to the loop that is running when they are made.
        await run(factory(settings))

    with contextlib.suppress(KeyboardInterrupt):
        if settings.grpc.event_loop == "uvloop":
            import uvloop

            uvloop.run(serve())
        else:
            asyncio.run(serve())
