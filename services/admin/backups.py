"""BackupService: backups made, checked, restored and deleted by the storage service (which owns the
data), and backup schedules run here.

An operator acts on every tenant and the suite-wide records; a tenant's administrator names only their
own tenant (a request naming none means it), and sees only backups of their tenant alone. Schedules are
suite-wide records; the scheduler runs in every admin replica, but a run happens only on the replica
that holds the schedule lease (a record written compare-and-set, renewed while it runs), so one replica
at a time runs them (DECISIONS: backup schedules).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

import grpc
from allsource.storage.v1 import backup_pb2 as storage_backup
from allsource.v1 import backup_pb2, backup_pb2_grpc

from services.admin.cron import Cron, CronError
from shared.auth.principal import Principal, current
from shared.core.errors import AllSourceError, InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from shared.core.reasons import Reason
from shared.core.timestamps import to_timestamp
from shared.core.wire import recast

if TYPE_CHECKING:
    from shared.config.settings import Settings
    from shared.storage.client import StorageClient
    from shared.storage.records import StorageRecords

log = logging.getLogger(__name__)
NS_SCHEDULES = "backup_schedules"
NS_LEASES = "backup_schedule_lease"
LEASE_KEY = "scheduler"
LEASE_S = 60.0
MAX_SCHEDULES = 100
MAX_INTERVAL_S = 366 * 86_400
MAX_PAGE = 500
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
OPERATE = 7  # allsource.v1.Permission.PERMISSION_OPERATE


def _caller() -> Principal:
    principal = current()
    if principal is None:
        raise Unauthenticated("this call needs credentials", reason=Reason.MISSING_CREDENTIALS)
    return principal


def _operator(principal: Principal) -> bool:
    return OPERATE in principal.permissions


def _own_tenant(principal: Principal, tenant_ids: list[str]) -> list[str]:
    """The tenants a request may name: anything for an operator; otherwise only the caller's own."""
    if _operator(principal):
        return tenant_ids
    if any(t != principal.tenant_id for t in tenant_ids):
        raise PermissionDenied(
            "a tenant's administrator backs up and restores only their own tenant",
            reason=Reason.PERMISSION_DENIED,
        )
    return [principal.tenant_id]


def _visible(principal: Principal, backup: backup_pb2.Backup) -> bool:
    if _operator(principal):
        return True
    return not backup.suite_records and [t.tenant_id for t in backup.tenants] == [principal.tenant_id]


def check_schedule(schedule: backup_pb2.BackupSchedule) -> None:
    """Bounds of a schedule (INVALID_BACKUP_REQUEST with a violation per field)."""
    out: list[tuple[str, str]] = []
    if not _NAME.match(schedule.name):
        out.append(("schedule.name", "1-64 of letters, digits, '-' and '_'"))
    interval = schedule.interval.seconds + schedule.interval.nanos / 1e9
    if bool(schedule.cron) == (interval > 0):
        out.append(("schedule.interval", "give exactly one of interval and cron"))
    if interval < 0 or (0 < interval < 1):
        out.append(("schedule.interval", "at least 1 second"))
    elif interval > MAX_INTERVAL_S:
        out.append(("schedule.interval", f"at most {MAX_INTERVAL_S} seconds (366 days)"))
    if schedule.cron:
        try:
            Cron(schedule.cron)
        except CronError as exc:
            out.append(("schedule.cron", str(exc)))
    if schedule.destination not in ("", "local", "s3"):
        out.append(("schedule.destination", "local or s3"))
    if len(schedule.tenant_ids) > 100:
        out.append(("schedule.tenant_ids", "at most 100"))
    r = schedule.retention
    for name in ("keep_last", "keep_daily", "keep_weekly", "keep_monthly"):
        if getattr(r, name) > 10_000:
            out.append((f"schedule.retention.{name}", "at most 10000"))
    if out:
        raise InvalidArgument("the backup schedule is invalid", reason=Reason.INVALID_BACKUP_REQUEST, violations=out)


def next_run(schedule: backup_pb2.BackupSchedule, after_s: float) -> float | None:
    """When a schedule runs next after a time (None: never)."""
    if schedule.cron:
        return Cron(schedule.cron).next_after(after_s)
    return after_s + schedule.interval.seconds + schedule.interval.nanos / 1e9


def retained(backups: list[backup_pb2.Backup], retention: backup_pb2.Retention) -> set[str]:
    """The ids of a schedule's backups that its retention keeps, with every ancestor a kept one needs."""
    if not any((retention.keep_last, retention.keep_daily, retention.keep_weekly, retention.keep_monthly)):
        return {b.backup_id for b in backups}
    newest = sorted(backups, key=lambda b: (b.created_at.seconds, b.created_at.nanos, b.backup_id), reverse=True)
    keep = {b.backup_id for b in newest[: retention.keep_last]}
    for count, bucket in (
        (retention.keep_daily, lambda tm: (tm.tm_year, tm.tm_yday)),
        (retention.keep_weekly, lambda tm: _iso_week(tm)),
        (retention.keep_monthly, lambda tm: (tm.tm_year, tm.tm_mon)),
    ):
        seen: list[object] = []
        for b in newest:
            key = bucket(time.gmtime(b.created_at.seconds))
            if key not in seen:
                if len(seen) >= count:
                    break
                seen.append(key)
                keep.add(b.backup_id)
    by_id = {b.backup_id: b for b in backups}
    for backup_id in list(keep):  # an incremental kept keeps its chain
        parent = by_id[backup_id].parent_backup_id
        while parent and parent in by_id and parent not in keep:
            keep.add(parent)
            parent = by_id[parent].parent_backup_id
    return keep


def _iso_week(tm: time.struct_time) -> tuple[int, int]:
    import datetime

    year, week, _ = datetime.date(tm.tm_year, tm.tm_mon, tm.tm_mday).isocalendar()
    return year, week


class BackupServicer(backup_pb2_grpc.BackupServiceServicer):
    """allsource.v1.BackupService."""

    def __init__(self, settings: Settings, storage: StorageClient, records: StorageRecords) -> None:
        self.settings = settings
        self.storage = storage
        self.records = records
        self.scheduler = Scheduler(self)
        # Publishes a tenant change on the auth change feed (services.admin.main wires it).
        self.tenant_changed: Callable[[str], Awaitable[None]] | None = None

    # -- backups -------------------------------------------------------------------------------------

    async def CreateBackup(
        self, request: backup_pb2.CreateBackupRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[backup_pb2.CreateBackupResponse]:
        principal = _caller()
        forwarded = recast(request, storage_backup.CreateBackupRequest)
        tenants = _own_tenant(principal, list(request.tenant_ids))
        del forwarded.tenant_ids[:]
        forwarded.tenant_ids.extend(tenants)
        if request.parent_backup_id and not _operator(principal):  # one of theirs, or as absent as none
            await self._get(request.destination, request.parent_backup_id)
        if request.label.startswith("schedule:"):
            raise InvalidArgument(
                "labels starting with 'schedule:' are the scheduler's",
                reason=Reason.INVALID_BACKUP_REQUEST,
                violations=[("label", "must not start with 'schedule:'")],
            )
        async for progress in self.storage.create_backup(forwarded):
            yield recast(progress, backup_pb2.CreateBackupResponse)

    async def ListBackups(
        self, request: backup_pb2.ListBackupsRequest, context: grpc.aio.ServicerContext
    ) -> backup_pb2.ListBackupsResponse:
        principal = _caller()
        forwarded = recast(request, storage_backup.ListBackupsRequest)
        if not _operator(principal):  # storage pages through theirs alone: no token names another's
            forwarded.tenant_id = principal.tenant_id
        reply = recast(await self.storage.list_backups(forwarded), backup_pb2.ListBackupsResponse)
        if not _operator(principal):
            kept = [b for b in reply.backups if _visible(principal, b)]
            del reply.backups[:]
            reply.backups.extend(kept)
        return reply

    async def _get(self, destination: str, backup_id: str) -> backup_pb2.Backup:
        reply = await self.storage.get_backup(
            storage_backup.GetBackupRequest(destination=destination, backup_id=backup_id)
        )
        backup = recast(reply.backup, backup_pb2.Backup)
        if not _visible(_caller(), backup):  # as absent as a backup that does not exist
            raise NotFound(f"backup {backup_id} not found", reason=Reason.BACKUP_NOT_FOUND)
        return backup

    async def GetBackup(
        self, request: backup_pb2.GetBackupRequest, context: grpc.aio.ServicerContext
    ) -> backup_pb2.GetBackupResponse:
        return backup_pb2.GetBackupResponse(backup=await self._get(request.destination, request.backup_id))

    async def VerifyBackup(
        self, request: backup_pb2.VerifyBackupRequest, context: grpc.aio.ServicerContext
    ) -> backup_pb2.VerifyBackupResponse:
        await self._get(request.destination, request.backup_id)
        reply = await self.storage.verify_backup(recast(request, storage_backup.VerifyBackupRequest))
        return recast(reply, backup_pb2.VerifyBackupResponse)

    async def RestoreBackup(
        self, request: backup_pb2.RestoreBackupRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[backup_pb2.RestoreBackupResponse]:
        principal = _caller()
        await self._get(request.destination, request.backup_id)
        forwarded = recast(request, storage_backup.RestoreBackupRequest)
        if not _operator(principal):
            tenants = _own_tenant(principal, list(request.tenant_ids))
            del forwarded.tenant_ids[:]
            forwarded.tenant_ids.extend(tenants)
        async for progress in self.storage.restore_backup(forwarded):
            if progress.done and not progress.dry_run and self.tenant_changed is not None:
                # Every process forgets what it held of these tenants (a record, or that none existed, and
                # their users and keys): the restored ones answer at once, not after the next resync.
                for tenant in progress.tenants:
                    await self.tenant_changed(tenant.tenant_id)
            yield recast(progress, backup_pb2.RestoreBackupResponse)

    async def DeleteBackup(
        self, request: backup_pb2.DeleteBackupRequest, context: grpc.aio.ServicerContext
    ) -> backup_pb2.DeleteBackupResponse:
        reply = await self.storage.delete_backup(recast(request, storage_backup.DeleteBackupRequest))
        return recast(reply, backup_pb2.DeleteBackupResponse)

    # -- schedules -----------------------------------------------------------------------------------

    async def PutBackupSchedule(
        self, request: backup_pb2.PutBackupScheduleRequest, context: grpc.aio.ServicerContext
    ) -> backup_pb2.PutBackupScheduleResponse:
        schedule = backup_pb2.BackupSchedule()
        schedule.CopyFrom(request.schedule)
        check_schedule(schedule)
        found = await self.records.get("", NS_SCHEDULES, schedule.name)
        if found is None:
            existing = await self.records.list("", NS_SCHEDULES, "", MAX_SCHEDULES + 1)
            if len(existing) >= MAX_SCHEDULES:
                raise InvalidArgument(
                    f"at most {MAX_SCHEDULES} backup schedules",
                    reason=Reason.INVALID_BACKUP_REQUEST,
                    violations=[("schedule.name", f"at most {MAX_SCHEDULES} schedules")],
                )
        else:  # what the service keeps about its runs stays
            old = backup_pb2.BackupSchedule.FromString(found[0])
            schedule.last_run.CopyFrom(old.last_run)
            schedule.runs = old.runs
        schedule.ClearField("next_run_at")
        at = next_run(schedule, time.time())
        if at is not None:
            schedule.next_run_at.CopyFrom(to_timestamp(int(at * 1e9)))
        await self.records.put("", NS_SCHEDULES, schedule.name, schedule.SerializeToString())
        self.scheduler.wake()
        return backup_pb2.PutBackupScheduleResponse(schedule=schedule)

    async def ListBackupSchedules(
        self, request: backup_pb2.ListBackupSchedulesRequest, context: grpc.aio.ServicerContext
    ) -> backup_pb2.ListBackupSchedulesResponse:
        if request.page_size < 0:
            raise InvalidArgument(
                "page_size must not be negative",
                reason=Reason.INVALID_BACKUP_REQUEST,
                violations=[("page_size", "must not be negative")],
            )
        size = min(MAX_PAGE, request.page_size or 50)
        page = await self.records.list("", NS_SCHEDULES, request.page_token, size + 1)
        reply = backup_pb2.ListBackupSchedulesResponse(
            schedules=[backup_pb2.BackupSchedule.FromString(value) for _, value, _ in page[:size]]
        )
        if len(page) > size:
            reply.next_page_token = page[size - 1][0]
        return reply

    async def DeleteBackupSchedule(
        self, request: backup_pb2.DeleteBackupScheduleRequest, context: grpc.aio.ServicerContext
    ) -> backup_pb2.DeleteBackupScheduleResponse:
        if not request.name or not await self.records.delete("", NS_SCHEDULES, request.name):
            raise NotFound(
                f"no backup schedule {request.name!r}",
                reason=Reason.BACKUP_SCHEDULE_NOT_FOUND,
                metadata={"name": request.name[:64]},
            )
        return backup_pb2.DeleteBackupScheduleResponse(name=request.name)


class Scheduler:
    """Runs due schedules, on the replica holding the lease."""

    def __init__(self, servicer: BackupServicer) -> None:
        self.s = servicer
        self.holder = secrets.token_hex(8)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lease_revision = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
            await self._release()

    def wake(self) -> None:
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except AllSourceError as exc:
                log.warning("backup schedules could not be checked", extra={"detail": exc.message})
            except Exception:
                log.exception("backup scheduler failed")
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.s.settings.backup.schedule_check_s)
            except TimeoutError:
                pass

    async def _lease(self) -> bool:
        """Take or renew the lease; False when another replica holds it."""
        now = time.time()
        found = await self.s.records.get("", NS_LEASES, LEASE_KEY)
        value = f"{self.holder} {now + LEASE_S}".encode()
        if found is not None:
            holder, _, until = found[0].decode().partition(" ")
            if holder != self.holder and float(until or 0) > now:
                return False
        try:
            self._lease_revision = await self.s.records.put(
                "", NS_LEASES, LEASE_KEY, value, expected_revision=found[1] if found else 0
            )
        except AllSourceError as exc:
            if exc.reason == Reason.RECORD_REVISION_MISMATCH:
                return False  # another replica took it just now
            raise
        return True

    async def _release(self) -> None:
        try:
            found = await self.s.records.get("", NS_LEASES, LEASE_KEY)
            if found is not None and found[0].decode().startswith(self.holder + " "):
                await self.s.records.delete("", NS_LEASES, LEASE_KEY, expected_revision=found[1])
        except AllSourceError:
            pass

    async def tick(self) -> None:
        """Run every schedule that is due (when this replica holds the lease)."""
        schedules = await self.s.records.list("", NS_SCHEDULES, "", MAX_SCHEDULES)
        now = time.time()
        due = []
        for _, value, revision in schedules:
            schedule = backup_pb2.BackupSchedule.FromString(value)
            at = schedule.next_run_at.seconds + schedule.next_run_at.nanos / 1e9
            if schedule.enabled and schedule.HasField("next_run_at") and at <= now:
                due.append((schedule, revision))
        if not due or not await self._lease():
            return
        for schedule, revision in due:
            # Renewed while a run lasts (a backup can outlast the lease): no other replica starts it again.
            renewing = asyncio.ensure_future(self._keep_lease())
            try:
                await self.run(schedule, revision)
            finally:
                renewing.cancel()
                with contextlib.suppress(asyncio.CancelledError, AllSourceError):
                    await renewing
            await self._lease()  # renewed between runs

    async def _keep_lease(self) -> None:
        while True:
            await asyncio.sleep(LEASE_S / 3)
            try:
                await self._lease()
            except AllSourceError as exc:
                log.warning("the backup schedule lease could not be renewed", extra={"detail": exc.message})

    async def run(self, schedule: backup_pb2.BackupSchedule, revision: int) -> None:
        """One run of a schedule: a backup, then its retention; the outcome is kept on the schedule."""
        started = time.time_ns()
        outcome = backup_pb2.ScheduleRun(started_at=to_timestamp(started))
        full_every = max(1, schedule.full_every)
        request = storage_backup.CreateBackupRequest(
            destination=schedule.destination, tenant_ids=schedule.tenant_ids, label=f"schedule:{schedule.name}"
        )
        if schedule.runs % full_every and schedule.last_run.ok and schedule.last_run.backup_id:
            request.parent_backup_id = schedule.last_run.backup_id
        try:
            async for progress in self.s.storage.create_backup(request):
                if progress.done:
                    outcome.backup_id = progress.backup.backup_id
            outcome.ok = bool(outcome.backup_id)
            outcome.deleted.extend(await self._retain(schedule))
        except AllSourceError as exc:
            outcome.ok, outcome.error = False, f"{exc.reason}: {exc.message}"
        except Exception as exc:  # recorded as this run's outcome: the schedule moves on to its next run
            log.exception("a scheduled backup failed", extra={"schedule": schedule.name})
            outcome.ok, outcome.error = False, f"INTERNAL: {type(exc).__name__}: {exc}"[:1000]
        outcome.finished_at.CopyFrom(to_timestamp(time.time_ns()))
        log.info(
            "scheduled backup",
            extra={"schedule": schedule.name, "ok": outcome.ok, "backup_id": outcome.backup_id, "error": outcome.error},
        )
        schedule.last_run.CopyFrom(outcome)
        schedule.runs += 1
        at = next_run(schedule, max(time.time(), started / 1e9))
        schedule.ClearField("next_run_at")
        if at is not None:
            schedule.next_run_at.CopyFrom(to_timestamp(int(at * 1e9)))
        try:
            await self.s.records.put("", NS_SCHEDULES, schedule.name, schedule.SerializeToString(), revision)
        except AllSourceError as exc:  # changed or deleted meanwhile: that version stands
            log.info("a schedule changed while it ran", extra={"schedule": schedule.name, "detail": exc.message})

    async def _retain(self, schedule: backup_pb2.BackupSchedule) -> list[str]:
        mine: list[backup_pb2.Backup] = []
        token = ""
        while True:
            page = await self.s.storage.list_backups(
                storage_backup.ListBackupsRequest(
                    destination=schedule.destination, page_size=MAX_PAGE, page_token=token
                )
            )
            mine += [recast(b, backup_pb2.Backup) for b in page.backups if b.schedule == schedule.name]
            token = page.next_page_token
            if not token:
                break
        keep = retained(mine, schedule.retention)
        doomed = sorted((b for b in mine if b.backup_id not in keep), key=lambda b: b.backup_id, reverse=True)
        deleted = []
        for backup in doomed:  # newest first: dependents go before what they depend on
            await self.s.storage.delete_backup(
                storage_backup.DeleteBackupRequest(destination=schedule.destination, backup_id=backup.backup_id)
            )
            deleted.append(backup.backup_id)
        return deleted
