"""`quotas`: a tenant's quota usage, temporary overrides and emergency throttles (AdminService).

`usage` and `overrides` act on the tenant named (or the acting tenant, or the caller's); `override`,
`clear-override` and `throttle` are operators' and name their tenant in the request. A throttle is a
ceiling on calls per second on every replica; calls past it are refused RESOURCE_EXHAUSTED / RATE_LIMITED
(limit `emergency_throttle`); operators' own calls are exempt. `throttle --clear` removes it (the RPC's
calls_per_second 0).
"""

from __future__ import annotations

from typing import Any

import click
from allsource.v1 import admin_pb2
from google.protobuf import duration_pb2

from services.cli.commands.tenants import QUOTA_NAMES
from services.cli.context import Invocation, pass_invocation
from services.cli.output import Column, OutputFormat, label, when
from services.cli.params import Duration

USAGE_COLUMNS: list[Column] = [
    ("quota", lambda q: q.quota.removeprefix("max_")),
    ("used", lambda q: q.used),
    ("limit", lambda q: q.limit if q.HasField("limit") else "unlimited"),
    ("resets", lambda q: when(q.resets_at) if q.HasField("resets_at") else "-"),
    ("state", lambda q: label(admin_pb2.QuotaState.Name(q.state), "QUOTA_STATE_")),
    ("overridden", lambda q: "yes" if q.overridden else "no"),
]
OVERRIDE_COLUMNS: list[Column] = [
    ("tenant", lambda o: o.tenant_id),
    ("quota", lambda o: o.quota),
    ("value", lambda o: o.value),
    ("expires", lambda o: when(o.expires_at)),
    ("reason", lambda o: o.reason),
    ("set by", lambda o: o.set_by),
    ("set at", lambda o: when(o.set_at)),
]
THROTTLE_COLUMNS: list[Column] = [
    ("tenant", lambda t: t.tenant_id or "(whole suite)"),
    ("calls/s", lambda t: f"{t.calls_per_second:g}"),
    ("expires", lambda t: when(t.expires_at) if t.HasField("expires_at") else "until cleared"),
    ("reason", lambda t: t.reason),
    ("set by", lambda t: t.set_by),
    ("set at", lambda t: when(t.set_at)),
]


class QuotaName(click.ParamType):
    """A quota: a TenantQuotas field name, with or without its `max_` prefix."""

    name = "quota"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = str(value).strip()
        name = text if text.startswith("max_") else f"max_{text}"
        if name not in QUOTA_NAMES:
            self.fail(f"unknown quota {text!r} (quotas: {', '.join(QUOTA_NAMES)})", param, ctx)
        return name


class Period(Duration):
    """A duration that must be more than zero."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        result = super().convert(value, param, ctx)
        if result.ToNanoseconds() <= 0:
            self.fail(f"{value!r} is not a duration more than zero, like 10m, 2h or 1d", param, ctx)
        return result


@click.group("quotas")
def group() -> None:
    """Quotas: usage of every limit, temporary overrides, emergency throttles (operators)."""


@group.command("usage")
@click.argument("tenant_id", required=False)
@pass_invocation
def usage(inv: Invocation, tenant_id: str | None) -> None:
    """Every quota of a tenant (the acting tenant, or the caller's, by default): used, limit, reset, state."""
    reply = inv.session.call(inv.session.admin.GetQuotaUsage, admin_pb2.GetQuotaUsageRequest(), tenant=tenant_id)
    if inv.output is not OutputFormat.TABLE:
        inv.emit(reply)
        return
    inv.emit(
        list(reply.quotas),
        USAGE_COLUMNS,
        title=f"{reply.tenant_id}: soft limit at {reply.soft_limit_ratio:.0%}",
        empty="no quotas",
    )
    if reply.throttles:
        inv.emit(list(reply.throttles), THROTTLE_COLUMNS, title="emergency throttles")


@group.command("overrides")
@click.option("--tenant", "tenant_id", help="This tenant's overrides (the acting tenant, or the caller's, by default).")
@pass_invocation
def list_overrides(inv: Invocation, tenant_id: str | None) -> None:
    """List the quota overrides in force, by quota."""
    overrides: list[Any] = []
    token = ""
    while True:
        page = inv.session.call(
            inv.session.admin.ListQuotaOverrides,
            admin_pb2.ListQuotaOverridesRequest(page_size=1000, page_token=token),
            tenant=tenant_id,
        )
        overrides.extend(page.overrides)
        token = page.next_page_token
        if not token:
            break
    # One tenant's overrides: its id as the title rather than in every row (narrow terminals fold less).
    title = f"overrides of {overrides[0].tenant_id}" if overrides else ""
    inv.emit(overrides, OVERRIDE_COLUMNS[1:], title=title, empty="no overrides")


@group.command("override")
@click.argument("tenant_id")
@click.argument("quota", type=QuotaName())
@click.argument("value", type=click.IntRange(min=0))
@click.option("--for", "period", type=Period(), required=True, help="How long it lasts: 10m, 2h, 1d (at most 90d).")
@click.option("--reason", required=True, help="Why (kept in the record and the audit log).")
@pass_invocation
def override(
    inv: Invocation, tenant_id: str, quota: str, value: int, period: duration_pb2.Duration, reason: str
) -> None:
    """Set one quota of a tenant to VALUE for a while (QUOTA: events_per_day or max_events_per_day ...)."""
    if not reason.strip():
        raise click.BadParameter("say why", param_hint="--reason")
    request = admin_pb2.SetQuotaOverrideRequest(
        tenant_id=tenant_id, quota=quota, value=value, duration=period, reason=reason
    )
    reply = inv.session.call(inv.session.admin.SetQuotaOverride, request, tenant="")
    inv.emit(reply.override, OVERRIDE_COLUMNS)


@group.command("clear-override")
@click.argument("tenant_id")
@click.argument("quota", type=QuotaName())
@pass_invocation
def clear_override(inv: Invocation, tenant_id: str, quota: str) -> None:
    """Remove a tenant's override of a quota: its plan's limit applies again."""
    request = admin_pb2.SetQuotaOverrideRequest(tenant_id=tenant_id, quota=quota, clear=True)
    inv.session.call(inv.session.admin.SetQuotaOverride, request, tenant="")
    inv.emit({"tenant_id": tenant_id, "quota": quota, "cleared": True})


@group.command("throttle")
@click.option("--tenant", "tenant_id", help="Throttle this tenant.")
@click.option("--suite", is_flag=True, help="Throttle every tenant (operators' calls are exempt).")
@click.option(
    "--calls-per-second",
    "calls_per_second",
    type=click.FloatRange(min=0, min_open=True),
    help="The ceiling on calls per second, on each replica.",
)
@click.option("--for", "period", type=Period(), help="How long it lasts: 10m, 2h, 1d (until cleared by default).")
@click.option("--reason", help="Why (required when setting).")
@click.option("--clear", is_flag=True, help="Remove the throttle instead.")
@pass_invocation
def throttle(
    inv: Invocation,
    tenant_id: str | None,
    suite: bool,
    calls_per_second: float | None,
    period: duration_pb2.Duration | None,
    reason: str | None,
    clear: bool,
) -> None:
    """Put an emergency ceiling on calls per second, on a tenant or the whole suite, or --clear it."""
    if bool(tenant_id) == suite:
        raise click.UsageError("give either --tenant TENANT or --suite")
    if clear:
        if calls_per_second is not None or period is not None or reason is not None:
            raise click.UsageError("--clear takes no --calls-per-second, --for or --reason")
        request = admin_pb2.SetEmergencyThrottleRequest(tenant_id=tenant_id or "", calls_per_second=0)
    else:
        if calls_per_second is None:
            raise click.UsageError("give --calls-per-second N (or --clear)")
        if not (reason or "").strip():
            raise click.UsageError("give --reason: why the throttle is set")
        request = admin_pb2.SetEmergencyThrottleRequest(
            tenant_id=tenant_id or "", calls_per_second=calls_per_second, reason=reason, duration=period
        )
    reply = inv.session.call(inv.session.admin.SetEmergencyThrottle, request, tenant="")
    if clear:
        inv.emit({"tenant_id": tenant_id or "", "suite": suite, "cleared": True})
    else:
        inv.emit(reply.throttle, THROTTLE_COLUMNS)
