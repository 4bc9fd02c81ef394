"""`diag`: health of every service, system information, and a latency probe.

Health is asked twice: the CLI probes grpc.health.v1 on each public endpoint itself, and the admin
service reports what it sees of every service, storage included (GetSystemInfo, operators). The CLI
never dials storage.
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


def metrics_summary(session: Session) -> dict[str, Any] | None:
    """Extension point for the suite's metrics (request rates, error rates, latencies): None until the
    services export metrics; `diag` then shows what this returns beside the health and system info."""
    return None


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
    """Diagnostics: health of every service and system information (no subcommand: both)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(overview)


@group.command("overview", hidden=True)
@pass_invocation
def overview(inv: Invocation) -> None:
    """Health of every service, system information and, once there are metrics, their summary."""
    session = inv.session
    probes = [probe(session, name) for name in PUBLIC_SERVICES]
    info, why = system_info(session)
    rows = health_rows(probes, info)
    metrics = metrics_summary(session)
    if inv.output is not OutputFormat.TABLE:
        inv.emit(
            {
                "health": rows,
                "system": _info_data(info) if info is not None else None,
                "system_unavailable": why or None,
                **({"metrics": metrics} if metrics is not None else {}),
            }
        )
    else:
        inv.emit(rows, HEALTH_COLUMNS, title="health")
        if info is not None:
            inv.emit(_info_data(info), title="system")
        else:
            note(f"system information unavailable: {why}")
        if metrics is not None:
            inv.emit(metrics, title="metrics")
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
