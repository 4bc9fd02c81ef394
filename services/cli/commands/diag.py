"""`diag`: health of every service, system information, a metrics summary, index statistics, and a
latency probe.

Health is asked twice: the CLI probes grpc.health.v1 on each public endpoint itself, and the admin
service reports what it sees of every service, storage included (GetSystemInfo, operators). The metrics
summary comes from the admin service too (GetMetricsSummary: each process summarises the counters and
histograms it serves on /metrics). The CLI never dials storage.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any

import click
import grpc
from allsource.v1 import admin_pb2, auth_pb2, ingest_pb2, query_pb2
from grpc_health.v1 import health_pb2

from services.cli.context import Invocation, pass_invocation
from services.cli.errors import UNAVAILABLE, CliError, ServerRefusal
from services.cli.output import Column, OutputFormat, label, note, when
from services.cli.session import PUBLIC_SERVICES, Session

# The service each public endpoint answers health checks for, from the generated descriptors.
HEALTH_NAMES = {
    "ingest": ingest_pb2.DESCRIPTOR.services_by_name["IngestService"].full_name,
    "query": query_pb2.DESCRIPTOR.services_by_name["QueryService"].full_name,
    "admin": admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name,
}


@dataclass
class Probe:
    """One public endpoint's health as the CLI saw it."""

    service: str
    address: str
    status: str
    latency_ms: float
    detail: str = ""


def probe(session: Session, service: str, timeout: float = 3.0) -> Probe:
    """Ask an endpoint's grpc.health.v1 whether it serves."""
    address = session.profile.address(service)
    started = time.perf_counter()
    try:
        reply = session.health(service).Check(
            health_pb2.HealthCheckRequest(service=HEALTH_NAMES[service]), timeout=timeout
        )
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status).lower().replace("_", "-")
        detail = ""
    except grpc.RpcError as err:
        status, detail = "unreachable", f"{err.code().name}: {err.details()}"
    return Probe(service, address, status, (time.perf_counter() - started) * 1000, detail)


def system_info(session: Session) -> tuple[Any, str]:
    """GetSystemInfo, or None and why it was not available."""
    try:
        return session.call(session.admin.GetSystemInfo, admin_pb2.GetSystemInfoRequest(), tenant=""), ""
    except ServerRefusal as refusal:
        return None, f"{refusal.error.code.name} {refusal.error.reason}: {refusal.error.message}"


def metrics_summary(session: Session, max_methods: int = 5) -> tuple[Any, str]:
    """GetMetricsSummary (every service's calls, errors, latency, busiest methods), or None and why not."""
    try:
        request = admin_pb2.GetMetricsSummaryRequest(max_methods=max_methods)
        return session.call(session.admin.GetMetricsSummary, request, tenant=""), ""
    except ServerRefusal as refusal:
        return None, f"{refusal.error.code.name} {refusal.error.reason}: {refusal.error.message}"


def metrics_rows(summary: Any) -> list[dict[str, Any]]:
    """One row per service: its RPC figures, or why they are missing."""
    return [
        {
            "service": m.service,
            "calls": m.calls,
            "errors": m.errors,
            "error_percent": round(100 * m.errors / m.calls, 2) if m.calls else 0.0,
            "in_flight": m.in_flight,
            "p50_ms": round(m.p50_ms, 3),
            "p99_ms": round(m.p99_ms, 3),
            "cpu_seconds": round(m.cpu_seconds, 2),
            "max_rss_mib": round(m.max_rss_bytes / (1 << 20), 1),
            "busiest": [
                {
                    "method": x.method,
                    "calls": x.calls,
                    "errors": x.errors,
                    "p50_ms": round(x.p50_ms, 3),
                    "p99_ms": round(x.p99_ms, 3),
                }
                for x in m.methods
            ],
            "error": m.error or None,
        }
        for m in summary.services
    ]


METRICS_COLUMNS: list[Column] = [
    ("service", lambda r: r["service"]),
    ("calls", lambda r: r["calls"] if not r["error"] else "-"),
    ("errors", lambda r: f"{r['errors']} ({r['error_percent']}%)" if not r["error"] else "-"),
    ("in flight", lambda r: r["in_flight"] if not r["error"] else "-"),
    ("p50 ms", lambda r: r["p50_ms"] if not r["error"] else "-"),
    ("p99 ms", lambda r: r["p99_ms"] if not r["error"] else "-"),
    ("CPU s", lambda r: r["cpu_seconds"] if not r["error"] else "-"),
    ("peak RSS MiB", lambda r: r["max_rss_mib"] if not r["error"] else "-"),
    (
        "busiest",
        lambda r: r["error"] or ", ".join(f"{b['method'].rsplit('/', 1)[-1]} {b['calls']}" for b in r["busiest"][:3]),
    ),
]


def health_rows(probes: list[Probe], info: Any) -> list[dict[str, Any]]:
    """One row per service: the CLI's probe and the admin service's view."""
    seen = {s.name: s for s in info.services} if info is not None else {}
    rows: list[dict[str, Any]] = []
    for name in (*PUBLIC_SERVICES, "storage"):
        mine = next((p for p in probes if p.service == name), None)
        theirs = seen.get(name)
        rows.append(
            {
                "service": name,
                "address": mine.address if mine else (theirs.address if theirs else ""),
                "probe": mine.status if mine else "not probed (internal)",
                "probe_ms": round(mine.latency_ms, 2) if mine else None,
                "admin_view": label(admin_pb2.HealthStatus.Name(theirs.status), "HEALTH_STATUS_") if theirs else "-",
                "detail": (mine.detail if mine else "") or (theirs.detail if theirs else ""),
            }
        )
    return rows


HEALTH_COLUMNS: list[Column] = [
    ("service", lambda r: r["service"]),
    ("address", lambda r: r["address"]),
    ("probe", lambda r: r["probe"]),
    ("probe ms", lambda r: r["probe_ms"] if r["probe_ms"] is not None else "-"),
    ("admin's view", lambda r: r["admin_view"]),
    ("detail", lambda r: r["detail"]),
]


def unhealthy(rows: list[dict[str, Any]]) -> list[str]:
    """Services that do not serve, by the probe or by the admin service's view."""
    bad = []
    for row in rows:
        probed_bad = row["probe"] not in ("serving", "not probed (internal)")
        viewed_bad = row["admin_view"] not in ("serving", "-")
        if probed_bad or viewed_bad:
            bad.append(row["service"])
    return bad


def _info_data(info: Any) -> dict[str, Any]:
    storage = info.storage
    return {
        "version": info.version,
        "started_at": when(info.started_at),
        "uptime_s": info.uptime.seconds,
        "storage_uptime_s": info.storage_uptime.seconds if info.HasField("storage_uptime") else None,
        "storage": {
            "backend": storage.backend,
            "events": storage.events,
            "streams": storage.streams,
            "tenants": storage.tenants,
            "disk_bytes": storage.disk_bytes,
            "live_data_bytes": storage.live_data_bytes,
            "appends_committed": storage.appends_committed,
            "write_batches": storage.write_batches,
            "subscriptions": storage.subscriptions,
            "data_dir": storage.data_dir,
        }
        if info.HasField("storage")
        else None,
    }


@click.group("diag", invoke_without_command=True)
@click.pass_context
def group(ctx: click.Context) -> None:
    """Diagnostics: health, system information, metrics, latency (no subcommand: health, system and metrics)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(overview)


@group.command("overview", hidden=True)
@pass_invocation
def overview(inv: Invocation) -> None:
    """Health of every service, system information and the metrics summary."""
    session = inv.session
    probes = [probe(session, name) for name in PUBLIC_SERVICES]
    info, why = system_info(session)
    rows = health_rows(probes, info)
    summary, why_no_metrics = metrics_summary(session)
    metrics = metrics_rows(summary) if summary is not None else None
    if inv.output is not OutputFormat.TABLE:
        inv.emit(
            {
                "health": rows,
                "system": _info_data(info) if info is not None else None,
                "system_unavailable": why or None,
                "metrics": metrics,
                "metrics_unavailable": why_no_metrics or None,
            }
        )
    else:
        inv.emit(rows, HEALTH_COLUMNS, title="health")
        if info is not None:
            inv.emit(_info_data(info), title="system")
        else:
            note(f"system information unavailable: {why}")
        if metrics is not None:
            inv.emit(metrics, METRICS_COLUMNS, title="metrics (since each process started)")
        else:
            note(f"metrics unavailable: {why_no_metrics}")
    _fail_if_unhealthy(rows)


@group.command("health")
@pass_invocation
def health(inv: Invocation) -> None:
    """Health of every service: probed from here, and as the admin service sees it."""
    session = inv.session
    probes = [probe(session, name) for name in PUBLIC_SERVICES]
    info, why = system_info(session)
    rows = health_rows(probes, info)
    inv.emit(rows, HEALTH_COLUMNS, title="health")
    if info is None:
        note(f"the admin service's view is unavailable: {why}")
    _fail_if_unhealthy(rows)


@group.command("info")
@pass_invocation
def info(inv: Invocation) -> None:
    """Version, uptime and storage statistics (GetSystemInfo)."""
    reply = inv.session.call(inv.session.admin.GetSystemInfo, admin_pb2.GetSystemInfoRequest(), tenant="")
    inv.emit(_info_data(reply) if inv.output is OutputFormat.TABLE else reply, title="system")


@group.command("metrics")
@click.option(
    "--methods", type=click.IntRange(1, 50), default=10, show_default=True, help="Busiest methods per service."
)
@pass_invocation
def metrics(inv: Invocation, methods: int) -> None:
    """Each service's calls, errors, in-flight calls, latency percentiles, CPU, memory and busiest methods
    since it started (GetMetricsSummary: the figures each process serves on /metrics)."""
    reply = inv.session.call(
        inv.session.admin.GetMetricsSummary, admin_pb2.GetMetricsSummaryRequest(max_methods=methods), tenant=""
    )
    rows = metrics_rows(reply)
    if inv.output is not OutputFormat.TABLE:
        inv.emit(rows)
        return
    inv.emit(rows, METRICS_COLUMNS, title="metrics (since each process started)")
    busiest = [{"service": r["service"], **b} for r in rows for b in r["busiest"]]
    inv.emit(
        busiest,
        [
            ("service", lambda b: b["service"]),
            ("method", lambda b: b["method"].rsplit("/", 1)[-1]),
            ("calls", lambda b: b["calls"]),
            ("errors", lambda b: b["errors"]),
            ("p50 ms", lambda b: b["p50_ms"]),
            ("p99 ms", lambda b: b["p99_ms"]),
        ],
        title="busiest methods",
    )


def index_rows(reply: Any) -> list[dict[str, Any]]:
    """One row per index of one tenant (GetIndexStats)."""
    return [
        {
            "tenant": reply.tenant_id,
            "index": i.index,
            "entries": i.entries,
            "bytes": i.bytes,
            "partial": i.partial,
            "backfill": {"target": i.backfill_target, "next": i.backfill_next} if i.backfill_target else None,
        }
        for i in reply.indexes
    ]


INDEX_COLUMNS: list[Column] = [
    ("tenant", lambda r: r["tenant"]),
    ("index", lambda r: r["index"]),
    ("entries", lambda r: f"{r['entries']:,}{'+' if r['partial'] else ''}"),
    ("bytes", lambda r: f"{r['bytes']:,}{'+' if r['partial'] else ''}"),
    (
        "backfill",
        lambda r: f"at {r['backfill']['next']:,} of {r['backfill']['target']:,}" if r["backfill"] else "complete",
    ),
]


@group.command("indexes")
@click.option(
    "--tenant",
    "tenant_ids",
    multiple=True,
    help="This tenant's indexes (repeatable; operators; default: the acting tenant, or the caller's).",
)
@pass_invocation
def indexes(inv: Invocation, tenant_ids: tuple[str, ...]) -> None:
    """Entries and bytes of each index, per tenant, and the category/type index's backfill (GetIndexStats).
    A figure ending in + is a lower bound: counting stopped at storage.index_stats_max_keys."""
    rows: list[dict[str, Any]] = []
    for tenant_id in tenant_ids or (None,):
        reply = inv.session.call(inv.session.admin.GetIndexStats, admin_pb2.GetIndexStatsRequest(), tenant=tenant_id)
        rows.extend(index_rows(reply))
    inv.emit(rows, INDEX_COLUMNS, title="indexes", empty="no indexes")


@group.command("latency")
@click.option("--count", type=click.IntRange(1, 10_000), default=50, show_default=True, help="Calls per probe.")
@pass_invocation
def latency(inv: Invocation, count: int) -> None:
    """Round-trip times: a health check on each public service, and WhoAmI through authentication."""
    session = inv.session
    results = []
    for name in PUBLIC_SERVICES:
        check = functools.partial(
            session.health(name).Check, health_pb2.HealthCheckRequest(service=HEALTH_NAMES[name]), timeout=5
        )
        results.append(_measure(f"{name} health", count, check))
    metadata = session.metadata()
    who = session.auth.WhoAmI
    try:
        results.append(
            _measure("admin WhoAmI", count, lambda: who(auth_pb2.WhoAmIRequest(), metadata=metadata, timeout=5))
        )
    except grpc.RpcError as err:
        note(f"WhoAmI not measured: {err.code().name} {err.details()}")
    inv.emit(
        results,
        [
            ("probe", lambda r: r["probe"]),
            ("calls", lambda r: r["calls"]),
            ("p50 ms", lambda r: f"{r['p50_ms']:.2f}"),
            ("p99 ms", lambda r: f"{r['p99_ms']:.2f}"),
            ("max ms", lambda r: f"{r['max_ms']:.2f}"),
        ],
        title="latency",
    )


def _measure(name: str, count: int, call: Any) -> dict[str, Any]:
    call()  # the first call pays for the connection; it is not a round trip worth reporting
    times = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {
        "probe": name,
        "calls": count,
        "p50_ms": times[len(times) // 2],
        "p99_ms": times[min(len(times) - 1, int(len(times) * 0.99))],
        "max_ms": times[-1],
    }


def _fail_if_unhealthy(rows: list[dict[str, Any]]) -> None:
    bad = unhealthy(rows)
    if bad:
        raise CliError(f"not serving: {', '.join(bad)}", UNAVAILABLE)
