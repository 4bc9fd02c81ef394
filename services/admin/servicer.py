"""AdminService: GetSystemInfo."""

from __future__ import annotations

import asyncio
import time

import grpc
from allsource.storage.v1 import storage_pb2
from allsource.v1 import admin_pb2, admin_pb2_grpc, ingest_pb2, query_pb2
from google.protobuf import duration_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shared.errors import AllSourceError
from shared.settings import Settings
from shared.storage_client import StorageClient
from shared.timestamps import to_timestamp
from shared.transport import channel_options
from shared.version import VERSION

_SERVING = health_pb2.HealthCheckResponse.SERVING
ADMIN_SERVICE = admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name


def _duration(seconds: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromNanoseconds(int(seconds * 1e9))
    return d


class AdminServicer(admin_pb2_grpc.AdminServiceServicer):
    """The operator API."""

    def __init__(self, settings: Settings, storage: StorageClient) -> None:
        self.settings = settings
        self.storage = storage
        self.started_ns = time.time_ns()
        self.started = time.monotonic()
        g = settings.grpc
        self._peers = {
            "ingest": (settings.ingest.dial(), ingest_pb2.DESCRIPTOR.services_by_name["IngestService"].full_name),
            "query": (settings.query.dial(), query_pb2.DESCRIPTOR.services_by_name["QueryService"].full_name),
            "admin": (settings.admin.dial(), ADMIN_SERVICE),
        }
        self._channels = {
            name: grpc.aio.insecure_channel(addr, options=channel_options(g)) for name, (addr, _) in self._peers.items()
        }

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
            stats = await self.storage.call("GetStats", storage_pb2.GetStatsRequest(), timeout=2.0)
        except AllSourceError:
            return response  # storage is reported unreachable above; the rest of the answer still helps
        response.storage.CopyFrom(stats.stats)
        response.storage_uptime.CopyFrom(_duration((time.time_ns() - stats.started_at.ToNanoseconds()) / 1e9))
        return response

    async def close(self) -> None:
        """Close the health-check channels."""
        for channel in self._channels.values():
            await channel.close()
