"""Where backups are kept: a local directory or an S3-compatible bucket.

A destination stores named objects under a backup's id. The interface is small on purpose (put, get,
list, delete) so that Azure Blob or GCS fit behind it the same way. Its configuration crosses into the
dump and load worker processes as a JSON object on their standard input (never on a command line).
"""

from __future__ import annotations

import abc
import collections
import concurrent.futures
import ctypes
import functools
import io
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from services.storage.backup.format import MANIFEST, ChunkInfo, check_chunk, corrupt


class DestinationError(Exception):
    """The destination could not be reached or refused an operation."""


class Destination(abc.ABC):
    """A place that keeps backups, each a set of objects under its id."""

    name: str
    # How many objects a backup has in flight to it at once (compressing and storing): a local disk is
    # served as well by two, a remote store answers each request after a round trip, so more overlap.
    in_flight = 2

    @abc.abstractmethod
    def put(self, backup_id: str, object_name: str, data: bytes) -> None:
        """Store one object of a backup (replacing it)."""

    @abc.abstractmethod
    def get(self, backup_id: str, object_name: str) -> bytes | None:
        """One object of a backup (None when absent)."""

    @abc.abstractmethod
    def backup_ids(self) -> list[str]:
        """The ids of the backups that have a manifest (complete ones), sorted."""

    @abc.abstractmethod
    def delete(self, backup_id: str) -> None:
        """Remove a backup and every object of it."""

    def manifest(self, backup_id: str) -> bytes | None:
        return self.get(backup_id, MANIFEST)

    @property
    @abc.abstractmethod
    def identity(self) -> str:
        """What tells this destination from any other (no credentials)."""

    @abc.abstractmethod
    def seal(self, backup_id: str) -> None:
        """Make every object put so far durable (before the manifest is written)."""


class LocalDirectory(Destination):
    """Backups as directories under one local directory."""

    name = "local"

    def __init__(self, root: str) -> None:
        self.root = Path(root)

    @property
    def identity(self) -> str:
        return f"local:{self.root.resolve()}"

    def _dir(self, backup_id: str) -> Path:
        return self.root / backup_id

    def put(self, backup_id: str, object_name: str, data: bytes) -> None:
        # Chunks are written without a sync of their own (one per 8 MiB chunk cost more than the copy
        # here): `seal` syncs them all before the manifest, which is synced itself.
        target = self._dir(backup_id) / object_name
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".part")
            with open(tmp, "wb") as f:
                f.write(data)
                if object_name == MANIFEST:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(tmp, target)
            if object_name == MANIFEST:
                _fsync_dir(target.parent)
        except OSError as exc:
            raise DestinationError(f"cannot write {target}: {exc}") from exc

    def seal(self, backup_id: str) -> None:
        path = self._dir(backup_id)
        try:
            items = list(path.iterdir())
            # A few files: one fsync each. Many: one syncfs (which also waits for whatever else the file
            # system has to write, so it costs more when there is little to sync).
            if len(items) > 32 and _syncfs(path):
                items = []
            # At once, from threads: the file system commits syncs that wait together in one journal
            # commit (one after another, a 10K-event incremental backup's dozen chunks took 5 ms).
            list(_sync_pool().map(_fsync_file, items))
            _fsync_dir(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise DestinationError(f"cannot sync {path}: {exc}") from exc

    def get(self, backup_id: str, object_name: str) -> bytes | None:
        try:
            return (self._dir(backup_id) / object_name).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise DestinationError(f"cannot read {backup_id}/{object_name}: {exc}") from exc

    def backup_ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / MANIFEST).is_file())

    def delete(self, backup_id: str) -> None:
        path = self._dir(backup_id)
        try:
            (path / MANIFEST).unlink(missing_ok=True)  # first: a half-deleted backup is never listed
            shutil.rmtree(path, ignore_errors=False)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise DestinationError(f"cannot delete {path}: {exc}") from exc


class S3Bucket(Destination):
    """Backups under a prefix of an S3-compatible bucket (multipart uploads for large chunks, retries)."""

    name = "s3"
    # Each chunk in flight holds up to CHUNK_RAW_BYTES raw and its compressed copy: at most ~64 MiB.
    in_flight = 4

    def __init__(self, config: dict[str, Any]) -> None:
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        self.bucket = config["bucket"]
        self.prefix = config.get("prefix", "")
        self.endpoint = config.get("endpoint_url") or ""
        self._client = boto3.client(
            "s3",
            endpoint_url=config.get("endpoint_url") or None,
            region_name=config.get("region") or "us-east-1",
            aws_access_key_id=config.get("access_key_id") or None,
            aws_secret_access_key=config.get("secret_access_key") or None,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}, s3={"addressing_style": "path"}),
        )
        # Backups known to have their manifest (backup_ids); a set's add and discard are atomic.
        self._complete: set[str] = set()
        threshold = self._threshold = int(config.get("multipart_bytes") or 8 * 1024 * 1024)
        self._transfer = TransferConfig(multipart_threshold=threshold, multipart_chunksize=threshold)

    def _key(self, backup_id: str, object_name: str) -> str:
        return f"{self.prefix}{backup_id}/{object_name}"

    def _errors(self, action: str) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        return _Convert(action, (BotoCoreError, ClientError))

    def put(self, backup_id: str, object_name: str, data: bytes) -> None:
        # Below the multipart threshold, one PutObject: the transfer manager (threads and futures for
        # each object) made a 100 KB upload take 6.5 ms against 4.3 (moto_server, this machine).
        key = self._key(backup_id, object_name)
        with self._errors(f"writing {backup_id}/{object_name}"):
            if len(data) < self._threshold:
                self._client.put_object(Bucket=self.bucket, Key=key, Body=data)
            else:
                self._client.upload_fileobj(io.BytesIO(data), self.bucket, key, Config=self._transfer)
        if object_name == MANIFEST:
            self._complete.add(backup_id)

    def get(self, backup_id: str, object_name: str) -> bytes | None:
        from botocore.exceptions import ClientError, ConnectionError, IncompleteReadError, ResponseStreamingError

        try:
            with self._errors(f"reading {backup_id}/{object_name}"):
                # One GetObject (9.8 ms through the transfer manager, 3.9 without, for 100 KB). Failed
                # requests are retried by the client; a body cut off midway is read again here.
                for attempt in range(3):
                    reply = self._client.get_object(Bucket=self.bucket, Key=self._key(backup_id, object_name))
                    try:
                        data: bytes = reply["Body"].read()
                        return data
                    except (ConnectionError, IncompleteReadError, ResponseStreamingError):
                        if attempt == 2:
                            raise
                raise AssertionError("unreachable")
        except DestinationError as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                return None
            raise

    @property
    def identity(self) -> str:
        return f"s3:{self.endpoint}|{self.bucket}|{self.prefix}"

    def backup_ids(self) -> list[str]:
        """One entry per backup (a common prefix), not per object: listing every object to find the
        manifests cost a request per 1,000 chunks of every backup kept (a full backup of a large database
        has thousands). Whether a backup has its manifest is asked once (HEAD, at once for new ones) and
        remembered: a manifest is written last and never changed; `delete` removes it first and forgets."""
        listed: list[str] = []
        with self._errors("listing backups"):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix, Delimiter="/"
            )
            for page in pages:
                for common in page.get("CommonPrefixes", []):
                    listed.append(common["Prefix"][len(self.prefix) : -1])
            unknown = [backup_id for backup_id in listed if backup_id not in self._complete]
            for backup_id, found in zip(unknown, _read_pool().map(self._has_manifest, unknown), strict=True):
                if found:
                    self._complete.add(backup_id)
        here = set(listed)
        self._complete.intersection_update(here)
        return sorted(backup_id for backup_id in here if backup_id in self._complete)

    def _has_manifest(self, backup_id: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._client.head_object(Bucket=self.bucket, Key=self._key(backup_id, MANIFEST))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def seal(self, backup_id: str) -> None:
        """Nothing to do: S3 has stored an object durably when its upload returns."""

    def delete(self, backup_id: str) -> None:
        self._complete.discard(backup_id)
        with self._errors(f"deleting {backup_id}"):
            self._client.delete_object(Bucket=self.bucket, Key=self._key(backup_id, MANIFEST))
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=f"{self.prefix}{backup_id}/"
            )
            for page in pages:
                objects = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if objects:
                    self._client.delete_objects(Bucket=self.bucket, Delete={"Objects": objects})


class _Convert:
    """Turns the driver's exceptions into DestinationError."""

    def __init__(self, action: str, kinds: tuple[type[BaseException], ...]) -> None:
        self.action, self.kinds = action, kinds

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is not None and isinstance(exc, self.kinds):
            raise DestinationError(f"S3 failed while {self.action}: {exc}") from exc


# How many chunks read_checked reads at once (each at most CHUNK_RAW_BYTES compressed: ~64 MiB).
READ_AHEAD = 8


@functools.cache
def _read_pool() -> concurrent.futures.ThreadPoolExecutor:
    """Threads for a destination's requests made at once (chunks read and checked ahead of their use,
    new backups asked for their manifests), made once per process."""
    return concurrent.futures.ThreadPoolExecutor(max_workers=READ_AHEAD, thread_name_prefix="backup-read")


def _read_one(dest: Destination, backup_id: str, info: ChunkInfo) -> tuple[bytes | None, str]:
    data = dest.get(backup_id, info.name)
    return data, check_chunk(info, data, backup_id)


def read_checked(
    dest: Destination, chunks: Iterable[tuple[str, ChunkInfo]]
) -> Iterator[tuple[str, ChunkInfo, bytes | None, str]]:
    """Each (backup id, chunk) with its stored bytes (None when missing) and why it is unusable ("" when
    it matches its size and SHA-256), in order; up to READ_AHEAD read and checked at once on threads
    (reading and hashing release the GIL; with S3 each read is a round trip, which one after another
    made restores, verifications and incrementals wait on the network)."""
    reads: collections.deque[tuple[str, ChunkInfo, concurrent.futures.Future[tuple[bytes | None, str]]]]
    reads = collections.deque()
    try:
        for backup_id, info in chunks:
            reads.append((backup_id, info, _read_pool().submit(_read_one, dest, backup_id, info)))
            if len(reads) >= READ_AHEAD:
                backup_id, info, future = reads.popleft()
                yield backup_id, info, *future.result()
        while reads:
            backup_id, info, future = reads.popleft()
            yield backup_id, info, *future.result()
    finally:
        for _, _, future in reads:  # given up midway (an error): reads not started are dropped
            future.cancel()


def read_sound(dest: Destination, chunks: Iterable[tuple[str, ChunkInfo]]) -> Iterator[tuple[str, ChunkInfo, bytes]]:
    """read_checked for readers that stop at the first unusable chunk: FormatError ("corrupt", naming
    the chunk) there."""
    for backup_id, info, data, problem in read_checked(dest, chunks):
        if problem:
            raise corrupt(problem, backup_id, info)
        assert data is not None
        yield backup_id, info, data


@functools.cache
def _sync_pool() -> concurrent.futures.ThreadPoolExecutor:
    """Threads that sync a backup's files at once, made once per process."""
    return concurrent.futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="backup-sync")


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _syncfs(path: Path) -> bool:
    """syncfs(2) on the file system holding `path`: one call for every file written there."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(path, os.O_RDONLY)
    except (OSError, AttributeError):
        return False
    try:
        return bool(libc.syncfs(fd) == 0)
    except AttributeError:
        return False
    finally:
        os.close(fd)


def open_destination(config: dict[str, Any]) -> Destination:
    """The destination a configuration (from jobs.destination_config) describes: the same object for the
    same configuration within a process. Making an S3 client costs about 7 ms (and 0.4 s the first time),
    and every backup, listing and restore opened its destination anew (a backup twice: the job and its
    dump); a changed configuration (rotated credentials, after a reload) makes a new one. Destinations
    keep no state of their own beyond their client, and boto3's clients may be shared between threads."""
    return _opened(orjson.dumps(config, option=orjson.OPT_SORT_KEYS))


@functools.lru_cache(maxsize=16)
def _opened(canonical: bytes) -> Destination:
    config = orjson.loads(canonical)
    if config["kind"] == "s3":
        return S3Bucket(config)
    return LocalDirectory(config["dir"])
