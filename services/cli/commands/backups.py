"""`backups`: make, list, check, restore and delete backups, and manage backup schedules (BackupService).

`create` and `restore` show a progress bar on a terminal (from the streaming RPCs' progress messages)
and print the result. An operator's `create` with no --tenant backs up everything; a tenant's
administrator backs up their own tenant. `delete` asks for confirmation unless --yes.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

import click
from allsource.v1 import backup_pb2
from google.protobuf import duration_pb2, timestamp_pb2

from services.cli.context import Invocation, pass_invocation
from services.cli.errors import UsageProblem
from services.cli.output import Column, label, progress, when
from services.cli.params import Duration

BACKUP_COLUMNS: list[Column] = [
    ("backup", lambda b: b.backup_id),
    ("kind", lambda b: label(backup_pb2.BackupKind.Name(b.kind), "BACKUP_KIND_")),
    ("parent", lambda b: b.parent_backup_id or "-"),
    ("created", lambda b: when(b.created_at)),
    ("tenants", lambda b: ",".join(t.tenant_id for t in b.tenants) + (" +suite" if b.suite_records else "")),
    ("events", lambda b: b.events),
    ("stored", lambda b: _size(b.stored_bytes)),
    ("schedule", lambda b: b.schedule or "-"),
]
RESTORE_COLUMNS: list[Column] = [
    ("tenant", lambda t: t.tenant_id),
    ("events", lambda t: t.events),
    ("streams", lambda t: t.streams),
    ("last position", lambda t: t.last_position),
]
SCHEDULE_COLUMNS: list[Column] = [
    ("schedule", lambda s: s.name),
    ("when", lambda s: s.cron or f"every {s.interval.seconds}s"),
    ("destination", lambda s: s.destination or "default"),
    ("full every", lambda s: s.full_every or 1),
    ("retention", lambda s: _retention(s.retention)),
    ("enabled", lambda s: "yes" if s.enabled else "no"),
    ("runs", lambda s: s.runs),
    ("last run", lambda s: _last_run(s.last_run)),
    ("next run", lambda s: when(s.next_run_at) if s.HasField("next_run_at") else "-"),
]


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _retention(r: backup_pb2.Retention) -> str:
    parts = [f"{name} {getattr(r, f'keep_{name}')}" for name in ("last", "daily", "weekly", "monthly")]
    kept = [p for p in parts if not p.endswith(" 0")]
    return ", ".join(kept) or "keep all"


def _last_run(run: backup_pb2.ScheduleRun) -> str:
    if not run.HasField("started_at"):
        return "-"
    return f"{when(run.started_at)} {'ok ' + run.backup_id if run.ok else 'failed: ' + run.error}"


class Moment(click.ParamType):
    """An ISO 8601 time (UTC when it names no zone)."""

    name = "time"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, timestamp_pb2.Timestamp):
            return value
        try:
            at = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 time like 2026-11-28T10:00:00Z", param, ctx)
        if at.tzinfo is None:
            at = at.replace(tzinfo=datetime.now().astimezone().tzinfo).astimezone()
        stamp = timestamp_pb2.Timestamp()
        stamp.FromNanoseconds(int(at.timestamp() * 1_000_000_000))
        return stamp


class TenantPosition(click.ParamType):
    """TENANT=POSITION."""

    name = "tenant=position"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        tenant, sep, position = str(value).partition("=")
        if not sep or not tenant or not position.isdigit():
            self.fail(f"{value!r} is not TENANT=POSITION", param, ctx)
        return tenant, int(position)


def _backups(inv: Invocation) -> Any:
    return inv.session.backups


@click.group("backups")
def group() -> None:
    """Backups: create (full or incremental), list, info, verify, restore, delete; schedules."""


@group.command("create")
@click.option("--tenant", "tenant_ids", multiple=True, help="Only this tenant (repeatable; default: everything).")
@click.option("--incremental", is_flag=True, help="Only what changed since the newest backup of the same tenants.")
@click.option("--parent", "parent_backup_id", default="", help="The parent of an incremental backup.")
@click.option("--destination", default="", help="local or s3 (default: the server's backup.default_destination).")
@click.option("--label", default="", help="A free label (at most 200 characters).")
@pass_invocation
def create(
    inv: Invocation, tenant_ids: tuple[str, ...], incremental: bool, parent_backup_id: str, destination: str, label: str
) -> None:
    """Make a backup, with a progress bar on a terminal."""
    request = backup_pb2.CreateBackupRequest(
        destination=destination,
        incremental=incremental or bool(parent_backup_id),
        parent_backup_id=parent_backup_id,
        tenant_ids=tenant_ids,
        label=label,
    )
    done = None
    with progress(100, "backing up") as bar:
        for message in inv.session.stream(_backups(inv).CreateBackup, request, tenant=""):
            bar.update(bar.task_ids[0], completed=message.percent)
            if message.done:
                done = message.backup
    if done is None:
        raise click.ClickException("the backup ended without completing")
    inv.emit(done, BACKUP_COLUMNS)


@group.command("list")
@click.option("--destination", default="", help="local or s3 (default: the server's).")
@pass_invocation
def list_backups(inv: Invocation, destination: str) -> None:
    """The complete backups of a destination, oldest first."""
    found: list[Any] = []
    token = ""
    while True:
        page = inv.session.call(
            _backups(inv).ListBackups,
            backup_pb2.ListBackupsRequest(destination=destination, page_size=500, page_token=token),
            tenant="",
        )
        found.extend(page.backups)
        token = page.next_page_token
        if not token:
            break
    inv.emit(found, BACKUP_COLUMNS, empty="no backups")


@group.command("info")
@click.argument("backup_id")
@click.option("--destination", default="", help="local or s3 (default: the server's).")
@pass_invocation
def info(inv: Invocation, backup_id: str, destination: str) -> None:
    """One backup: its kind, parent, tenants and position ranges, size."""
    request = backup_pb2.GetBackupRequest(destination=destination, backup_id=backup_id)
    inv.emit(inv.session.call(_backups(inv).GetBackup, request, tenant="").backup, BACKUP_COLUMNS)


@group.command("verify")
@click.argument("backup_id")
@click.option("--destination", default="", help="local or s3 (default: the server's).")
@pass_invocation
def verify(inv: Invocation, backup_id: str, destination: str) -> None:
    """Re-read every chunk of a backup's chain and check every checksum (exit 1 when damaged)."""
    request = backup_pb2.VerifyBackupRequest(destination=destination, backup_id=backup_id)
    reply = inv.session.call(_backups(inv).VerifyBackup, request, tenant="", timeout=3600)
    inv.emit(reply)
    if not reply.ok:
        raise click.exceptions.Exit(1)


@group.command("restore")
@click.argument("backup_id")
@click.option("--tenant", "tenant_ids", multiple=True, help="Only this tenant (repeatable; default: all it holds).")
@click.option("--stream-prefix", default="", help="Only streams whose id starts with this.")
@click.option("--to-time", type=Moment(), help="Point in time: events recorded at or before (ISO 8601).")
@click.option("--to-position", "to_positions", type=TenantPosition(), multiple=True, help="TENANT=POSITION cut.")
@click.option("--dry-run", is_flag=True, help="Report what would be restored; write nothing.")
@click.option("--destination", default="", help="local or s3 (default: the server's).")
@pass_invocation
def restore(
    inv: Invocation,
    backup_id: str,
    tenant_ids: tuple[str, ...],
    stream_prefix: str,
    to_time: timestamp_pb2.Timestamp | None,
    to_positions: tuple[tuple[str, int], ...],
    dry_run: bool,
    destination: str,
) -> None:
    """Restore tenants (absent, deleted or empty ones) from a backup into the running suite."""
    request = backup_pb2.RestoreBackupRequest(
        destination=destination,
        backup_id=backup_id,
        tenant_ids=tenant_ids,
        stream_prefix=stream_prefix,
        to_time=to_time,
        to_positions=dict(to_positions),
        dry_run=dry_run,
    )
    done = None
    with progress(100, "checking" if dry_run else "restoring") as bar:
        for message in inv.session.stream(_backups(inv).RestoreBackup, request, tenant=""):
            bar.update(bar.task_ids[0], completed=message.percent)
            if message.done:
                done = message
    if done is None:
        raise click.ClickException("the restore ended without completing")
    title = f"{'would restore' if dry_run else 'restored'} from {' -> '.join(done.chain)}"
    inv.emit(list(done.tenants), RESTORE_COLUMNS, title=title, empty="nothing")


@group.command("delete")
@click.argument("backup_id")
@click.option("--destination", default="", help="local or s3 (default: the server's).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_invocation
def delete(inv: Invocation, backup_id: str, destination: str, yes: bool) -> None:
    """Delete a backup (refused while incremental backups build on it)."""
    if not yes:
        if not sys.stdin.isatty():
            raise UsageProblem("deleting a backup needs --yes when there is no terminal to confirm on")
        click.confirm(f"Delete backup {backup_id}?", abort=True, err=True)
    request = backup_pb2.DeleteBackupRequest(destination=destination, backup_id=backup_id)
    reply = inv.session.call(_backups(inv).DeleteBackup, request, tenant="")
    inv.emit({"backup_id": reply.backup_id, "deleted": True})


@group.group("schedules")
def schedules() -> None:
    """Backup schedules: list, put, delete."""


@schedules.command("list")
@pass_invocation
def list_schedules(inv: Invocation) -> None:
    """Every schedule, with its last run and its next one."""
    reply = inv.session.call(_backups(inv).ListBackupSchedules, backup_pb2.ListBackupSchedulesRequest(), tenant="")
    inv.emit(list(reply.schedules), SCHEDULE_COLUMNS, empty="no schedules")


@schedules.command("put")
@click.argument("name")
@click.option("--every", "interval", type=Duration(), help="An interval: 30m, 6h, 1d.")
@click.option("--cron", default="", help='A five-field cron expression in UTC, like "0 3 * * *".')
@click.option("--tenant", "tenant_ids", multiple=True, help="Only this tenant (repeatable; default: everything).")
@click.option("--destination", default="", help="local or s3 (default: the server's).")
@click.option("--full-every", type=click.IntRange(min=0), default=1, help="Every Nth run is full (1: always).")
@click.option("--keep-last", type=click.IntRange(min=0), default=0, help="Keep the newest N.")
@click.option("--keep-daily", type=click.IntRange(min=0), default=0, help="Keep the newest of each of N days.")
@click.option("--keep-weekly", type=click.IntRange(min=0), default=0, help="Keep the newest of each of N weeks.")
@click.option("--keep-monthly", type=click.IntRange(min=0), default=0, help="Keep the newest of each of N months.")
@click.option("--disabled", is_flag=True, help="Store it paused.")
@pass_invocation
def put_schedule(
    inv: Invocation,
    name: str,
    interval: duration_pb2.Duration | None,
    cron: str,
    tenant_ids: tuple[str, ...],
    destination: str,
    full_every: int,
    keep_last: int,
    keep_daily: int,
    keep_weekly: int,
    keep_monthly: int,
    disabled: bool,
) -> None:
    """Create or replace a schedule (give --every or --cron)."""
    if (interval is None) == (not cron):
        raise click.UsageError("give either --every DURATION or --cron EXPRESSION")
    schedule = backup_pb2.BackupSchedule(
        name=name,
        interval=interval,
        cron=cron,
        tenant_ids=tenant_ids,
        destination=destination,
        full_every=full_every,
        retention=backup_pb2.Retention(
            keep_last=keep_last, keep_daily=keep_daily, keep_weekly=keep_weekly, keep_monthly=keep_monthly
        ),
        enabled=not disabled,
    )
    request = backup_pb2.PutBackupScheduleRequest(schedule=schedule)
    inv.emit(inv.session.call(_backups(inv).PutBackupSchedule, request, tenant="").schedule, SCHEDULE_COLUMNS)


@schedules.command("delete")
@click.argument("name")
@pass_invocation
def delete_schedule(inv: Invocation, name: str) -> None:
    """Delete a schedule (the backups it made stay)."""
    request = backup_pb2.DeleteBackupScheduleRequest(name=name)
    inv.session.call(_backups(inv).DeleteBackupSchedule, request, tenant="")
    inv.emit({"schedule": name, "deleted": True})
