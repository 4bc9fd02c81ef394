"""`allsource-ingest`: the ingest service process."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import grpc
from allsource.v1 import ingest_pb2, ingest_pb2_grpc

from services.ingest.coalescer import AppendCoalescer
from services.ingest.servicer import IngestServicer
from services.ingest.validation import AppendValidator
from shared.config.settings import Endpoint, Settings
from shared.harness import server

log = logging.getLogger(__name__)


class IngestProcess(server.StorageBackedService):
    """Runs IngestService against the storage service."""

    name = "ingest"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        s = settings.ingest
        self.coalescer = AppendCoalescer(
            self.storage,
            in_flight=s.storage_calls_in_flight,
            max_appends=s.coalesce_max_appends,
            max_bytes=s.coalesce_max_bytes,
            parallel_bytes=s.coalesce_parallel_bytes,
            linger_s=s.coalesce_linger_ms / 1000,
            linger_until=s.coalesce_linger_until,
            max_queued_bytes=s.max_queued_bytes,
            max_queued_bytes_per_tenant=s.max_queued_bytes_per_tenant,
        )
        self.servicer = IngestServicer(
            AppendValidator(settings.limits), self.coalescer, s.batch_append_window, self.governor, self.storage
        )

    def endpoint(self) -> Endpoint:
        return self.settings.ingest

    def register(self, srv: grpc.aio.Server) -> list[str]:
        ingest_pb2_grpc.add_IngestServiceServicer_to_server(self.servicer, srv)
        return [ingest_pb2.DESCRIPTOR.services_by_name["IngestService"].full_name]

    async def apply_settings(self, settings: Settings, changed: set[str]) -> None:
        await super().apply_settings(settings, changed)
        s, c = settings.ingest, self.coalescer
        self.servicer.validator.limits = settings.limits
        self.servicer.batch_window = s.batch_append_window
        c.in_flight_limit, c.max_appends, c.max_bytes = (
            s.storage_calls_in_flight,
            s.coalesce_max_appends,
            s.coalesce_max_bytes,
        )
        c.max_queued_bytes, c.max_queued_bytes_per_tenant = s.max_queued_bytes, s.max_queued_bytes_per_tenant
        c.parallel_bytes, c.linger_s, c.linger_until = (
            s.coalesce_parallel_bytes,
            s.coalesce_linger_ms / 1000,
            s.coalesce_linger_until,
        )

    async def stop(self) -> None:
        c = self.coalescer
        log.info(
            "appends coalesced",
            extra={"appends": c.appends, "storage_calls": c.calls, "per_call": round(c.appends / max(c.calls, 1), 2)},
        )
        await super().stop()


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point."""
    server.main("ingest", IngestProcess, argv)


if __name__ == "__main__":
    main()
