"""AdminService: system information, configuration reload and inspection, feature flags (tenants in
services.admin.tenants, quotas in services.admin.quotas)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from allsource.control.v1 import control_pb2, control_pb2_grpc
from allsource.storage.v1 import storage_pb2
from allsource.v1 import admin_pb2, admin_pb2_grpc, config_pb2, ingest_pb2, metrics_pb2, query_pb2
from google.protobuf import duration_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.admin.quotas import QuotaAdmin
from services.admin.tenants import TenantAdmin
from shared.auth.scopes import SCOPE_KEY
from shared.config.flag_registry import DEFINITIONS
from shared.config.flags import FLAGS
from shared.config.settings import Settings
from shared.core.errors import AllSourceError, InvalidArgument
from shared.core.reasons import Reason
from shared.core.timestamps import now_ns, to_timestamp
from shared.core.version import VERSION
from shared.core.wire import recast
from shared.rpc.control import FLAG_NAMESPACE, flag_to_proto, flags_response, metrics_summary
from shared.rpc.transport import open_channel
from shared.storage.client import StorageClient
from shared.telemetry import tracing

if TYPE_CHECKING:
    from services.admin.auth import AuthServicer

log = logging.getLogger(__name__)
T = TypeVar("T")
CONTROL_TIMEOUT_S = 10.0
# GetMetricsSummary lists this many of each service's busiest methods by default, and at most MAX.
DEFAULT_METRICS_METHODS = 10
MAX_METRICS_METHODS = 50
_SERVING = health_pb2.HealthCheckResponse.SERVING


@dataclass(frozen=True)
class LocalControl:
    """The admin process's own control operations (it does not call itself over the network)."""

    reload: Callable[[], Awaitable[config_pb2.ReloadResult]]
    snapshot: Callable[[], config_pb2.ServiceConfig]
    refresh_flags: Callable[[], Awaitable[None]]


def caller_of(context: grpc.aio.ServicerContext) -> str:
    """Who is calling, for the record (the authenticated identity once identity exists; the peer now)."""
    return context.peer() or "unknown"


ADMIN_SERVICE = admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name


def _duration(seconds: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromNanoseconds(int(seconds * 1e9))
    return d


class AdminServicer(TenantAdmin, QuotaAdmin, admin_pb2_grpc.AdminServiceServicer):
    """The operator API."""

    def __init__(self, settings: Settings, storage: StorageClient, local: LocalControl, auth: AuthServicer) -> None:
        self.settings = settings
        self.storage = storage
        self.local = local
        self.auth = auth
        self.started_ns = time.time_ns()
        self.started = time.monotonic()
        g = settings.grpc
        self._peers = {
            "ingest": (settings.ingest.dial(), ingest_pb2.DESCRIPTOR.services_by_name["IngestService"].full_name),
            "query": (settings.query.dial(), query_pb2.DESCRIPTOR.services_by_name["QueryService"].full_name),
            "admin": (settings.admin.dial(), ADMIN_SERVICE),
        }
        # Calls to the other processes' ControlService and health (rare) get client spans from
        # opentelemetry-instrumentation-grpc's interceptors, which also carry the trace context.
        interceptors = tracing.client_interceptors()
        self._channels = {
            name: open_channel(addr, g, settings.tls, interceptors=interceptors)
            for name, (addr, _) in self._peers.items()
        }
        # ControlService of storage: over a channel of its own, with the same interceptors.
        self._storage_control = open_channel(self.storage.address, g, settings.tls, interceptors=interceptors)

    async def _check(self, name: str) -> admin_pb2.ServiceHealth:
        address, service = self._peers[name]
        started = time.perf_counter()
        entry = admin_pb2.ServiceHealth(name=name, address=address)
        try:
            reply = await health_pb2_grpc.HealthStub(self._channels[name]).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=1.0
            )
        except grpc.aio.AioRpcError as err:
            entry.status = admin_pb2.HEALTH_STATUS_UNREACHABLE
            entry.detail = f"{err.code().name}: {err.details()}"
        else:
            entry.status = (
                admin_pb2.HEALTH_STATUS_SERVING if reply.status == _SERVING else admin_pb2.HEALTH_STATUS_NOT_SERVING
            )
            if reply.status != _SERVING:
                entry.detail = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        entry.latency.CopyFrom(_duration(time.perf_counter() - started))
        return entry

    async def _check_storage(self) -> admin_pb2.ServiceHealth:
        ok, why, took = await self.storage.health()
        status = (
            admin_pb2.HEALTH_STATUS_SERVING
            if ok
            else (admin_pb2.HEALTH_STATUS_UNREACHABLE if "unreachable" in why else admin_pb2.HEALTH_STATUS_NOT_SERVING)
        )
        return admin_pb2.ServiceHealth(
            name="storage", address=self.storage.address, status=status, detail=why, latency=_duration(took)
        )

    async def GetSystemInfo(
        self, request: admin_pb2.GetSystemInfoRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.GetSystemInfoResponse:
        checks = await asyncio.gather(
            self._check("ingest"), self._check("query"), self._check("admin"), self._check_storage()
        )
        response = admin_pb2.GetSystemInfoResponse(
            version=VERSION,
            started_at=to_timestamp(self.started_ns),
            uptime=_duration(time.monotonic() - self.started),
            services=checks,
        )
        try:
            stats = await self.storage.get_stats(storage_pb2.GetStatsRequest(), timeout=2.0)
        except AllSourceError:
            return response  # storage is reported unreachable above; the rest of the answer still helps
        response.storage.CopyFrom(recast(stats.stats, admin_pb2.StorageStats))
        response.storage_uptime.CopyFrom(_duration((time.time_ns() - stats.started_at.ToNanoseconds()) / 1e9))
        return response

    # -- configuration ------------------------------------------------------------------------------

    def _control_metadata(self) -> tuple[tuple[str, str], ...]:
        """Control calls are the admin service's own (a system scope), whoever asked for them."""
        return ((SCOPE_KEY, self.storage.system_scope()),)

    def _control(self, name: str) -> tuple[str, control_pb2_grpc.ControlServiceStub]:
        if name == "storage":
            return self.storage.address, control_pb2_grpc.ControlServiceStub(self._storage_control)
        return self._peers[name][0], control_pb2_grpc.ControlServiceStub(self._channels[name])

    async def _fan_out(
        self, remote: Callable[[Any], Awaitable[T]], local: Callable[[], Awaitable[T]]
    ) -> dict[str, T | str]:
        """Run a control call on every service (admin itself in-process); unreachable ones map to why."""

        async def one(name: str) -> T | str:
            if name == "admin":
                return await local()
            _, stub = self._control(name)
            try:
                return await remote(stub)
            except grpc.aio.AioRpcError as err:
                return f"{err.code().name}: {err.details()}"

        names = ("storage", "ingest", "query", "admin")
        results = await asyncio.gather(*(one(n) for n in names))
        return dict(zip(names, results, strict=True))

    async def ReloadConfig(
        self, request: admin_pb2.ReloadConfigRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ReloadConfigResponse:
        async def remote(stub: Any) -> config_pb2.ReloadResult:
            reply = await stub.ReloadConfig(
                control_pb2.ReloadConfigRequest(), timeout=CONTROL_TIMEOUT_S, metadata=self._control_metadata()
            )
            return reply.result

        results = await self._fan_out(remote, self.local.reload)
        response = admin_pb2.ReloadConfigResponse()
        for name, result in results.items():
            if isinstance(result, str):
                response.results.add(service=name, status=config_pb2.RELOAD_STATUS_UNREACHABLE, error=result)
            else:
                response.results.add().CopyFrom(result)
        log.info(
            "configuration reload requested",
            extra={"results": {r.service: config_pb2.ReloadStatus.Name(r.status) for r in response.results}},
        )
        return response

    async def GetConfig(
        self, request: admin_pb2.GetConfigRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.GetConfigResponse:
        async def remote(stub: Any) -> config_pb2.ServiceConfig:
            reply = await stub.GetConfig(
                control_pb2.GetConfigRequest(), timeout=CONTROL_TIMEOUT_S, metadata=self._control_metadata()
            )
            return reply.config

        async def local() -> config_pb2.ServiceConfig:
            return self.local.snapshot()

        results = await self._fan_out(remote, local)
        response = admin_pb2.GetConfigResponse()
        for name, result in results.items():
            if isinstance(result, str):
                response.services.add(
                    service=name, address=self._control(name)[0] if name != "admin" else "", error=result
                )
            else:
                response.services.add().CopyFrom(result)
        return response

    async def GetMetricsSummary(
        self, request: admin_pb2.GetMetricsSummaryRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.GetMetricsSummaryResponse:
        if not 0 <= request.max_methods <= MAX_METRICS_METHODS:
            problem = f"must be between 0 and {MAX_METRICS_METHODS}"
            raise InvalidArgument(f"max_methods {problem}", violations=[("max_methods", problem)])
        methods = request.max_methods or DEFAULT_METRICS_METHODS

        async def remote(stub: Any) -> metrics_pb2.ServiceMetrics:
            reply = await stub.GetMetrics(
                control_pb2.GetMetricsRequest(max_methods=methods),
                timeout=CONTROL_TIMEOUT_S,
                metadata=self._control_metadata(),
            )
            return reply.metrics

        async def local() -> metrics_pb2.ServiceMetrics:
            return metrics_summary("admin", methods, self.settings.metrics.enabled)

        response = admin_pb2.GetMetricsSummaryResponse()
        for name, result in (await self._fan_out(remote, local)).items():
            entry = response.services.add()
            if isinstance(result, str):
                entry.service, entry.error = name, result
            else:
                entry.CopyFrom(result)
            entry.address = self._control(name)[0] if name != "admin" else ""
        return response

    async def ListFeatureFlags(
        self, request: admin_pb2.ListFeatureFlagsRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ListFeatureFlagsResponse:
        await self.local.refresh_flags()
        return admin_pb2.ListFeatureFlagsResponse(flags=flags_response())

    async def SetFeatureFlag(
        self, request: admin_pb2.SetFeatureFlagRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.SetFeatureFlagResponse:
        definition = DEFINITIONS.get(request.name)
        if definition is None:
            raise InvalidArgument(
                f"unknown feature flag {request.name!r}",
                reason=Reason.UNKNOWN_FEATURE_FLAG,
                violations=[("name", f"must be one of {', '.join(sorted(DEFINITIONS))}")],
            )
        who = caller_of(context)
        if request.clear:
            await self.storage.delete_record(
                storage_pb2.DeleteRecordRequest(namespace=FLAG_NAMESPACE, key=request.name)
            )
        else:
            if not 0 <= request.percentage <= 100:
                raise InvalidArgument(
                    "percentage must be between 0 and 100", violations=[("percentage", "must be between 0 and 100")]
                )
            if request.bucket_by not in config_pb2.BucketBy.values():
                raise InvalidArgument(
                    "bucket_by is not a known way to bucket",
                    violations=[("bucket_by", "BUCKET_BY_TENANT or BUCKET_BY_STREAM (or unset: the flag's own)")],
                )
            stored = config_pb2.FeatureFlag(
                name=request.name,
                enabled=request.enabled,
                percentage=request.percentage,
                bucket_by=request.bucket_by or flag_to_proto(FLAGS.states_by_name()[request.name]).bucket_by,
                updated_by=who,
            )
            stored.updated_at.FromNanoseconds(now_ns())
            # Flags are suite-wide records (the caller is an operator).
            await self.storage.put_record(
                storage_pb2.PutRecordRequest(
                    record=storage_pb2.Record(
                        namespace=FLAG_NAMESPACE, key=request.name, value=stored.SerializeToString()
                    )
                )
            )

        async def remote(stub: Any) -> bool:
            await stub.RefreshFeatureFlags(
                control_pb2.RefreshFeatureFlagsRequest(), timeout=CONTROL_TIMEOUT_S, metadata=self._control_metadata()
            )
            return True

        async def local() -> bool:
            await self.local.refresh_flags()
            return True

        results = await self._fan_out(remote, local)
        flag = next(f for f in flags_response() if f.name == request.name)
        log.info(
            "feature flag set",
            extra={
                "flag": request.name,
                "by": who,
                "cleared": request.clear,
                "enabled": flag.enabled,
                "percentage": flag.percentage,
                "bucket_by": config_pb2.BucketBy.Name(flag.bucket_by),
                "source": flag.source,
            },
        )
        return admin_pb2.SetFeatureFlagResponse(
            flag=flag, unreached_services=[name for name, r in results.items() if isinstance(r, str)]
        )

    async def close(self) -> None:
        """Close the health-check channels."""
        for channel in (*self._channels.values(), self._storage_control):
            await channel.close()
