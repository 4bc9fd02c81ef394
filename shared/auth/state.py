"""What every public process knows about credentials, kept current from storage.

- Public signing keys, fetched by kid on first sight (an unknown kid is looked up at most once every
  few seconds, so random kids cannot hammer storage).
- Revoked token ids and refresh-token families, and cached user and API-key records, kept current by
  following the auth change feed: a watch stream from storage delivers each change as it is written, so
  a revocation, a disabled or deleted user, a revoked or rotated key stops working on every service
  within milliseconds; the feed is re-read in full every `auth.change_resync_s` as a safety net, and
  after the stream breaks.
- API-key `last_used` times, collected in memory and written to storage every `auth.key_usage_flush_s`
  (a minute by default; never a write per request).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable
from typing import Protocol, cast

from allsource.storage.v1 import records_pb2
from allsource.v1 import tenant_pb2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from shared.auth.tokens import load_public_key
from shared.core.errors import AllSourceError

# A batch of records as (key, value, revision).
Entries = list[tuple[str, bytes, int]]

log = logging.getLogger(__name__)

NS_PUBLIC_KEYS = "public_keys"
NS_SIGNING_KEYS = "signing_keys"
NS_AUTH_META = "auth_meta"
NS_CHANGES = "auth_changes"
NS_USERS = "users"
NS_USERNAMES = "usernames"
NS_REFRESH = "refresh_tokens"
NS_API_KEYS = "api_keys"
NS_TENANT_KEYS = "tenant_api_keys"
NS_KEY_USAGE = "api_key_usage"
K = records_pb2.AuthChangeKind
_MISSING = object()


class RecordStore(Protocol):
    """Access to storage's control-plane records (as this process is allowed)."""

    async def get(self, tenant_id: str, namespace: str, key: str) -> tuple[bytes, int] | None: ...

    async def list(self, tenant_id: str, namespace: str, after: str, limit: int) -> list[tuple[str, bytes, int]]: ...

    async def put(
        self, tenant_id: str, namespace: str, key: str, value: bytes, expected_revision: int | None = None
    ) -> int: ...

    async def delete(self, tenant_id: str, namespace: str, key: str, expected_revision: int | None = None) -> bool: ...

    async def tenant(self, tenant_id: str) -> tenant_pb2.Tenant | None: ...

    def watch(self, tenant_id: str, namespace: str, after: str) -> AsyncIterator[Entries]: ...


class AuthState:
    """Credential state of one process."""

    def __init__(
        self, records: RecordStore, *, resync_s: float, api_key_max_failures: int, usage_flush_s: float = 60.0
    ) -> None:
        self.records = records
        self.resync_s = resync_s
        self.usage_flush_s = usage_flush_s
        self.api_key_max_failures = api_key_max_failures
        self.public_keys: dict[str, Ed25519PublicKey] = {}
        self._kid_misses: dict[str, float] = {}
        self.revoked_jtis: dict[str, int] = {}
        self.revoked_families: dict[str, int] = {}
        self._users: dict[tuple[str, str], object] = {}
        self._keys: dict[str, object] = {}
        self._tenants: dict[str, object] = {}
        # Bumped by every change to a user, key or tenant: a record fetched while a change arrived may be
        # the old one, so it is used for that call but not cached.
        self._changes = 0
        self._cursor = ""
        self._usage: dict[str, int] = {}
        self._key_failures: dict[str, deque[float]] = defaultdict(deque)
        self.ready = False
        # Told when a quota override or an emergency throttle changed (shared.limits.book).
        self.on_limits_changed: Callable[[], None] = lambda: None

    # -- the change feed ----------------------------------------------------------------------------

    async def poll(self) -> None:
        """Apply every change-feed entry not seen yet."""
        while True:
            entries = await self.records.list("", NS_CHANGES, self._cursor, 1000)
            self._apply_entries(entries)
            if len(entries) < 1000:
                break
        self.ready = True

    def _apply_entries(self, entries: list[tuple[str, bytes, int]]) -> None:
        for key, value, _ in entries:
            if key > self._cursor:  # the watch and a resync may both deliver an entry
                self._apply(records_pb2.AuthChange.FromString(value))
                self._cursor = key

    def _apply(self, change: records_pb2.AuthChange) -> None:
        self._changes += 1
        if change.kind == K.AUTH_CHANGE_KIND_TOKEN_REVOKED:
            self.revoked_jtis[change.subject] = change.until_ns
        elif change.kind == K.AUTH_CHANGE_KIND_FAMILY_REVOKED:
            self.revoked_families[change.subject] = change.until_ns
        elif change.kind == K.AUTH_CHANGE_KIND_USER_CHANGED:
            self._users.pop((change.tenant_id, change.subject), None)
        elif change.kind == K.AUTH_CHANGE_KIND_API_KEY_CHANGED:
            self._keys.pop(change.subject, None)
        elif change.kind == K.AUTH_CHANGE_KIND_SIGNING_KEY_ADDED:
            self._kid_misses.pop(change.subject, None)
        elif change.kind == K.AUTH_CHANGE_KIND_TENANT_CHANGED:
            # Created, changed, deleted or restored: its record, its users and its keys are read again, and
            # so are the keys known not to exist (a restore brings keys back).
            self._tenants.pop(change.subject, None)
            self._users = {k: v for k, v in self._users.items() if k[0] != change.subject}
            self._keys = {
                k: v
                for k, v in self._keys.items()
                if v is not _MISSING and cast(records_pb2.ApiKeyRecord, v).tenant_id != change.subject
            }
        elif change.kind == K.AUTH_CHANGE_KIND_LIMITS_CHANGED:
            self.on_limits_changed()

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the change feed and flush last-used times until stop is set."""
        tasks = [asyncio.create_task(self._follow(stop)), asyncio.create_task(self._housekeeping(stop))]
        await stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.flush_usage()

    async def _follow(self, stop: asyncio.Event) -> None:
        """Catch up, then take changes from the watch stream; start over every resync_s, or after a break."""
        while not stop.is_set():
            try:
                await self.poll()
                async with asyncio.timeout(self.resync_s):
                    async for entries in self.records.watch("", NS_CHANGES, self._cursor):
                        self._apply_entries(entries)
            except TimeoutError:
                continue  # the periodic resync
            except AllSourceError as exc:
                log.warning("cannot follow the auth change feed; retrying", extra={"detail": exc.message})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)

    async def _housekeeping(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.usage_flush_s)
            await self.flush_usage()
            self._prune()

    def _prune(self) -> None:
        now = time.time_ns()
        self.revoked_jtis = {k: v for k, v in self.revoked_jtis.items() if v > now}
        self.revoked_families = {k: v for k, v in self.revoked_families.items() if v > now}

    # -- lookups ------------------------------------------------------------------------------------

    def public_key(self, kid: str) -> Ed25519PublicKey | None:
        """A cached public key (see ensure_public_key for fetching)."""
        return self.public_keys.get(kid)

    async def ensure_public_key(self, kid: str) -> None:
        """Fetch a kid not seen before, at most once per 5 s per kid (and 10,000 unknown kids at most)."""
        if kid in self.public_keys:
            return
        missed = self._kid_misses.get(kid)
        if missed is not None and time.monotonic() - missed < 5:
            return
        found = await self.records.get("", NS_PUBLIC_KEYS, kid)
        if found is None:
            if len(self._kid_misses) > 10_000:
                self._kid_misses.clear()
            self._kid_misses[kid] = time.monotonic()
            return
        record = records_pb2.SigningKeyRecord.FromString(found[0])
        self.public_keys[kid] = load_public_key(record.public_pem)

    async def user(self, tenant_id: str, user_id: str) -> records_pb2.UserRecord | None:
        """The user's record (cached until the change feed says it changed)."""
        cached = self._users.get((tenant_id, user_id))
        if cached is None:
            changes = self._changes
            found = await self.records.get(tenant_id, NS_USERS, user_id)
            cached = records_pb2.UserRecord.FromString(found[0]) if found else _MISSING
            if changes == self._changes:
                self._users[(tenant_id, user_id)] = cached
        return None if cached is _MISSING else cast(records_pb2.UserRecord, cached)

    async def api_key(self, key_id: str) -> records_pb2.ApiKeyRecord | None:
        """An API key's record (cached until the change feed says it changed)."""
        cached = self._keys.get(key_id)
        if cached is None:
            changes = self._changes
            found = await self.records.get("", NS_API_KEYS, key_id)
            cached = records_pb2.ApiKeyRecord.FromString(found[0]) if found else _MISSING
            if len(self._keys) > 100_000:
                self._keys.clear()
            if changes == self._changes:
                self._keys[key_id] = cached
        return None if cached is _MISSING else cast(records_pb2.ApiKeyRecord, cached)

    async def tenant(self, tenant_id: str) -> tenant_pb2.Tenant | None:
        """A tenant's record (cached until the change feed says it changed); None when it does not exist."""
        cached = self._tenants.get(tenant_id)
        if cached is None:
            changes = self._changes
            cached = await self.records.tenant(tenant_id) or _MISSING
            if len(self._tenants) > 100_000:
                self._tenants.clear()
            if changes == self._changes:
                self._tenants[tenant_id] = cached
        return None if cached is _MISSING else cast(tenant_pb2.Tenant, cached)

    def cached_api_key(self, key_id: str) -> object:
        """The cached record object of a key (None when not cached): identity changes when the key does."""
        return self._keys.get(key_id)

    def revoked(self, jti: str, family: str) -> bool:
        """Whether a token (or its family) has been revoked."""
        return jti in self.revoked_jtis or (bool(family) and family in self.revoked_families)

    # -- API keys: guessing and usage ----------------------------------------------------------------

    def key_failed(self, peer: str, key_id: str = "") -> float:
        """Count an invalid API key from this address (and against this key id, when it exists); returns
        how long further invalid attempts from there (or at that key) are answered as throttled (0: not).

        Only failures are throttled: a valid key is checked first and always passes, so nobody sharing
        an address (a NAT, a mesh sidecar) can lock out anyone else's credentials."""
        now = time.monotonic()
        if len(self._key_failures) > 100_000:
            self._key_failures.clear()
        waits = [self._count(f"a:{self._host(peer)}", now)]
        if key_id:
            waits.append(self._count(f"k:{key_id}", now))
        return max(waits)

    def _count(self, subject: str, now: float) -> float:
        window = self._key_failures[subject]
        window.append(now)
        while now - window[0] > 60:
            window.popleft()
        if len(window) <= self.api_key_max_failures:
            return 0.0
        while len(window) > 2 * self.api_key_max_failures:  # bounded memory under a flood
            window.popleft()
        return 60 - (now - window[0])

    @staticmethod
    def _host(peer: str) -> str:
        # ipv4:1.2.3.4:5678 / ipv6:[::1]:5678 -> the address without the port
        return peer.rsplit(":", 1)[0] if peer.count(":") >= 2 else peer

    def key_used(self, key_id: str) -> None:
        """Remember that a key was used now (written to storage by flush_usage)."""
        self._usage[key_id] = time.time_ns()

    async def flush_usage(self) -> None:
        """Write collected last-used times (one record per key, keeping the latest)."""
        usage, self._usage = self._usage, {}
        for key_id, at in usage.items():
            with contextlib.suppress(AllSourceError):
                await self.records.put("", NS_KEY_USAGE, key_id, at.to_bytes(8, "big"))
