"""What every public process knows about credentials, kept current from storage.

- Public signing keys, fetched by kid on first sight (an unknown kid is looked up at most once every
  few seconds, so random kids cannot hammer storage).
- Revoked token ids and refresh-token families, and cached user and API-key records, kept current by
  reading the auth change feed every `auth.change_poll_s` (0.5 s): a revocation, a disabled or deleted
  user, a revoked or rotated key stops working on every service within a second.
- API-key `last_used` times, collected in memory and written to storage every `auth.key_usage_flush_s`
  (a minute by default; never a write per request).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict, deque
from typing import Protocol, cast

from allsource.storage.v1 import records_pb2
from allsource.v1 import tenant_pb2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from shared.auth.tokens import load_public_key
from shared.core.errors import AllSourceError

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


class AuthState:
    """Credential state of one process."""

    def __init__(
        self, records: RecordStore, *, poll_s: float, api_key_max_failures: int, usage_flush_s: float = 60.0
    ) -> None:
        self.records = records
        self.poll_s = poll_s
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

    # -- the change feed ----------------------------------------------------------------------------

    async def poll(self) -> None:
        """Apply every change-feed entry not seen yet."""
        while True:
            entries = await self.records.list("", NS_CHANGES, self._cursor, 1000)
            for key, value, _ in entries:
                self._apply(records_pb2.AuthChange.FromString(value))
                self._cursor = key
            if len(entries) < 1000:
                break
        self.ready = True

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
            self._tenants.pop(change.subject, None)
            self._users = {k: v for k, v in self._users.items() if k[0] != change.subject}

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the change feed and flush last-used times until stop is set."""
        last_flush = time.monotonic()
        while not stop.is_set():
            try:
                await self.poll()
            except AllSourceError as exc:
                log.warning("cannot read the auth change feed", extra={"detail": exc.message})
            if time.monotonic() - last_flush >= self.usage_flush_s:
                await self.flush_usage()
                last_flush = time.monotonic()
                self._prune()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.poll_s)
        await self.flush_usage()

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

    def key_failures_exceeded(self, peer: str) -> float:
        """Seconds until the peer may try API keys again (0: now)."""
        window = self._key_failures.get(self._host(peer))
        if not window:
            return 0.0
        now = time.monotonic()
        while window and now - window[0] > 60:
            window.popleft()
        if len(window) < self.api_key_max_failures:
            return 0.0
        return 60 - (now - window[0])

    def key_failed(self, peer: str) -> None:
        """Count an unknown or wrong API key from this peer."""
        self._key_failures[self._host(peer)].append(time.monotonic())

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
