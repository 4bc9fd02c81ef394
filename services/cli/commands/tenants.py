"""`tenants`: create, list, get, update, deactivate, activate, delete, stats (AdminService)."""

from __future__ import annotations

import sys
from typing import Any

import click
from allsource.v1 import admin_pb2, tenant_pb2
from google.protobuf import field_mask_pb2

from services.cli.context import Invocation, pass_invocation
from services.cli.errors import UsageProblem
from services.cli.output import Column, label, when
from services.cli.params import Choice, KeyValue

PRESETS = {
    "free": tenant_pb2.QUOTA_PRESET_FREE,
    "professional": tenant_pb2.QUOTA_PRESET_PROFESSIONAL,
    "unlimited": tenant_pb2.QUOTA_PRESET_UNLIMITED,
    "custom": tenant_pb2.QUOTA_PRESET_CUSTOM,
}
QUOTA_NAMES = [f.name for f in tenant_pb2.TenantQuotas.DESCRIPTOR.fields]

TENANT_COLUMNS: list[Column] = [
    ("tenant", lambda t: t.tenant_id),
    ("name", lambda t: t.display_name),
    ("status", lambda t: label(tenant_pb2.TenantStatus.Name(t.status), "TENANT_STATUS_")),
    ("preset", lambda t: label(tenant_pb2.QuotaPreset.Name(t.quota_preset), "QUOTA_PRESET_")),
    ("created", lambda t: when(t.created_at)),
]
DETAIL_COLUMNS: list[Column] = [
    *TENANT_COLUMNS,
    ("updated", lambda t: when(t.updated_at)),
    ("deactivated", lambda t: when(t.deactivated_at) if t.HasField("deactivated_at") else "-"),
    ("quotas", lambda t: quota_text(t.quotas)),
    ("metadata", lambda t: dict(t.metadata)),
]


def quota_text(quotas: tenant_pb2.TenantQuotas) -> str:
    """Each quota as name=limit, 'unlimited' when unset."""
    return ", ".join(
        f"{name.removeprefix('max_')}={getattr(quotas, name) if quotas.HasField(name) else 'unlimited'}"
        for name in QUOTA_NAMES
    )


def quota_pairs(pairs: tuple[tuple[str, str], ...], allow_unlimited: bool) -> dict[str, int | None]:
    """--quota NAME=N options as quota fields (None: unlimited)."""
    out: dict[str, int | None] = {}
    for key, value in pairs:
        name = key if key.startswith("max_") else f"max_{key}"
        if name not in QUOTA_NAMES:
            raise click.BadParameter(f"unknown quota {key!r} (quotas: {', '.join(QUOTA_NAMES)})", param_hint="--quota")
        if value == "unlimited" and allow_unlimited:
            out[name] = None
        elif value.isdigit():
            out[name] = int(value)
        else:
            raise click.BadParameter(f"{key}={value}: the limit must be a whole number", param_hint="--quota")
    return out


quota_option = click.option(
    "--quota",
    "quotas",
    multiple=True,
    type=KeyValue(),
    help=f"A quota as NAME=LIMIT (repeatable): {', '.join(q.removeprefix('max_') for q in QUOTA_NAMES)}.",
)
metadata_option = click.option("--metadata", multiple=True, type=KeyValue(), help="A label KEY=VALUE (repeatable).")


@click.group("tenants")
def group() -> None:
    """Tenants: create, list, inspect, change, deactivate, delete, statistics (operators)."""


@group.command("create")
@click.argument("tenant_id")
@click.option("--name", default="", help="Display name (the id by default).")
@click.option("--preset", type=Choice(PRESETS), help="Quota preset (free by default).")
@quota_option
@metadata_option
@pass_invocation
def create(
    inv: Invocation,
    tenant_id: str,
    name: str,
    preset: int | None,
    quotas: tuple[tuple[str, str], ...],
    metadata: tuple[tuple[str, str], ...],
) -> None:
    """Create a tenant."""
    limits = {k: v for k, v in quota_pairs(quotas, allow_unlimited=False).items() if v is not None}
    request = admin_pb2.CreateTenantRequest(
        tenant_id=tenant_id,
        display_name=name,
        quota_preset=preset or tenant_pb2.QUOTA_PRESET_UNSPECIFIED,  # type: ignore[arg-type]
        quotas=tenant_pb2.TenantQuotas(**limits),
        metadata=dict(metadata),
    )
    reply = inv.session.call(inv.session.admin.CreateTenant, request, tenant="")
    inv.emit(reply.tenant, DETAIL_COLUMNS)


@group.command("list")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many tenants.")
@pass_invocation
def list_tenants(inv: Invocation, limit: int | None) -> None:
    """List tenants by id."""
    tenants: list[Any] = []
    token = ""
    while limit is None or len(tenants) < limit:
        page = inv.session.call(
            inv.session.admin.ListTenants,
            admin_pb2.ListTenantsRequest(page_size=min(limit or 1000, 1000), page_token=token),
            tenant="",
        )
        tenants.extend(page.tenants)
        token = page.next_page_token
        if not token:
            break
    inv.emit(tenants[:limit], TENANT_COLUMNS, empty="no tenants")


@group.command("get")
@click.argument("tenant_id")
@pass_invocation
def get(inv: Invocation, tenant_id: str) -> None:
    """Show a tenant."""
    reply = inv.session.call(inv.session.admin.GetTenant, admin_pb2.GetTenantRequest(tenant_id=tenant_id), tenant="")
    inv.emit(reply.tenant, DETAIL_COLUMNS)


@group.command("update")
@click.argument("tenant_id")
@click.option("--name", help="New display name.")
@click.option("--preset", type=Choice(PRESETS), help="Reset the quotas to a preset's.")
@click.option(
    "--quota",
    "quotas",
    multiple=True,
    type=KeyValue(),
    help="Change one quota: NAME=LIMIT or NAME=unlimited (repeatable).",
)
@click.option("--metadata", multiple=True, type=KeyValue(), help="Replace the labels with these KEY=VALUE pairs.")
@click.option("--clear-metadata", is_flag=True, help="Remove every label.")
@pass_invocation
def update(
    inv: Invocation,
    tenant_id: str,
    name: str | None,
    preset: int | None,
    quotas: tuple[tuple[str, str], ...],
    metadata: tuple[tuple[str, str], ...],
    clear_metadata: bool,
) -> None:
    """Change a tenant's name, quota preset, quotas or labels (only what is given)."""
    tenant = tenant_pb2.Tenant(tenant_id=tenant_id)
    paths: list[str] = []
    if name is not None:
        tenant.display_name = name
        paths.append("display_name")
    if preset is not None:
        tenant.quota_preset = preset  # type: ignore[assignment]
        paths.append("quota_preset")
    for quota, limit in quota_pairs(quotas, allow_unlimited=True).items():
        if limit is not None:
            setattr(tenant.quotas, quota, limit)
        paths.append(f"quotas.{quota}")
    if metadata or clear_metadata:
        tenant.metadata.update(dict(metadata))
        paths.append("metadata")
    if not paths:
        raise UsageProblem("nothing to change: give --name, --preset, --quota or --metadata")
    request = admin_pb2.UpdateTenantRequest(tenant=tenant, update_mask=field_mask_pb2.FieldMask(paths=paths))
    reply = inv.session.call(inv.session.admin.UpdateTenant, request, tenant="")
    inv.emit(reply.tenant, DETAIL_COLUMNS)


@group.command("deactivate")
@click.argument("tenant_id")
@pass_invocation
def deactivate(inv: Invocation, tenant_id: str) -> None:
    """Deactivate a tenant: its calls are refused and its subscriptions end; its data is kept."""
    request = admin_pb2.DeactivateTenantRequest(tenant_id=tenant_id)
    inv.emit(inv.session.call(inv.session.admin.DeactivateTenant, request, tenant="").tenant, DETAIL_COLUMNS)


@group.command("activate")
@click.argument("tenant_id")
@pass_invocation
def activate(inv: Invocation, tenant_id: str) -> None:
    """Activate a deactivated tenant."""
    request = admin_pb2.ActivateTenantRequest(tenant_id=tenant_id)
    inv.emit(inv.session.call(inv.session.admin.ActivateTenant, request, tenant="").tenant, DETAIL_COLUMNS)


@group.command("delete")
@click.argument("tenant_id")
@click.option("--yes", is_flag=True, help="Do not ask: delete at once.")
@pass_invocation
def delete(inv: Invocation, tenant_id: str, yes: bool) -> None:
    """Delete a tenant and purge all its data, irreversibly (asks for the id again unless --yes)."""
    if not yes:
        if not sys.stdin.isatty():
            raise UsageProblem("deleting a tenant needs --yes when there is no terminal to confirm on")
        typed = click.prompt(f"This purges every event, user and key of {tenant_id}. Type its id to confirm")
        if typed != tenant_id:
            raise UsageProblem("the id typed does not match; nothing was deleted")
    request = admin_pb2.DeleteTenantRequest(tenant_id=tenant_id, confirm_tenant_id=tenant_id)
    reply = inv.session.call(inv.session.admin.DeleteTenant, request, tenant="")
    inv.emit(
        reply,
        [
            ("events deleted", lambda r: r.events_deleted),
            ("API keys deleted", lambda r: r.api_keys_deleted),
            ("storage keys deleted", lambda r: r.storage_keys_deleted),
        ],
        title=f"deleted {tenant_id}",
    )


@group.command("stats")
@click.argument("tenant_id", required=False)
@pass_invocation
def stats(inv: Invocation, tenant_id: str | None) -> None:
    """Statistics and quota use of a tenant (the acting tenant, or the caller's, by default)."""
    reply = inv.session.call(inv.session.admin.GetTenantStats, admin_pb2.GetTenantStatsRequest(), tenant=tenant_id)
    figures = reply.stats
    if inv.output.value != "table":
        inv.emit(figures)
        return
    inv.emit(
        figures,
        [
            ("tenant", lambda s: s.tenant_id),
            ("events", lambda s: s.events),
            ("streams", lambda s: s.streams),
            ("storage bytes", lambda s: s.storage_bytes),
            ("events today", lambda s: s.events_today),
            ("events this hour", lambda s: s.events_this_hour),
            ("queries this hour", lambda s: s.queries_this_hour),
            ("API keys", lambda s: s.api_keys),
            ("users", lambda s: s.users),
            ("measured", lambda s: when(s.measured_at)),
        ],
    )
    inv.emit(
        list(figures.quotas),
        [
            ("quota", lambda q: q.quota),
            ("limit", lambda q: q.limit if q.HasField("limit") else "unlimited"),
            ("used", lambda q: q.used),
            ("use", lambda q: f"{q.utilization_percent:.1f}%" if q.HasField("utilization_percent") else "-"),
        ],
    )
