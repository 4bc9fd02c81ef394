"""`allsource-storage restore`: the whole suite (or some tenants) from a backup into an empty data
directory, with the suite down (DECISIONS: the offline restore is a command of the storage program).

It opens the data directory the settings name as the storage service would, restores through the same
code as RestoreBackup (the load worker checks every checksum before anything is written), includes the
suite-wide records (API-key hashes, flags, quota overrides, the bootstrap marker), prints progress, and
closes. Exit status: 0 restored (or dry run evaluated), 1 refused or failed, 2 usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from allsource.storage.v1 import backup_pb2
from google.protobuf.json_format import MessageToDict

from services.storage.backup.jobs import BackupJobs
from services.storage.rocksdb_backend import RocksBackend
from shared.config.loader import SettingsError, load_settings
from shared.config.settings import Settings
from shared.core.errors import AllSourceError
from shared.core.timestamps import to_timestamp
from shared.harness.server import add_config_arguments
from shared.telemetry import logs


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="allsource-storage restore",
        description="Restore a backup into an empty data directory (the suite must be down).",
    )
    add_config_arguments(parser)
    parser.add_argument("--backup-id", required=True, help="the backup to restore (with the chain it ends)")
    parser.add_argument("--destination", default="", help="local or s3 (default: backup.default_destination)")
    parser.add_argument("--tenant", action="append", default=[], help="only this tenant (repeatable)")
    parser.add_argument("--to-time", default="", help="point in time: events recorded at or before (ISO 8601)")
    parser.add_argument("--dry-run", action="store_true", help="report what would be restored; write nothing")
    parser.add_argument("--into-existing", action="store_true", help="allow a data directory that has a database")
    return parser.parse_args(argv)


def check(args: argparse.Namespace) -> Settings:
    """The settings, and a data directory fit for the restore (exits otherwise)."""
    try:
        settings = load_settings(args.config, preset=args.preset, overrides=args.overrides).settings
    except SettingsError as exc:
        print(f"allsource-storage restore: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    path = Path(settings.storage.data_dir).resolve() / "rocksdb"
    if path.exists() and not args.into_existing and not args.dry_run:
        print(
            f"allsource-storage restore: {path} holds a database; restore into an empty data directory "
            "(or pass --into-existing to restore tenants that are empty there)",
            file=sys.stderr,
        )
        raise SystemExit(1)
    return settings


async def restore(settings: Settings, args: argparse.Namespace) -> int:
    request = backup_pb2.RestoreBackupRequest(
        destination=args.destination, backup_id=args.backup_id, tenant_ids=args.tenant, dry_run=args.dry_run
    )
    if args.to_time:
        try:
            at = datetime.fromisoformat(args.to_time.replace("Z", "+00:00"))
        except ValueError:
            print(f"allsource-storage restore: --to-time {args.to_time!r} is not an ISO 8601 time", file=sys.stderr)
            return 2
        request.to_time.CopyFrom(to_timestamp(int(at.timestamp() * 1_000_000_000)))
    backend = RocksBackend(settings.storage)
    await backend.start()
    try:
        jobs = BackupJobs(backend, settings.backup)
        async for progress in jobs.restore(request, offline=not args.tenant):
            line = MessageToDict(progress, preserving_proto_field_name=True)
            print(json.dumps(line), flush=True)
    except AllSourceError as exc:
        print(f"allsource-storage restore: {exc.reason}: {exc.message}", file=sys.stderr)
        return 1
    finally:
        await backend.close()
    return 0


def main(argv: Sequence[str]) -> None:
    """`allsource-storage restore ...`."""
    args = parse(argv)
    settings = check(args)
    logs.configure("storage", "WARNING")
    sys.exit(asyncio.run(restore(settings, args)))
