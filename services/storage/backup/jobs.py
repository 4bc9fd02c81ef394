"""Backups as the storage service runs them: one job at a time, each in a worker process.

CreateBackup takes a RocksDB checkpoint of the serving database (hard links: no write pause beyond
the checkpoint itself) and has the dump worker copy it to the destination; a small backup (up to
backup.inline_max_events events, an incremental one typically) is read instead on a thread here through
iterators made at one instant (no checkpoint: its flush, links and opening cost more than such a backup's
own work); RestoreBackup has the load
worker check the whole chain and build SST files, then ingests them and registers the tenants. The
CPU-heavy loops run in the workers, never on this process's event loop (DECISIONS: fairness).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import secrets
import shutil
import sys
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from allsource.storage.v1 import backup_pb2

from services.storage.backup import dump, load
from services.storage.backup import format as fmt
from services.storage.backup.destinations import Destination, DestinationError, open_destination
from shared.config.settings import BackupSettings
from shared.core.errors import (
    AllSourceError,
    DataLoss,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from shared.core.reasons import Reason
from shared.core.text import timestamp_problem
from shared.core.timestamps import to_timestamp
from shared.core.version import VERSION

if TYPE_CHECKING:
    from services.storage.rocksdb_backend import RocksBackend

log = logging.getLogger(__name__)
DESTINATIONS = ("local", "s3")
MAX_PAGE = 500
# What a backup id may be: new_backup_id's form, or any name of that alphabet (nothing that reaches
# outside the destination, or that a destination cannot name).
BACKUP_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# Tenants (and points in time) a restore may name: one violation for more, not one per name.
MAX_RESTORE_TENANTS = 1000


def new_backup_id(now_ns: int) -> str:
    """Sortable by creation time, unique."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now_ns // 1_000_000_000))
    return f"{stamp}{(now_ns // 1_000_000) % 1000:03d}Z-{secrets.token_hex(3)}"


def describe(manifest: fmt.Manifest, destination: str) -> backup_pb2.Backup:
    """The API's view of a manifest."""
    out = backup_pb2.Backup(
        backup_id=manifest.backup_id,
        kind=backup_pb2.BACKUP_KIND_FULL if manifest.kind == "full" else backup_pb2.BACKUP_KIND_INCREMENTAL,
        parent_backup_id=manifest.parent_backup_id,
        created_at=to_timestamp(manifest.created_ns),
        destination=destination,
        format_version=manifest.format_version,
        suite_version=manifest.suite_version,
        events=manifest.events,
        chunks=len(manifest.chunks),
        stored_bytes=manifest.stored_bytes,
        label=manifest.label,
        schedule=manifest.schedule,
        suite_records=manifest.covers_suite,
    )
    for part in manifest.tenants:
        tr = out.tenants.add(
            tenant_id=part.tenant_id,
            from_position=part.from_position,
            to_position=part.to_position,
            events=part.events,
            restart=part.restart,
        )
        if part.first_recorded_ns:
            tr.first_recorded_at.CopyFrom(to_timestamp(part.first_recorded_ns))
            tr.last_recorded_at.CopyFrom(to_timestamp(part.last_recorded_ns))
    return out


def format_error(message: str, kind: str, chunk: str = "") -> AllSourceError:
    """A worker's FormatError as the RPC's error."""
    if kind == "corrupt":
        return DataLoss(message, reason=Reason.BACKUP_CORRUPT, metadata={"chunk": chunk})
    if kind == "chain":
        return FailedPrecondition(message, reason=Reason.BACKUP_CHAIN_BROKEN)
    if kind == "missing":
        return NotFound(message, reason=Reason.BACKUP_NOT_FOUND)
    return FailedPrecondition(message, reason=Reason.BACKUP_FORMAT_UNSUPPORTED)


def _eta(done: int, total: int, elapsed: float) -> tuple[float, float]:
    """(percent, seconds left)."""
    if total <= 0:
        return 100.0, 0.0
    percent = min(100.0, 100.0 * done / total)
    left = (total - done) * elapsed / done if done else 0.0
    return percent, left


class Turns:
    """One backup or restore at a time per storage service, taken in turns: a call that finds another
    running waits in arrival order rather than being refused, so that one tenant making backup after
    backup cannot keep everyone else's (and the operator's scheduled ones) out. Each scope (the tenants a
    job covers; "" for the whole suite) has at most one job running or waiting: another of the same scope
    is refused (BACKUP_BUSY), so no caller can fill the line, which is bounded too (MAX_WAITING)."""

    MAX_WAITING = 32

    def __init__(self, jobs: str = "backups and restores") -> None:
        self.jobs = jobs  # what takes these turns, for the refusals
        self.running: str | None = None
        self.waiting: dict[str, asyncio.Future[None]] = {}  # in arrival order

    def must_wait(self, scope: str) -> bool:
        """Whether a job of this scope would wait for its turn; BACKUP_BUSY when it may not wait."""
        if scope == self.running or scope in self.waiting:
            raise Unavailable(
                f"one of the {self.jobs} of the same tenants is already running or waiting on this storage service",
                reason=Reason.BACKUP_BUSY,
                retry_after=5.0,
            )
        if self.running is not None and len(self.waiting) >= self.MAX_WAITING:
            raise Unavailable(
                f"too many {self.jobs} are waiting on this storage service",
                reason=Reason.BACKUP_BUSY,
                retry_after=5.0,
            )
        return self.running is not None

    @contextlib.asynccontextmanager
    async def turn(self, scope: str) -> AsyncIterator[None]:
        """Hold the turn of a job of this scope (waiting for it first if another job has it)."""
        if self.must_wait(scope):
            called = asyncio.get_running_loop().create_future()
            self.waiting[scope] = called
            try:
                await called
            except BaseException:
                if self.waiting.get(scope) is called:
                    del self.waiting[scope]  # gone before its turn
                elif self.running == scope:
                    self._next()  # given its turn as it went away: pass it on
                raise
        else:
            self.running = scope
        try:
            yield
        finally:
            self._next()

    def _next(self) -> None:
        while self.waiting:
            scope = next(iter(self.waiting))
            called = self.waiting.pop(scope)
            if not called.done():
                self.running = scope
                called.set_result(None)
                return
        self.running = None


class BackupJobs:
    """The backup RPCs of one RocksBackend."""

    def __init__(self, backend: RocksBackend, settings: BackupSettings) -> None:
        self.backend = backend
        self.settings = settings
        self.turns = Turns()  # backups and restores
        self.verifies = Turns("verifications")
        # Told of each tenant a restore installed (the storage servicer: consumer groups, caches' feed).
        self.installed: Callable[[str], Awaitable[None]] | None = None
        # Checkpoints and restore files go under the data directory (the same volume: hard links, moves).
        self.work_root = Path(backend.settings.data_dir).resolve()
        # Manifests read (or written) here, per destination identity and backup id (see `manifests`).
        self._manifests: dict[str, dict[str, fmt.Manifest]] = {}

    async def clean(self) -> None:
        """Remove what a backup or restore interrupted by a stop left under the data directory."""
        for name in ("backup-work", "restore-work"):
            await asyncio.to_thread(shutil.rmtree, self.work_root / name, True)

    # -- destinations --------------------------------------------------------------------------------

    def destination_config(self, name: str) -> dict[str, Any]:
        s = self.settings
        name = name or s.default_destination
        if name not in DESTINATIONS:
            raise InvalidArgument(
                f"unknown destination {name!r}; known: {', '.join(DESTINATIONS)}",
                reason=Reason.INVALID_BACKUP_REQUEST,
                violations=[("destination", f"one of {', '.join(DESTINATIONS)}")],
            )
        if name == "s3":
            if not s.s3_bucket:
                raise FailedPrecondition(
                    "the s3 destination is not configured (backup.s3_bucket)", reason=Reason.BACKUP_DESTINATION_FAILED
                )
            return {
                "kind": "s3",
                "name": "s3",
                "endpoint_url": s.s3_endpoint_url,
                "bucket": s.s3_bucket,
                "prefix": s.s3_prefix,
                "region": s.s3_region,
                "access_key_id": s.s3_access_key_id.get_secret_value() if s.s3_access_key_id else "",
                "secret_access_key": s.s3_secret_access_key.get_secret_value() if s.s3_secret_access_key else "",
                "multipart_bytes": s.s3_multipart_bytes,
            }
        root = s.dir or str(self.work_root / "backups")
        return {"kind": "local", "name": "local", "dir": root}

    async def _dest(self, name: str) -> tuple[Destination, str]:
        config = self.destination_config(name)
        try:
            return await asyncio.to_thread(open_destination, config), config["name"]
        except DestinationError as exc:
            raise Unavailable(str(exc), reason=Reason.BACKUP_DESTINATION_FAILED) from None

    async def _io(self, fn: Any, *args: Any) -> Any:
        """Destination I/O on a thread (S3 calls block), its failures as BACKUP_DESTINATION_FAILED."""
        try:
            return await asyncio.to_thread(fn, *args)
        except DestinationError as exc:
            raise Unavailable(str(exc), reason=Reason.BACKUP_DESTINATION_FAILED) from None

    async def manifest(self, dest: Destination, backup_id: str, field: str = "backup_id") -> fmt.Manifest:
        if not BACKUP_ID.fullmatch(backup_id):
            problem = (
                "is required" if not backup_id else "1-128 letters, digits, '.', '_' or '-', not starting with '.'"
            )
            raise InvalidArgument(
                f"{field} {problem}", reason=Reason.INVALID_BACKUP_REQUEST, violations=[(field, problem)]
            )
        raw = await self._io(dest.manifest, backup_id)
        if raw is None:
            raise NotFound(
                f"backup {backup_id} not found", reason=Reason.BACKUP_NOT_FOUND, metadata={"backup_id": backup_id}
            )
        try:
            return fmt.Manifest.from_json(raw, f"{backup_id}/{fmt.MANIFEST}")
        except fmt.FormatError as exc:
            raise format_error(str(exc), exc.kind, exc.chunk) from None

    async def manifests(self, dest: Destination) -> list[fmt.Manifest]:
        """The manifest of every complete backup at the destination, for finding an incremental's parent
        or a backup's dependents. A manifest is written once, last, and never changed, so each is read
        once and kept (per destination, as long as it is listed): a scan costs one listing, not a read
        of every backup (with S3, one GET each). What a backup or restore then uses of a manifest is
        read again from the destination, and checked."""
        listed = await self._io(dest.backup_ids)
        known = self._manifests.setdefault(dest.identity, {})
        for gone in known.keys() - set(listed):
            del known[gone]
        out = []
        for backup_id in listed:
            manifest = await self._known(dest, backup_id)
            if manifest is not None:
                out.append(manifest)
        return out

    async def _known(self, dest: Destination, backup_id: str) -> fmt.Manifest | None:
        """A listed backup's manifest, read once and kept (None, logged, when it cannot be read)."""
        known = self._manifests.setdefault(dest.identity, {})
        manifest = known.get(backup_id)
        if manifest is None:
            try:
                manifest = known[backup_id] = await self.manifest(dest, backup_id)
            except AllSourceError as exc:
                log.warning("a backup cannot be read", extra={"backup_id": backup_id[:200], "detail": exc.message})
        return manifest

    # -- workers -------------------------------------------------------------------------------------

    async def _worker(
        self,
        module: str,
        job: dict[str, Any],
        *,
        inline: bool = False,
        view: dict[str, Any] | None = None,
        hold: ViewHold | None = None,
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Run a worker (a process, or for a small job a thread here: starting a process costs more than
        a small job's work; only a thread can read a live view); yield its messages; raise its error."""
        source = self._thread(module, job, view, hold) if inline else self._process(module, job)
        # Closed as this one ends, however it ends (an error message, the caller done early): its thread
        # joined or its process gone then, not whenever the generator is collected.
        async with contextlib.aclosing(source):
            async for message in source:
                if "error" in message:
                    if "kind" in message:
                        raise format_error(message["error"], message["kind"], message.get("chunk", ""))
                    if "Destination" in message["error"]:
                        raise Unavailable(message["error"], reason=Reason.BACKUP_DESTINATION_FAILED)
                    raise Unavailable(f"the {module.rsplit('.', 1)[-1]} worker failed: {message['error']}")
                yield message

    async def _thread(
        self, module: str, job: dict[str, Any], view: dict[str, Any] | None = None, hold: ViewHold | None = None
    ) -> AsyncGenerator[dict[str, Any], None]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

        def report(message: dict[str, Any]) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, message)

        def run() -> None:
            try:
                if module.endswith(".dump"):
                    dump.work(job, report, view)  # drops the view's iterators before it returns
                else:
                    load.work(job, report)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)
                if hold is not None:
                    loop.call_soon_threadsafe(hold.done)

        if hold is not None:
            hold.in_thread = True
        done = asyncio.ensure_future(asyncio.to_thread(run))
        try:
            while (message := await queue.get()) is not None:
                yield message
        finally:
            await done

    async def _process(self, module: str, job: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            module,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            limit=64 * 1024 * 1024,
        )
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        stderr_task = asyncio.ensure_future(proc.stderr.read())
        try:
            proc.stdin.write(json.dumps(job).encode())
            await proc.stdin.drain()
            proc.stdin.close()
            failed = False
            async for line in proc.stdout:
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                failed = failed or "error" in message
                yield message
            code = await proc.wait()
            if code != 0 and not failed:
                detail = (await stderr_task).decode(errors="replace")[-2000:]
                log.error("backup worker failed", extra={"module": module, "code": code, "detail": detail})
                raise Unavailable(f"the {module.rsplit('.', 1)[-1]} worker exited with status {code}")
        finally:
            if proc.returncode is None:  # the caller went away: stop the worker
                proc.kill()
                await proc.wait()
            stderr_task.cancel()

    # -- create --------------------------------------------------------------------------------------

    async def _parent(
        self, dest: Destination, request: backup_pb2.CreateBackupRequest, wanted: list[str]
    ) -> fmt.Manifest | None:
        """The backup an incremental one builds on (None for a full one)."""
        if not (request.incremental or request.parent_backup_id):
            return None
        if request.parent_backup_id:
            return await self.manifest(dest, request.parent_backup_id, "parent_backup_id")
        same = [m for m in await self.manifests(dest) if self._same_scope(m, wanted)]
        if not same:
            raise FailedPrecondition(
                "no earlier backup of the same tenants to build an incremental one on; make a full one first",
                reason=Reason.BACKUP_CHAIN_BROKEN,
            )
        return max(same, key=lambda m: (m.created_ns, m.backup_id))

    async def create(self, request: backup_pb2.CreateBackupRequest) -> AsyncIterator[backup_pb2.CreateBackupResponse]:
        asked = time.monotonic()
        if len(request.label) > 200:
            raise InvalidArgument(
                "label is too long",
                reason=Reason.INVALID_BACKUP_REQUEST,
                violations=[("label", "at most 200 characters")],
            )
        dest, dest_name = await self._dest(request.destination)
        wanted = sorted(set(request.tenant_ids))
        parent = await self._parent(dest, request, wanted)
        covers = ",".join(wanted)  # its turn's scope
        waits = self.turns.must_wait(covers)
        if waits:
            yield backup_pb2.CreateBackupResponse(phase="queued")
        async with self.turns.turn(covers):
            if waits:  # the newest backup of these tenants may have changed meanwhile
                parent = await self._parent(dest, request, wanted)
            started = time.monotonic()
            now = time.time_ns()
            backup_id = new_backup_id(now)
            yield backup_pb2.CreateBackupResponse(backup_id=backup_id, phase="checkpoint")
            work = self.work_root / "backup-work" / backup_id
            view: dict[str, Any] | None = None
            reading = ""
            # While the live view's iterators exist a reopen of the database (after a failed write) waits:
            # released by the dump's thread when it is done with them, or below if it never started.
            hold = ViewHold()
            try:
                after = parent_positions(parent, self.backend.tenant_heads())
                small = self.backend.events_after(after, wanted) <= self.settings.inline_max_events
                if small:
                    scope = wanted or self.backend.tenant_ids()
                    from_positions = {t: after.get(t, 0) for t in scope} if len(scope) <= dump.MAX_RUNS else None
                    hold.release = await self.backend.begin_reading()
                    view, reading = self.backend.consistent_view(dump.LIVE_FAMILIES, from_positions), "live view"
                else:
                    reading = "checkpoint"
                    await self.backend.checkpoint(work)
                checkpoint_s = time.monotonic() - started
                job = {
                    "checkpoint": str(work),
                    "destination": self.destination_config(request.destination),
                    "backup_id": backup_id,
                    "parent_backup_id": parent.backup_id if parent else "",
                    "tenant_ids": wanted,
                    "suite": not wanted,
                    "signing_keys": self.settings.include_signing_keys,
                    "level": self.settings.compression_level,
                    "label": request.label,
                    "schedule": request_schedule(request),
                    "created_ns": now,
                    "suite_version": VERSION,
                }
                shares = 1 if small else self.settings.dump_workers
                # A full backup of the whole suite copies the checkpoint's files (docs/BACKUP.md); the
                # signing keys are in them, so only when they may be.
                if (
                    not small
                    and not wanted
                    and parent is None
                    and self.settings.full_backup_files
                    and self.settings.include_signing_keys
                ):
                    # Copying files is zstandard, hashlib and file I/O, which release the GIL: a thread
                    # here does it without the cost of starting a process.
                    job["layout"], shares, small = "checkpoint", 1, True
                runs = [
                    self._worker(
                        "services.storage.backup.dump",
                        {**job, "share": i, "shares": shares},
                        inline=small,
                        view=view,
                        hold=hold if view is not None else None,
                    )
                    for i in range(shares)
                ]
                view = None  # the worker's now: it drops the iterators when done
                done: dict[int, fmt.Manifest] = {}
                worker_timings: dict[int, dict[str, float]] = {}
                latest: dict[int, dict[str, int]] = {}
                async for share, message in together(runs):
                    if "progress" in message:
                        latest[share] = message["progress"]
                        events = sum(p["events"] for p in latest.values())
                        total = sum(p["total_events"] for p in latest.values())
                        written = sum(p["bytes"] for p in latest.values())
                        elapsed = max(1e-6, time.monotonic() - started)
                        percent, left = _eta(events, total, elapsed)
                        progress = backup_pb2.CreateBackupResponse(
                            backup_id=backup_id,
                            phase="copying",
                            events=events,
                            bytes=written,
                            percent=percent,
                            events_per_second=events / elapsed,
                            bytes_per_second=written / elapsed,
                        )
                        progress.eta.FromNanoseconds(int(left * 1e9))
                        yield progress
                    elif "manifest" in message:
                        made = message["manifest"]  # a worker thread's Manifest, or a process's JSON of one
                        if not isinstance(made, fmt.Manifest):
                            made = fmt.Manifest.from_json(orjson.dumps(made))
                        done[share] = made
                    elif "timings" in message:
                        worker_timings[share] = message["timings"]
                if len(done) != shares:
                    raise Unavailable("a dump worker ended without its part of the manifest")
                manifest = fmt.merge([done[i] for i in range(shares)])
                # Last, once the chunks are durable: only now is the backup complete (listed, restorable).
                copied = time.monotonic()
                await self._io(dest.seal, backup_id)
                await self._io(dest.put, backup_id, fmt.MANIFEST, manifest.to_json())
                sealed = time.monotonic()
                self._manifests.setdefault(dest.identity, {})[backup_id] = manifest
            except BaseException:
                # What was written of an incomplete backup (chunks, never a manifest) is removed.
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._io(dest.delete, backup_id))
                raise
            finally:
                if not hold.in_thread:
                    hold.done()
                if reading == "checkpoint":
                    await asyncio.to_thread(shutil.rmtree, work, True)
            elapsed = max(1e-6, time.monotonic() - started)
            log.info(
                "backup made",
                extra={
                    "backup_id": backup_id,
                    "events": manifest.events,
                    "bytes": manifest.stored_bytes,
                    "layout": manifest.layout,
                    "s": round(elapsed, 3),
                    "checkpoint_s": round(checkpoint_s, 3),
                    # Finding the parent before, and syncing the chunks and writing the manifest after.
                    "parent_s": round(started - asked, 4),
                    "seal_s": round(sealed - copied, 4),
                    "read": reading,
                    "workers": list(worker_timings.values()),
                },
            )
            yield backup_pb2.CreateBackupResponse(
                backup_id=backup_id,
                phase="done",
                events=manifest.events,
                bytes=manifest.stored_bytes,
                percent=100.0,
                events_per_second=manifest.events / elapsed,
                bytes_per_second=manifest.stored_bytes / elapsed,
                done=True,
                backup=describe(manifest, dest_name),
            )

    @staticmethod
    def _same_scope(manifest: fmt.Manifest, wanted: list[str]) -> bool:
        if not wanted:
            return manifest.covers_suite
        return not manifest.covers_suite and sorted(t.tenant_id for t in manifest.tenants) == wanted

    # -- list, get, verify, delete ----------------------------------------------------------------------

    async def list(self, request: backup_pb2.ListBackupsRequest) -> backup_pb2.ListBackupsResponse:
        dest, name = await self._dest(request.destination)
        size = min(MAX_PAGE, request.page_size or 50)
        if request.page_size < 0:
            raise InvalidArgument(
                "page_size must not be negative",
                reason=Reason.INVALID_BACKUP_REQUEST,
                violations=[("page_size", "must not be negative")],
            )
        ids = [i for i in await self._io(dest.backup_ids) if i > request.page_token]
        out = backup_pb2.ListBackupsResponse()
        alone = request.tenant_id
        for backup_id in ids:
            manifest = await self._known(dest, backup_id)
            if manifest is None:
                continue
            if alone and (manifest.covers_suite or [t.tenant_id for t in manifest.tenants] != [alone]):
                continue  # another's: neither listed nor counted, and no token names it
            if len(out.backups) == size:
                out.next_page_token = out.backups[-1].backup_id
                break
            out.backups.append(describe(manifest, name))
        return out

    async def get(self, request: backup_pb2.GetBackupRequest) -> backup_pb2.GetBackupResponse:
        dest, name = await self._dest(request.destination)
        return backup_pb2.GetBackupResponse(backup=describe(await self.manifest(dest, request.backup_id), name))

    async def verify(self, request: backup_pb2.VerifyBackupRequest) -> backup_pb2.VerifyBackupResponse:
        dest, _ = await self._dest(request.destination)
        manifest = await self.manifest(dest, request.backup_id)
        job = {
            "destination": self.destination_config(request.destination),
            "backup_id": request.backup_id,
            "staging": "",
            "verify_only": True,
        }
        # Each verification reads and hashes a whole chain in a worker process: one at a time, in turns
        # (one per set of tenants running or waiting), not a process per call however many are made.
        covers = "" if manifest.covers_suite else ",".join(sorted(t.tenant_id for t in manifest.tenants))
        async with self.verifies.turn(covers):
            try:
                # Closed before the turn passes on: its worker process is gone by then.
                async with contextlib.aclosing(self._worker("services.storage.backup.load", job)) as messages:
                    async for message in messages:
                        if "summary" in message:
                            s = message["summary"]
                            return backup_pb2.VerifyBackupResponse(
                                ok=not s["problems"],
                                chunks_checked=s["chunks"],
                                bytes_checked=s["bytes"],
                                problems=s["problems"],
                            )
            except (FailedPrecondition, NotFound) as exc:  # a broken chain is a finding, not a failure
                return backup_pb2.VerifyBackupResponse(ok=False, problems=[exc.message])
        raise Unavailable("the verification ended without a result")

    async def delete(self, request: backup_pb2.DeleteBackupRequest) -> backup_pb2.DeleteBackupResponse:
        dest, _ = await self._dest(request.destination)
        await self.manifest(dest, request.backup_id)
        children = [m.backup_id for m in await self.manifests(dest) if m.parent_backup_id == request.backup_id]
        if children:
            raise FailedPrecondition(
                f"backup {request.backup_id} has incremental backups built on it ({', '.join(children[:5])}); "
                "delete them first",
                reason=Reason.BACKUP_HAS_DEPENDENTS,
                metadata={"dependents": ",".join(children[:20])},
            )
        await self._io(dest.delete, request.backup_id)
        log.info("backup deleted", extra={"backup_id": request.backup_id})
        return backup_pb2.DeleteBackupResponse(backup_id=request.backup_id)

    # -- restore -------------------------------------------------------------------------------------

    async def restore(
        self, request: backup_pb2.RestoreBackupRequest, *, offline: bool = False
    ) -> AsyncIterator[backup_pb2.RestoreBackupResponse]:
        dest, _ = await self._dest(request.destination)
        last = await self.manifest(dest, request.backup_id)
        for field, count in (("tenant_ids", len(request.tenant_ids)), ("to_positions", len(request.to_positions))):
            if count > MAX_RESTORE_TENANTS:
                raise InvalidArgument(
                    f"a restore names at most {MAX_RESTORE_TENANTS} tenants",
                    reason=Reason.INVALID_BACKUP_REQUEST,
                    violations=[(field, f"at most {MAX_RESTORE_TENANTS}")],
                )
        if request.HasField("to_time") and (problem := timestamp_problem(request.to_time)):
            raise InvalidArgument(
                f"to_time {problem}", reason=Reason.INVALID_BACKUP_REQUEST, violations=[("to_time", problem)]
            )
        held = [t.tenant_id for t in last.tenants]
        wanted = list(dict.fromkeys(request.tenant_ids)) or held
        violations = [(f"tenant_ids[{i}]", "not in the backup") for i, t in enumerate(wanted) if t not in held]
        violations += [(f"to_positions[{t}]", "not a tenant restored") for t in request.to_positions if t not in wanted]
        if violations:
            raise InvalidArgument(
                "the restore names what the backup does not hold",
                reason=Reason.INVALID_BACKUP_REQUEST,
                violations=violations,
            )
        # A point in time is given when present, whatever its value: position 0 and the epoch restore
        # no events (they are before the first), they do not mean "no limit".
        time_ns = load.NO_CUT
        if request.HasField("to_time"):
            time_ns = request.to_time.seconds * 1_000_000_000 + request.to_time.nanos
        if not request.dry_run:
            for tenant_id in wanted:
                self.backend.check_restore_target(tenant_id)
        covers = ",".join(sorted(wanted))  # its turn's scope
        if self.turns.must_wait(covers):
            yield backup_pb2.RestoreBackupResponse(phase="queued")
        async with self.turns.turn(covers):
            if not request.dry_run:  # again: a restore that had the turn before may have made them
                for tenant_id in wanted:
                    self.backend.check_restore_target(tenant_id)
            started = time.monotonic()
            staging = self.work_root / "restore-work" / new_backup_id(time.time_ns())
            specs = [
                {
                    "tenant_id": tenant_id,
                    "number": 0 if request.dry_run else self.backend.reserve_tenant_number(),
                    "cut_position": request.to_positions.get(tenant_id, load.NO_CUT),
                    "cut_time_ns": time_ns,
                    "stream_prefix": request.stream_prefix,
                }
                for tenant_id in wanted
            ]
            job = {
                "destination": self.destination_config(request.destination),
                "backup_id": request.backup_id,
                "staging": str(staging),
                # The restored tenant's category/type index is rebuilt with the separator in force here.
                "category_separator": self.backend.category_separator,
                "dry_run": request.dry_run,
                "tenants": specs,
                "suite": offline and not request.tenant_ids and not request.dry_run,
            }
            summary: dict[str, Any] | None = None
            try:
                yield backup_pb2.RestoreBackupResponse(phase="checking", dry_run=request.dry_run)
                events_held = sum(p.events for p in last.tenants if p.tenant_id in wanted)
                small = events_held <= self.settings.inline_max_events and last.kind == "full"
                async for message in self._worker("services.storage.backup.load", job, inline=small):
                    if "progress" in message:
                        p = message["progress"]
                        elapsed = max(1e-6, time.monotonic() - started)
                        percent, left = _eta(p["events"], p["total_events"], elapsed)
                        progress = backup_pb2.RestoreBackupResponse(
                            phase="building" if p["events"] else "checking",
                            events=p["events"],
                            bytes=p["bytes"],
                            percent=percent,
                            events_per_second=p["events"] / elapsed,
                            dry_run=request.dry_run,
                        )
                        progress.eta.FromNanoseconds(int(left * 1e9))
                        yield progress
                    elif "summary" in message:
                        summary = message["summary"]
                if summary is None:
                    raise Unavailable("the load worker ended without a summary")
                if not request.dry_run:
                    yield backup_pb2.RestoreBackupResponse(phase="writing", percent=100.0)
                    # Every tenant or none: their targets are checked again together, then all installed.
                    suite_files = summary["suite"]["files"] if summary.get("suite") else None
                    await self.backend.install_restore(suite_files, summary["tenants"])
                    if self.installed is not None:
                        for tenant in summary["tenants"]:
                            await self.installed(tenant["tenant_id"])
            finally:
                await asyncio.to_thread(shutil.rmtree, staging, True)
            elapsed = max(1e-6, time.monotonic() - started)
            events = sum(t["events"] for t in summary["tenants"])
            done = backup_pb2.RestoreBackupResponse(
                phase="done",
                events=events,
                bytes=summary["bytes"],
                percent=100.0,
                events_per_second=events / elapsed,
                done=True,
                chain=summary["chain"],
                dry_run=request.dry_run,
            )
            for tenant in summary["tenants"]:
                done.tenants.add(
                    tenant_id=tenant["tenant_id"],
                    events=tenant["events"],
                    streams=tenant["streams"],
                    last_position=tenant["last_position"],
                )
            log.info(
                "restore finished",
                extra={"backup_id": request.backup_id, "events": events, "dry_run": request.dry_run, "s": elapsed},
            )
            yield done


class ViewHold:
    """A live view's claim on the database (RocksBackend.begin_reading), given up once."""

    def __init__(self) -> None:
        self.release: Callable[[], None] | None = None
        self.in_thread = False  # the dump's thread gives it up when done

    def done(self) -> None:
        if self.release is not None:
            self.release()


async def together(
    runs: list[AsyncGenerator[dict[str, Any], None]],
) -> AsyncIterator[tuple[int, dict[str, Any]]]:
    """The messages of several workers as they come, with the index of the worker; the first error ends
    them all (and is raised)."""
    queue: asyncio.Queue[tuple[int, dict[str, Any] | BaseException | None]] = asyncio.Queue()

    async def pump(index: int, run: AsyncGenerator[dict[str, Any], None]) -> None:
        try:
            async with contextlib.aclosing(run):
                async for message in run:
                    await queue.put((index, message))
        except BaseException as exc:
            await queue.put((index, exc))
        else:
            await queue.put((index, None))

    tasks = [asyncio.ensure_future(pump(i, run)) for i, run in enumerate(runs)]
    try:
        running = len(tasks)
        while running:
            index, item = await queue.get()
            if item is None:
                running -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield index, item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def parent_positions(parent: fmt.Manifest | None, heads: dict[str, tuple[int, int]]) -> dict[str, int]:
    """Where a backup on top of `parent` starts, per tenant (`heads`: each tenant's internal number and last
    position now); a tenant the parent's backup does not lead to starts at 0 (format.continues)."""
    if parent is None:
        return {}
    return {
        t.tenant_id: t.to_position
        for t in parent.tenants
        if t.tenant_id in heads and fmt.continues(t, *heads[t.tenant_id])
    }


def request_schedule(request: backup_pb2.CreateBackupRequest) -> str:
    """The schedule a request comes from (the admin service's scheduler labels its backups "schedule:NAME")."""
    return request.label[len("schedule:") :] if request.label.startswith("schedule:") else ""
