"""`allsource-admin`: the admin service process."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from allsource.v1 import admin_pb2_grpc

from services.admin.servicer import ADMIN_SERVICE, AdminServicer, LocalControl
from shared import server
from shared.settings import Endpoint, Settings


class AdminProcess(server.StorageBackedService):
    """Runs AdminService."""

    name = "admin"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.servicer = AdminServicer(
            settings,
            self.storage,
            LocalControl(
                reload=lambda: server.reload(self),
                snapshot=lambda: self.config.snapshot(self.endpoint().dial()),  # type: ignore[union-attr]
                refresh_flags=lambda: server.refresh_flags(self),
            ),
        )

    def endpoint(self) -> Endpoint:
        return self.settings.admin

    def register(self, srv: grpc.aio.Server) -> list[str]:
        admin_pb2_grpc.add_AdminServiceServicer_to_server(self.servicer, srv)
        return [ADMIN_SERVICE]

    async def stop(self) -> None:
        await self.servicer.close()
        await super().stop()


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point."""
    server.main("admin", AdminProcess, argv)


if __name__ == "__main__":
    main()
