"""`allsource-admin`: the admin service process (AdminService and AuthService)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import grpc
from allsource.storage.v1 import records_pb2
from allsource.v1 import admin_pb2_grpc, auth_pb2, auth_pb2_grpc, backup_pb2, backup_pb2_grpc

from services.admin.auth import AuthServicer
from services.admin.backups import BackupServicer
from services.admin.servicer import ADMIN_SERVICE, AdminServicer, LocalControl
from shared.config.settings import Endpoint, Settings
from shared.core.errors import AllSourceError
from shared.harness import server
from shared.storage.records import StorageRecords

log = logging.getLogger(__name__)
AUTH_SERVICE = auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name
BACKUP_SERVICE = backup_pb2.DESCRIPTOR.services_by_name["BackupService"].full_name
STARTUP_WAIT_S = 60.0


class AdminProcess(server.StorageBackedService):
    """Runs AdminService and AuthService."""

    name = "admin"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        secret = settings.internal.service_secret
        self.auth = AuthServicer(
            settings.auth,
            StorageRecords(self.storage),
            self.auth_state,
            self.token_verifier,
            secret.get_secret_value().encode() if secret else b"",
            settings.limits,
        )
        self.servicer = AdminServicer(
            settings,
            self.storage,
            LocalControl(
                reload=lambda: server.reload(self),
                snapshot=lambda: self.config.snapshot(self.endpoint().dial()),  # type: ignore[union-attr]
                refresh_flags=lambda: server.refresh_flags(self),
            ),
            self.auth,
        )
        self.backups = BackupServicer(settings, self.storage, StorageRecords(self.storage))
        self.backups.tenant_changed = lambda tenant_id: self.auth.feed.publish(
            records_pb2.AUTH_CHANGE_KIND_TENANT_CHANGED, tenant_id
        )

    def endpoint(self) -> Endpoint:
        return self.settings.admin

    async def start(self) -> None:
        # The signing key and the bootstrap administrator live in storage: wait for it (the suite starts
        # storage first; under an orchestrator it may come up later).
        deadline = asyncio.get_running_loop().time() + STARTUP_WAIT_S
        while True:
            try:
                await self.auth.keyring.load()
                await self.servicer.complete_default_tenant()
                if self.settings.auth.enabled:
                    assert self.config is not None
                    await self.auth.bootstrap(self.settings.storage.data_dir)
                self.backups.scheduler.start()
                return
            except AllSourceError as exc:
                if asyncio.get_running_loop().time() > deadline:
                    raise SystemExit(f"allsource-admin: storage is not answering: {exc.message}") from None
                log.warning("waiting for storage", extra={"detail": exc.message})
                await asyncio.sleep(0.5)

    def register(self, srv: grpc.aio.Server) -> list[str]:
        admin_pb2_grpc.add_AdminServiceServicer_to_server(self.servicer, srv)
        auth_pb2_grpc.add_AuthServiceServicer_to_server(self.auth, srv)
        backup_pb2_grpc.add_BackupServiceServicer_to_server(self.backups, srv)
        return [ADMIN_SERVICE, AUTH_SERVICE, BACKUP_SERVICE]

    async def apply_settings(self, settings: Settings, changed: set[str]) -> None:
        await super().apply_settings(settings, changed)
        self.auth.configure(settings.auth)
        self.auth.limits = settings.limits
        self.backups.settings = settings

    async def stop(self) -> None:
        await self.backups.scheduler.stop()
        await self.servicer.close()
        await super().stop()


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point."""
    server.main("admin", AdminProcess, argv)


if __name__ == "__main__":
    main()
