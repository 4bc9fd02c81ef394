"""`allsource-query`: the query service process."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

import grpc
from allsource.v1 import query_pb2, query_pb2_grpc

from services.query.cache import KINDS
from services.query.feed import CommitFollower
from services.query.servicer import QueryServicer
from shared.config.settings import Endpoint, Settings
from shared.harness import chains, server
from shared.rpc.chain import Stage
from shared.telemetry import metrics
from shared.tenancy.usage import QueryCounter


class QueryProcess(server.StorageBackedService):
    """Runs QueryService against the storage service."""

    name = "query"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.usage = QueryCounter(self.storage)
        self.servicer = QueryServicer(self.storage, settings.query, settings.limits, settings.memory)
        self.follower = CommitFollower(self.storage, self.servicer.cache)
        self.follower.silence_s = settings.query.cache_feed_silence_s

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
        self.servicer.exports.settings = settings.query
        self.servicer.cache.enabled = settings.query.cache_enabled
        self.follower.silence_s = settings.query.cache_feed_silence_s
        self.servicer.memory.settings = settings.memory
        self.servicer.memory.check()  # a new limit applies now, not at the next tick

    def begin_shutdown(self) -> None:
        self.servicer.closing.set()

    async def background(self, stop: asyncio.Event) -> None:
        await asyncio.gather(
            super().background(stop), self.usage.run(stop), self.follower.run(stop), self.servicer.memory.run(stop)
        )

    def collect_metrics(self) -> Iterable[Any]:
        yield from super().collect_metrics()
        cache = self.servicer.cache
        for name, doc, counts in (
            ("allsource_query_cache_hits", "Reads the read cache answered, by kind.", cache.hits),
            ("allsource_query_cache_misses", "Reads the read cache could not answer, by kind.", cache.misses),
            ("allsource_query_cache_evictions", "Read cache entries evicted for room, by kind.", cache.evictions),
            (
                "allsource_query_cache_invalidations",
                "Read cache entries dropped by the commit feed (new heads, deletions), by kind.",
                cache.invalidations,
            ),
        ):
            yield metrics.labelled_counter(name, doc, "kind", {kind: counts[kind] for kind in KINDS})
        yield metrics.gauge("allsource_query_cache_bytes", "Bytes the read cache holds.", cache.size)
        yield metrics.gauge("allsource_query_cache_usable", "1 while the read cache is in use.", int(cache.usable()))
        yield from self.servicer.memory.metric_families()


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point."""
    server.main("query", QueryProcess, argv)


if __name__ == "__main__":
    main()
