"""`config`: effective configuration, reload, feature flags (AdminService, operators)."""

from __future__ import annotations

import click
from allsource.v1 import admin_pb2, config_pb2

from services.cli.context import Invocation, pass_invocation
from services.cli.errors import FAILED, CliError
from services.cli.output import Column, OutputFormat, label, note, when
from services.cli.params import Choice

FLAG_COLUMNS: list[Column] = [
    ("flag", lambda f: f.name),
    ("enabled", lambda f: "yes" if f.enabled else "no"),
    ("percentage", lambda f: f"{f.percentage:g}"),
    ("bucket by", lambda f: label(config_pb2.BucketBy.Name(f.bucket_by), "BUCKET_BY_")),
    ("source", lambda f: f.source),
    ("updated", lambda f: when(f.updated_at) if f.HasField("updated_at") else "-"),
    ("by", lambda f: f.updated_by),
]
BUCKETS = {"tenant": config_pb2.BUCKET_BY_TENANT, "stream": config_pb2.BUCKET_BY_STREAM}


@click.group("config")
def group() -> None:
    """The suite's configuration and feature flags (operators)."""


@group.command("get")
@click.option("--service", "services", multiple=True, help="Only this service (repeatable): storage, ingest, ...")
@click.option("--key", "prefix", default="", help="Only keys starting with this (log., limits.max_event_bytes).")
@pass_invocation
def get(inv: Invocation, services: tuple[str, ...], prefix: str) -> None:
    """The effective configuration of every service, with each value's source (secrets redacted)."""
    reply = inv.session.call(inv.session.admin.GetConfig, admin_pb2.GetConfigRequest(), tenant="")
    chosen = [s for s in reply.services if not services or s.service in services]
    for service in chosen:
        kept = [e for e in service.entries if e.key.startswith(prefix)]
        del service.entries[:]
        service.entries.extend(kept)
    if inv.output is not OutputFormat.TABLE:
        inv.emit(chosen)
        return
    rows = [(s, e) for s in chosen for e in s.entries]
    inv.emit(
        rows,
        [
            ("service", lambda r: r[0].service),
            ("key", lambda r: r[1].key),
            ("value", lambda r: r[1].value),
            ("source", lambda r: r[1].source),
            ("reloadable", lambda r: "yes" if r[1].reloadable else "no"),
            ("pending restart", lambda r: r[1].pending_restart_value),
        ],
        empty="no matching settings",
    )
    for service in chosen:
        if service.error:
            note(f"{service.service}: {service.error}")


@group.command("reload")
@pass_invocation
def reload(inv: Invocation) -> None:
    """Reload every service's configuration and report what each applied."""
    reply = inv.session.call(inv.session.admin.ReloadConfig, admin_pb2.ReloadConfigRequest(), tenant="")
    inv.emit(
        list(reply.results),
        [
            ("service", lambda r: r.service),
            ("status", lambda r: label(config_pb2.ReloadStatus.Name(r.status), "RELOAD_STATUS_")),
            ("applied", lambda r: list(r.applied_keys)),
            ("needs restart", lambda r: list(r.restart_required_keys)),
            ("error", lambda r: r.error),
        ],
    )
    failed = [r.service for r in reply.results if r.status == config_pb2.RELOAD_STATUS_FAILED]
    if failed:
        raise CliError(f"the reload failed on {', '.join(failed)}; their previous configuration stays", FAILED)


@group.command("flags")
@pass_invocation
def flags(inv: Invocation) -> None:
    """List the feature flags and their values."""
    reply = inv.session.call(inv.session.admin.ListFeatureFlags, admin_pb2.ListFeatureFlagsRequest(), tenant="")
    inv.emit(list(reply.flags), FLAG_COLUMNS, empty="no flags")


@group.command("set-flag")
@click.argument("name")
@click.option("--on/--off", "enabled", default=None, help="Turn the feature on (for --percentage) or off.")
@click.option("--percentage", type=click.FloatRange(0, 100), default=100.0, show_default=True)
@click.option("--bucket-by", type=Choice(BUCKETS), help="What a percentage hashes: tenant or stream.")
@click.option("--clear", is_flag=True, help="Remove the override: back to the configured value.")
@pass_invocation
def set_flag(
    inv: Invocation, name: str, enabled: bool | None, percentage: float, bucket_by: int | None, clear: bool
) -> None:
    """Set or clear a feature flag override for the whole suite."""
    if enabled is None and not clear:
        raise click.UsageError("give --on, --off or --clear")
    request = admin_pb2.SetFeatureFlagRequest(
        name=name,
        enabled=bool(enabled),
        percentage=percentage,
        bucket_by=bucket_by or config_pb2.BUCKET_BY_UNSPECIFIED,  # type: ignore[arg-type]
        clear=clear,
    )
    reply = inv.session.call(inv.session.admin.SetFeatureFlag, request, tenant="")
    inv.emit(reply.flag, FLAG_COLUMNS)
    if reply.unreached_services:
        note(f"not told at once (they pick it up shortly): {', '.join(reply.unreached_services)}")
