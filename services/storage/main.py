"""`allsource-storage`: the storage service process."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import grpc
from allsource.storage.v1 import storage_pb2, storage_pb2_grpc
from prometheus_client.core import GaugeMetricFamily

from services.storage.backend import StorageBackend, StorageOpenError
from services.storage.backup.jobs import BackupJobs
from services.storage.factory import open_backend
from services.storage.rocksdb_backend import RocksBackend
from services.storage.servicer import StorageServicer
from shared.config.flags import FlagState
from shared.config.settings import Endpoint, Settings
from shared.core.errors import AllSourceError
from shared.harness import server
from shared.limits.memory import MemoryMonitor
from shared.rpc.control import FLAG_NAMESPACE, flag_from_record
from shared.telemetry import metrics


def _nothing() -> None:
    """What a backend without caches of its own sheds under memory pressure."""


class StorageProcess(server.Service):
    """Runs StorageService over the configured backend."""

    name = "storage"

    def __init__(self, settings: Settings, backend: StorageBackend | None = None) -> None:
        super().__init__(settings)
        self.backend = backend or open_backend(settings.storage)
        self.servicer = StorageServicer(self.backend, self.scope_verifier(), settings.storage.max_subscriptions)
        self.servicer.soft_ratio = settings.limits.soft_limit_ratio
        if isinstance(self.backend, RocksBackend):
            self.servicer.backups = BackupJobs(self.backend, settings.backup)
            self.servicer.backups.installed = self.servicer.tenant_replaced
        self._configure_feed(settings)
        if isinstance(self.backend, RocksBackend):
            shed, relieve = self.backend.shed_caches, self.backend.restore_caches
        else:  # a backend without caches of its own: pressure only refuses new subscriptions
            shed = relieve = _nothing
        self.servicer.memory = self.memory = MemoryMonitor(settings.memory, shed, relieve, service="storage")

    def _configure_feed(self, settings: Settings) -> None:
        feed = self.servicer.feed
        feed.ack_timeout_s = settings.storage.commit_feed_ack_timeout_s
        feed.heartbeat_s = settings.storage.commit_feed_heartbeat_s
        feed.max_followers = settings.storage.max_commit_followers

    def endpoint(self) -> Endpoint:
        return self.settings.storage

    async def start(self) -> None:
        try:
            await self.backend.start()
        except StorageOpenError as exc:
            raise SystemExit(f"allsource-storage: {exc}") from None
        if self.servicer.backups is not None:
            await self.servicer.backups.clean()

    def register(self, srv: grpc.aio.Server) -> list[str]:
        storage_pb2_grpc.add_StorageServiceServicer_to_server(self.servicer, srv)
        return [storage_pb2.DESCRIPTOR.services_by_name["StorageService"].full_name]

    def begin_shutdown(self) -> None:
        self.servicer.closing.set()

    async def apply_settings(self, settings: Settings, changed: set[str]) -> None:
        self.backend.apply_settings(settings.storage)
        self.servicer.max_subscriptions = settings.storage.max_subscriptions
        self.servicer.soft_ratio = settings.limits.soft_limit_ratio
        if self.servicer.backups is not None:
            self.servicer.backups.settings = settings.backup
        self._configure_feed(settings)
        self.memory.settings = settings.memory
        self.memory.check()  # a new limit applies now, not at the next tick

    async def background(self, stop: asyncio.Event) -> None:
        await self.memory.run(stop)

    async def flag_overrides(self) -> dict[str, FlagState] | None:
        try:
            records, _ = await self.backend.list_records("", FLAG_NAMESPACE, "", 1000)
        except AllSourceError:
            return None
        return {r.key: flag_from_record(r.value) for r in records}

    async def stop(self) -> None:
        await self.backend.close()

    def collect_metrics(self) -> Iterable[Any]:
        yield from super().collect_metrics()
        label = {"service": self.name}
        yield metrics.gauge("allsource_subscriptions_active", "Live subscriptions.", self.servicer.subscriptions, label)
        yield from self.memory.metric_families()
        yield metrics.gauge(
            "allsource_subscription_lag_events",
            "Positions the furthest-behind live subscription has yet to examine.",
            self.servicer.subscription_lag(),
            label,
        )
        yield metrics.gauge(
            "allsource_commit_followers", "Query replicas following the commit feed.", len(self.servicer.feed.followers)
        )
        yield metrics.counter(
            "allsource_commit_followers_cut_off",
            "Commit feed followers cut off for not acknowledging in time.",
            self.servicer.feed.cut_off,
        )
        sweep = getattr(self.backend, "request_sweep", None)
        if sweep is not None:
            yield metrics.counter(
                "allsource_storage_request_results_removed",
                "Stored append results removed by the sweep once past storage.request_id_ttl_s.",
                sweep.removed,
            )
        figures = self.backend.figures(self.settings.metrics.tenant_series)
        if figures is None:
            return
        for name, doc, value in (
            ("allsource_rocksdb_live_sst_bytes", "Bytes of live SST files.", figures.live_sst_bytes),
            ("allsource_rocksdb_memtable_bytes", "Bytes of all memtables.", figures.memtable_bytes),
            (
                "allsource_rocksdb_pending_compaction_bytes",
                "Bytes compaction estimates it has to rewrite.",
                figures.pending_compaction_bytes,
            ),
            ("allsource_rocksdb_block_cache_usage_bytes", "Bytes in the block cache.", figures.block_cache_bytes),
            (
                "allsource_rocksdb_block_cache_capacity_bytes",
                "The block cache's capacity: storage.block_cache_bytes, shrunk under memory pressure.",
                figures.block_cache_capacity_bytes,
            ),
            ("allsource_storage_volume_free_bytes", "Free bytes on the data volume.", figures.volume_free_bytes),
            ("allsource_storage_volume_size_bytes", "Size of the data volume.", figures.volume_size_bytes),
        ):
            yield metrics.gauge(name, doc, value)
        events = GaugeMetricFamily(
            "allsource_tenant_events", "Events of the tenants with the most events.", labels=["tenant"]
        )
        streams = GaugeMetricFamily("allsource_tenant_streams", "Streams of those tenants.", labels=["tenant"])
        stored = GaugeMetricFamily(
            "allsource_tenant_storage_bytes",
            "Bytes those tenants store (as their quota counts them).",
            labels=["tenant"],
        )
        used = GaugeMetricFamily(
            "allsource_tenant_quota_used_ratio",
            "Share of a quota those tenants have used (1 = at the limit).",
            labels=["tenant", "quota"],
        )
        for tenant in figures.tenants:
            events.add_metric([tenant.tenant_id], tenant.events)
            streams.add_metric([tenant.tenant_id], tenant.streams)
            stored.add_metric([tenant.tenant_id], tenant.stored_bytes)
            for quota, ratio in tenant.quota_used.items():
                used.add_metric([tenant.tenant_id, quota], ratio)
        yield from (events, streams, stored, used)


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point: the service, or `allsource-storage restore ...` (services.storage.offline)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["restore"]:
        from services.storage import offline

        offline.main(args[1:])
    server.main("storage", StorageProcess, args)


if __name__ == "__main__":
    main()
