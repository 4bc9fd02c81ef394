"""`audit list`: the audit log of operators' acts (AdminService.ListAuditEvents)."""

from __future__ import annotations

from typing import Any

import click
from allsource.v1 import admin_pb2
from google.protobuf import timestamp_pb2

from services.cli.context import Invocation, pass_invocation
from services.cli.output import Column, when
from services.cli.params import Moment

AUDIT_COLUMNS: list[Column] = [
    ("time", lambda a: when(a.time)),
    ("actor", lambda a: f"{a.actor_name} ({a.actor_tenant_id})"),
    ("tenant", lambda a: a.tenant_id),
    ("action", lambda a: a.action.rsplit(".", 1)[-1]),
    ("outcome", lambda a: a.outcome + (f" {a.reason}" if a.reason else "")),
    ("request id", lambda a: a.request_id),
]


@click.group("audit")
def group() -> None:
    """The audit log: operators' acts on tenants and suite-wide changes."""


@group.command("list")
@click.option("--tenant-id", "tenant_id", default="", help="Only acts on this tenant (operators).")
@click.option("--since", type=Moment(), help="Only acts from this time on: ISO 8601, or a duration ago (1h, 2d).")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True, help="At most this many.")
@pass_invocation
def list_audit(inv: Invocation, tenant_id: str, since: timestamp_pb2.Timestamp | None, limit: int) -> None:
    """List audit events, oldest first."""
    events: list[Any] = []
    token = ""
    while len(events) < limit:
        page = inv.session.call(
            inv.session.admin.ListAuditEvents,
            admin_pb2.ListAuditEventsRequest(
                tenant_id=tenant_id, start_time=since, page_size=min(limit, 1000), page_token=token
            ),
        )
        events.extend(page.events)
        token = page.next_page_token
        if not token:
            break
    inv.emit(events[:limit], AUDIT_COLUMNS, empty="no audit events")
