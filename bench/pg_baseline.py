"""The PostgreSQL baseline of bench/reads.py: the same 100-event read through pyeventsourcing
(`eventsourcing` with its PostgreSQL persistence, psycopg 3) on the machine's running PostgreSQL.

A fresh database (allsource_bench_<pid>) is created on the server named by ALLSOURCE_BENCH_PG (a libpq
connection string; default "host=127.0.0.1 port=5432 user=postgres dbname=postgres", DECISIONS.md:
"a fresh database on the machine's running PostgreSQL"), one aggregate gets 100 events of the same
payload as ours, and each read selects its 100 stored events (`app.recorder.select_events`: bytes, not
decoded, as our bench reads ReadStream's reply) and, reported beside it, the same read decoded into
domain events (`app.events.get`); one call at a time in this process, so no network hop but the
database's own. The database is dropped at the end.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

DEFAULT_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


def _dsn() -> dict[str, str]:
    text = os.environ.get("ALLSOURCE_BENCH_PG", DEFAULT_DSN)
    return dict(part.split("=", 1) for part in text.split())


@contextmanager
def fresh_database() -> Iterator[dict[str, str]]:
    """Create a database of this run's own and yield its connection parameters; drop it at the end.
    Raises OSError-like psycopg errors when PostgreSQL cannot be reached."""
    import psycopg

    params = _dsn()
    name = f"allsource_bench_{os.getpid()}"
    admin = {**params, "connect_timeout": "3"}
    with psycopg.connect(**admin, autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {**params, "dbname": name}
    finally:
        with psycopg.connect(**admin, autocommit=True) as conn:  # type: ignore[arg-type]
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Baseline:
    """An eventsourcing Application on the fresh database, with one aggregate of `events` events."""

    def __init__(self, params: dict[str, str], payload: dict[str, Any], events: int = 100) -> None:
        from eventsourcing.application import Application
        from eventsourcing.domain import Aggregate, event

        class Order(Aggregate):  # type: ignore[misc]
            @event("Opened")
            def __init__(self) -> None:
                self.count = 0

            @event("E")
            def happen(self, data: dict[str, Any]) -> None:
                self.count += 1

        self.app = Application(
            env={
                "PERSISTENCE_MODULE": "eventsourcing.postgres",
                "POSTGRES_DBNAME": params["dbname"],
                "POSTGRES_HOST": params.get("host", "127.0.0.1"),
                "POSTGRES_PORT": params.get("port", "5432"),
                "POSTGRES_USER": params.get("user", "postgres"),
                "POSTGRES_PASSWORD": params.get("password", ""),
            }
        )
        order = Order()
        for _ in range(events - 1):  # the creation event is the first of the 100
            order.happen(payload)
        self.app.save(order)
        self.id: UUID = order.id
        assert len(self.read()) == events

    def read(self) -> list[Any]:
        """The aggregate's stored events (topic, state bytes), as the database returns them."""
        return list(self.app.recorder.select_events(self.id))

    def read_decoded(self) -> list[Any]:
        """The aggregate's events, read and decoded into domain events."""
        return list(self.app.events.get(self.id))

    def measure(self, calls: int) -> dict[str, float]:
        """Sequential p50/p99 (ms) of the 100-event read, stored and decoded."""
        from run import percentile  # bench/run.py, on the path when bench scripts run

        figures = {}
        for name, read in (("", self.read), ("decoded_", self.read_decoded)):
            for _ in range(20):
                read()
            latencies = []
            for _ in range(calls):
                started = time.perf_counter()
                read()
                latencies.append((time.perf_counter() - started) * 1000)
            figures[f"{name}p50"], figures[f"{name}p99"] = percentile(latencies, 50), percentile(latencies, 99)
        return figures

    def close(self) -> None:
        self.app.close()
