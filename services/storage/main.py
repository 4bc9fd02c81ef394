"""`allsource-storage`: the storage service process."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from allsource.storage.v1 import storage_pb2, storage_pb2_grpc

from services.storage.backend import StorageBackend, StorageOpenError
from services.storage.factory import open_backend
from services.storage.servicer import StorageServicer
from shared.config.flags import FlagState
from shared.config.settings import Endpoint, Settings
from shared.core.errors import AllSourceError
from shared.harness import server
from shared.rpc.control import FLAG_NAMESPACE, flag_from_record


class StorageProcess(server.Service):
    """Runs StorageService over the configured backend."""

    name = "storage"

    def __init__(self, settings: Settings, backend: StorageBackend | None = None) -> None:
        super().__init__(settings)
        self.backend = backend or open_backend(settings.storage)
        self.servicer = StorageServicer(self.backend, self.scope_verifier(), settings.storage.max_subscriptions)
        self.servicer.soft_ratio = settings.limits.soft_limit_ratio

    def endpoint(self) -> Endpoint:
        return self.settings.storage

    async def start(self) -> None:
        try:
            await self.backend.start()
        except StorageOpenError as exc:
            raise SystemExit(f"allsource-storage: {exc}") from None

    def register(self, srv: grpc.aio.Server) -> list[str]:
        storage_pb2_grpc.add_StorageServiceServicer_to_server(self.servicer, srv)
        return [storage_pb2.DESCRIPTOR.services_by_name["StorageService"].full_name]

    def begin_shutdown(self) -> None:
        self.servicer.closing.set()

    async def apply_settings(self, settings: Settings, changed: set[str]) -> None:
        self.backend.apply_settings(settings.storage)
        self.servicer.max_subscriptions = settings.storage.max_subscriptions
        self.servicer.soft_ratio = settings.limits.soft_limit_ratio

    async def flag_overrides(self) -> dict[str, FlagState] | None:
        try:
            records, _ = await self.backend.list_records("", FLAG_NAMESPACE, "", 1000)
        except AllSourceError:
            return None
        return {r.key: flag_from_record(r.value) for r in records}

    async def stop(self) -> None:
        await self.backend.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point."""
    server.main("storage", StorageProcess, argv)


if __name__ == "__main__":
    main()
