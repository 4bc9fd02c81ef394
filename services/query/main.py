"""`allsource-query`: the query service process."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import grpc
from allsource.v1 import query_pb2, query_pb2_grpc

from services.query.servicer import QueryServicer
from shared.config.settings import Endpoint, Settings
from shared.harness import chains, server
from shared.rpc.chain import Stage
from shared.tenancy.usage import QueryCounter


class QueryProcess(server.StorageBackedService):
    """Runs QueryService against the storage service."""

    name = "query"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.usage = QueryCounter(self.storage)
        self.servicer = QueryServicer(self.storage, settings.query, settings.limits)

    def endpoint(self) -> Endpoint:
        return self.settings.query

    def stages(self) -> list[Stage]:
        return chains.public_chain(self, count_queries=(self.usage, self.service_names))

    def register(self, srv: grpc.aio.Server) -> list[str]:
        query_pb2_grpc.add_QueryServiceServicer_to_server(self.servicer, srv)
        return [query_pb2.DESCRIPTOR.services_by_name["QueryService"].full_name]

    async def apply_settings(self, settings: Settings, changed: set[str]) -> None:
        await super().apply_settings(settings, changed)
        self.servicer.settings = settings.query
        self.servicer.limits = settings.limits
        self.servicer.subscriptions.settings = settings.query
        self.servicer.consume_slots.settings = settings.query

    def begin_shutdown(self) -> None:
        self.servicer.closing.set()

    async def background(self, stop: asyncio.Event) -> None:
        await asyncio.gather(super().background(stop), self.usage.run(stop))


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point."""
    server.main("query", QueryProcess, argv)


if __name__ == "__main__":
    main()
