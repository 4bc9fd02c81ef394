"""The process harness every service runs in.

It builds the grpc.aio server with the shared call chain and transport settings (TLS, or plaintext),
registers grpc.health.v1, server reflection (from the services' descriptors) and the control service,
reports health (NOT_SERVING while a dependency is down), reloads its configuration on SIGHUP, keeps
feature flags current, and drains on SIGTERM/SIGINT: health turns NOT_SERVING, long-lived streams are
told to end, in-flight calls get `grpc.shutdown_grace_s` to finish, then the service releases its
resources.
"""

from __future__ import annotations

import abc
import argparse
import asyncio
import contextlib
import ctypes
import gc
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import grpc
from allsource.control.v1 import control_pb2_grpc
from allsource.storage.v1 import storage_pb2
from google.protobuf import descriptor_pool
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from shared.auth import rbac
from shared.auth.scopes import ScopeVerifier
from shared.auth.state import AuthState
from shared.auth.tokens import TokenVerifier
from shared.config.flags import FLAGS, FlagState
from shared.config.loader import ConfigInputs, LoadedSettings, SettingsError, load_settings
from shared.config.settings import Endpoint, LimitsSettings, Settings
from shared.core.errors import AllSourceError
from shared.core.version import VERSION
from shared.harness import chains
from shared.limits.book import LimitBook
from shared.limits.governor import Governor
from shared.limits.limiter import MemoryLimiter, RateLimiter
from shared.limits.redis_limiter import RedisLimiter
from shared.rpc.breaker import OPEN
from shared.rpc.chain import CallChain, Registrar, Stage
from shared.rpc.control import (
    CONTROL_SERVICE,
    FLAG_NAMESPACE,
    ConfigManager,
    ControlServicer,
    flag_from_record,
    metrics_summary,
)
from shared.rpc.transport import server_credentials, server_options
from shared.stages.admission import Admission
from shared.stages.authentication import Authentication
from shared.stages.request_log import RequestLog
from shared.storage.client import StorageClient
from shared.storage.records import StorageRecords
from shared.telemetry import logs, metrics, tracing
from shared.tenancy.audit import AuditLog

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
        self.config: ConfigManager | None = None  # set by the harness
        self.chain: CallChain | None = None

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

    async def apply_settings(self, settings: Settings, changed: set[str]) -> None:  # noqa: B027 - optional hook
        """Push reloaded values into this service's components (`changed` are the dotted keys)."""

    async def flag_overrides(self) -> dict[str, FlagState] | None:
        """The feature-flag overrides kept by storage; None when they cannot be read now."""
        return None

    def scope_verifier(self) -> ScopeVerifier:
        """Checks the scopes other services of the suite present."""
        secret = self.settings.internal.service_secret
        return ScopeVerifier(
            secret.get_secret_value().encode() if secret else b"", max_ttl_s=self.settings.internal.scope_ttl_s
        )

    def stages(self) -> list[Stage]:
        """This service's call chain (shared.harness.chains); by default the internal one."""
        return chains.internal_chain(self.name, self.settings, self.scope_verifier())

    async def background(self, stop: asyncio.Event) -> None:  # noqa: B027 - optional hook
        """Work that runs while the service serves (until stop is set)."""

    def collect_metrics(self) -> Iterable[Any]:
        """Metric families read when Prometheus scrapes (shared.telemetry.metrics); never on a call's path."""
        exported, failed, dropped = tracing.counters()
        label = {"service": self.name}
        yield metrics.counter("allsource_trace_spans_exported", "Spans the collector accepted.", exported, label)
        yield metrics.counter("allsource_trace_spans_failed", "Spans the collector did not accept.", failed, label)
        yield metrics.counter(
            "allsource_trace_spans_dropped", "Spans dropped because the export queue was full.", dropped, label
        )

    async def stop(self) -> None:  # noqa: B027 - optional hook
        """Release resources after the last call has finished."""

    async def set_serving(self, serving: bool) -> None:
        """Set the health status of the whole server and of each of its services."""
        if self.health is None:
            return
        status = SERVING if serving else NOT_SERVING
        for name in ("", *self.service_names):
            await self.health.set(name, status)


def make_limiter(limits: LimitsSettings) -> RateLimiter:
    """The rate limiter limits.backend names."""
    if limits.backend == "redis":
        assert limits.redis_url is not None  # the settings model insists
        return RedisLimiter(
            limits.redis_url.get_secret_value(),
            prefix=limits.redis_prefix,
            timeout_s=limits.redis_timeout_s,
            lease_s=limits.lease_s,
            fail_open=limits.fail_open,
            soft_ratio=limits.soft_limit_ratio,
        )
    return MemoryLimiter(soft_ratio=limits.soft_limit_ratio)


class StorageBackedService(Service):
    """A public service: it reaches storage through a StorageClient and serves only while storage does."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.storage = StorageClient(settings, self.name)
        self.auth_state = AuthState(
            StorageRecords(self.storage),
            resync_s=settings.auth.change_resync_s,
            api_key_max_failures=settings.auth.api_key_max_failures,
            usage_flush_s=settings.auth.key_usage_flush_s,
        )
        self.token_verifier = TokenVerifier(settings.auth, self.auth_state.public_key)
        self.audit = AuditLog(StorageRecords(self.storage))
        # Rate limits, quota overrides and emergency throttles (shared.limits), kept current by the
        # auth change feed's LIMITS_CHANGED entries.
        self.limit_book = LimitBook(StorageRecords(self.storage), resync_s=settings.auth.change_resync_s)
        self.auth_state.on_limits_changed = self.limit_book.changed
        self.governor = Governor(settings.limits, self.limit_book, make_limiter(settings.limits))
        self.governor.service = self.name

    def stages(self) -> list[Stage]:
        return chains.public_chain(self)

    def collect_metrics(self) -> Iterable[Any]:
        yield from super().collect_metrics()
        label = {"service": self.name}
        limiter = self.governor.limiter
        for name, doc, value in (
            ("round_trips", "Calls to Redis made by the rate limiter.", getattr(limiter, "round_trips", 0)),
            ("failures", "Rate-limiter calls to Redis that failed or timed out.", getattr(limiter, "failures", 0)),
            (
                "degraded_calls",
                "Calls limited per replica (or refused) while Redis could not be reached.",
                getattr(limiter, "degraded_calls", 0),
            ),
        ):
            metric = (
                "allsource_limiter_degraded_calls" if name == "degraded_calls" else f"allsource_limiter_redis_{name}"
            )
            yield metrics.counter(metric, doc, value, label)
        yield metrics.gauge(
            "allsource_storage_breaker_open",
            "1 while the circuit breaker to storage is open (calls fail at once).",
            1.0 if self.storage.breaker.state == OPEN else 0.0,
            label,
        )

    async def background(self, stop: asyncio.Event) -> None:
        with contextlib.suppress(AllSourceError):
            await self.auth_state.poll()  # revocations known before the first call, if storage answers
        await asyncio.gather(self.auth_state.run(stop), self.limit_book.run(stop))

    async def dependencies_ok(self) -> tuple[bool, str]:
        ok, why, _ = await self.storage.health()
        return ok, why

    async def stop(self) -> None:
        await self.audit.drain()
        await self.governor.limiter.close()
        await self.storage.close()

    async def apply_settings(self, settings: Settings, changed: set[str]) -> None:
        self.storage.configure(settings)
        self.token_verifier.settings = settings.auth
        self.auth_state.resync_s = settings.auth.change_resync_s
        self.auth_state.api_key_max_failures = settings.auth.api_key_max_failures
        self.auth_state.usage_flush_s = settings.auth.key_usage_flush_s
        self.limit_book.resync_s = settings.auth.change_resync_s
        self.governor.configure(settings.limits)
        if self.chain is not None:
            authentication = self.chain.stage(Authentication)
            if authentication is not None:
                authentication.settings = settings.auth
            admission = self.chain.stage(Admission)
            if admission is not None:
                admission.limits = settings.limits

    async def flag_overrides(self) -> dict[str, FlagState] | None:
        try:
            reply = await self.storage.list_records(
                storage_pb2.ListRecordsRequest(namespace=FLAG_NAMESPACE, limit=1000), timeout=5.0
            )
        except AllSourceError:
            return None
        return {r.key: flag_from_record(r.value) for r in reply.records}


async def reload(service: Service) -> Any:
    """Reload the service's configuration and apply the reloadable changes."""
    assert service.config is not None

    async def apply(settings: Settings, changed: set[str]) -> None:
        service.settings = settings
        if "log.level" in changed:
            logs.set_level(settings.log.level)
        request_log = service.chain.stage(RequestLog) if service.chain is not None else None
        if "log.access_log" in changed and request_log is not None:
            request_log.access_log = logs.AccessLog(service.name) if settings.log.access_log else None
        if any(k.startswith("tracing.") for k in changed):
            tracing.configure(settings.tracing)
        if any(k.startswith("flags.") or k == "flags" for k in changed):
            FLAGS.configure(settings.flags)
        await service.apply_settings(settings, changed)

    return await service.config.reload(apply)


async def refresh_flags(service: Service) -> None:
    """Re-read the flag overrides kept by storage (kept as they were when storage does not answer)."""
    overrides = await service.flag_overrides()
    if overrides is not None:
        FLAGS.set_overrides(overrides)


async def _refresh_flags_periodically(service: Service, stop: asyncio.Event) -> None:
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), service.settings.flags_refresh_s)
        await refresh_flags(service)


async def run(service: Service, *, ready: Callable[[int], Awaitable[None]] | None = None) -> None:
    """Serve until SIGTERM or SIGINT, then drain and stop."""
    settings = service.settings
    server = grpc.aio.server(options=server_options(settings.grpc, internal=service.name == "storage"))
    chain = CallChain()
    registrar = Registrar(server, chain)
    service.chain = chain
    if service.config is None:
        service.config = ConfigManager(service.name, LoadedSettings(settings, {}, "development", ConfigInputs()))
    await service.start()
    service.service_names = service.register(registrar)
    if not settings.auth.enabled:
        log.warning("authentication is turned off (auth.enabled = false): every call is accepted as an administrator")
    service.health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(service.health, registrar)
    control_pb2_grpc.add_ControlServiceServicer_to_server(
        ControlServicer(
            lambda: reload(service),
            lambda: service.config.snapshot(service.endpoint().dial()),  # type: ignore[union-attr]
            lambda: refresh_flags(service),
            lambda methods: metrics_summary(service.name, methods, service.settings.metrics.enabled),
        ),
        registrar,
    )
    # Through the registrar, so that reflection runs the call chain (open or authenticated by setting).
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
        reflection.aio.ReflectionServicer(
            [*service.service_names, CONTROL_SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME],
            pool=_MethodAwarePool(),
        ),
        registrar,
    )
    # The chain is known once the services are: stages read the permissions their RPCs declare.
    pool = descriptor_pool.Default()
    requirements = rbac.requirements(pool.FindServiceByName(name) for name in service.service_names)
    reflection_requirement = rbac.Requirement(
        rbac.P.PERMISSION_AUTHENTICATED, allow_unauthenticated=settings.auth.reflection == "open"
    )
    for reflection_service in (reflection.SERVICE_NAME, "grpc.reflection.v1.ServerReflection"):
        requirements[f"/{reflection_service}/ServerReflectionInfo"] = reflection_requirement
    chain.requirements = requirements
    chain.stages = service.stages()
    registrar.install()
    endpoint = service.endpoint()
    try:
        credentials = server_credentials(settings.tls)
        port = (
            server.add_secure_port(endpoint.bind(), credentials)
            if credentials is not None
            else server.add_insecure_port(endpoint.bind())
        )
    except RuntimeError as exc:
        raise SystemExit(f"{service.name}: cannot listen on {endpoint.bind()}: {exc}") from exc
    await server.start()
    exporter = _serve_metrics(service)
    await refresh_flags(service)  # overrides in force before the service reports SERVING
    ok, why = await service.dependencies_ok()
    await service.set_serving(ok)
    log.info(
        "listening",
        extra={
            "address": f"{endpoint.host}:{port}",
            "services": service.service_names,
            "serving": ok,
            "detail": why,
            "tls": settings.tls.enabled,
            "preset": service.config.loaded.preset,
        },
    )
    if ready is not None:
        await ready(port)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    background: set[asyncio.Task[Any]] = set()

    def on_sighup() -> None:
        task = asyncio.ensure_future(reload(service))
        background.add(task)
        task.add_done_callback(background.discard)

    loop.add_signal_handler(signal.SIGHUP, on_sighup)
    monitor = asyncio.create_task(_watch_dependencies(service, ok, stop))
    flags = asyncio.create_task(_refresh_flags_periodically(service, stop))
    background_work = asyncio.create_task(service.background(stop))
    await stop.wait()

    log.info("shutting down", extra={"grace_s": service.settings.grpc.shutdown_grace_s})
    monitor.cancel()
    flags.cancel()
    await service.set_serving(False)
    service.begin_shutdown()
    for sig in signals:  # a second signal during the grace period stops at once
        loop.add_signal_handler(sig, lambda: asyncio.ensure_future(server.stop(0)))
    await server.stop(service.settings.grpc.shutdown_grace_s)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(background_work, 5)
    await service.stop()
    request_log = chain.stage(RequestLog)
    if request_log is not None and request_log.access_log is not None:
        request_log.access_log.flush()
    if exporter is not None:
        metrics.stop(exporter[0])
        metrics.REGISTRY.unregister(exporter[1])
    tracing.shutdown()
    log.info("stopped")


def _serve_metrics(service: Service) -> tuple[Any, Any] | None:
    """Serve /metrics for this process (metrics.enabled), with the service's scrape-time collectors."""
    settings = service.settings.metrics
    if not settings.enabled:
        return None
    wanted = settings.port(service.name)
    try:
        handle, port = metrics.serve(settings.host, wanted)
    except OSError as exc:
        # The service itself still serves: a missing /metrics shows as a target down in Prometheus
        # (the AllSource*Down alerts), while refusing to start would take the service down with it.
        log.error(
            "cannot serve metrics; set metrics.%s_port to a free port (0 picks one)",
            service.name,
            extra={"address": f"{settings.host}:{wanted}", "detail": str(exc)},
        )
        return None
    collector = metrics.register(service.collect_metrics)
    log.info("metrics", extra={"address": f"{settings.host}:{port}", "path": "/metrics"})
    return handle, collector


async def _watch_dependencies(service: Service, serving: bool, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await asyncio.sleep(1.0)
        ok, why = await service.dependencies_ok()
        if ok != serving:
            log.warning("serving" if ok else "not serving", extra={"detail": why})
            await service.set_serving(ok)
            serving = ok


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """--version, and --preset, --config and --set: the configuration layers chosen on the command line."""
    parser.add_argument("--version", action="version", version=f"%(prog)s {VERSION}")
    parser.add_argument(
        "--preset", metavar="NAME", help="development (default), staging or production; or ALLSOURCE_PRESET"
    )
    parser.add_argument(
        "--config", metavar="PATH", help="configuration file (.toml, .yaml or .json); or ALLSOURCE_CONFIG"
    )
    parser.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        dest="overrides",
        help="set one setting, above every other layer, for example --set log.level=DEBUG (repeatable)",
    )


def parse_args(name: str, argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line arguments common to every service."""
    parser = argparse.ArgumentParser(prog=f"allsource-{name}", description=f"Run the AllSource {name} service.")
    add_config_arguments(parser)
    return parser.parse_args(argv)


def load_or_exit(name: str, args: argparse.Namespace) -> LoadedSettings:
    """Load settings; on a settings error print it and exit with status 2."""
    try:
        return load_settings(args.config, preset=args.preset, overrides=args.overrides)
    except SettingsError as exc:
        print(f"allsource-{name}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


async def _freeze_startup_objects(_port: int) -> None:
    """Leave what starting made (modules, descriptors, settings, clients) out of every later full collection.

    A full collection scans every tracked object while holding the GIL, so its pause grows with what the
    process holds: ~57K objects after start (query; storage ~60K), ~125-145 more per open subscription
    (grpc's call state, tasks). The startup ones live as long as the process, so they are frozen once
    serving. Measured in query with a thousand open subscriptions: a full collection took 160-180 ms
    with nothing frozen, 115 ms frozen, 90 ms once streams stopped making a task per watched flag
    (shared.rpc.streams); the collections Python triggered itself while test_tenant_fairness opened them
    paused 25-60 ms instead of up to 140. Only in a service's own process: in-process servers in tests
    would freeze their test's objects too.
    """
    gc.collect()
    gc.freeze()


LAUNCHER_PID_VAR = "ALLSOURCE_LAUNCHER_PID"
PR_SET_PDEATHSIG = 1


def die_with_launcher() -> None:
    """Started by allsource-suite (ALLSOURCE_LAUNCHER_PID): be sent SIGTERM when the launcher dies, so no
    service is left behind it (set here, not by the launcher between fork and exec: see services.suite).
    A launcher already gone by now (the signal would never come) means stopping at once."""
    launcher = os.environ.get(LAUNCHER_PID_VAR, "")
    if not launcher.isdigit() or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != int(launcher):
        sys.exit(f"{LAUNCHER_PID_VAR}={launcher} is not this process's parent (the launcher has gone); stopping")


def main(name: str, factory: Callable[[Settings], Service], argv: Sequence[str] | None = None) -> None:
    """Entry point of a service's console script."""
    die_with_launcher()
    args = parse_args(name, argv)
    loaded = load_or_exit(name, args)
    settings = loaded.settings
    logs.configure(name, settings.log.level)
    tracing.setup(name, settings.tracing)
    FLAGS.configure(settings.flags)

    async def serve() -> None:
        # Built inside the loop: grpc.aio channels bind to the loop that is running when they are made.
        service = factory(settings)
        service.config = ConfigManager(name, loaded)
        await run(service, ready=_freeze_startup_objects)

    with contextlib.suppress(KeyboardInterrupt):
        if settings.grpc.event_loop == "uvloop":
            import uvloop

            uvloop.run(serve())
        else:
            asyncio.run(serve())
