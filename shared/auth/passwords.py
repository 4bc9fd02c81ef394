"""Password hashing with argon2id (argon2-cffi), with parameters from settings.

Verification runs in a worker thread (argon2 releases the GIL), so a login does not stall the event
loop. An unknown user is checked against a dummy hash of the same cost, so that an unknown user and a
wrong password take similar time and give the same answer. Each tenant has at most VERIFY_PER_TENANT
verifications on threads at a time, the rest of its logins wait their turn: a flood of one tenant's logins
(each a few tens of milliseconds of argon2) cannot fill the thread pool every tenant's logins go through.
"""

from __future__ import annotations

import asyncio
import secrets

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from shared.config.settings import AuthSettings
from shared.core.shares import ThreadShares

VERIFY_PER_TENANT = 2


class Passwords:
    """Hashes and verifies passwords."""

    def __init__(self, settings: AuthSettings) -> None:
        self.configure(settings)
        self._verifying = ThreadShares(VERIFY_PER_TENANT)

    def configure(self, settings: AuthSettings) -> None:
        """Take (reloaded) cost parameters; existing hashes keep verifying."""
        self.min_length = settings.password_min_length
        self._hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
            type=Type.ID,
        )
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))

    def problem(self, password: str) -> str | None:
        """What makes a new password unacceptable, or None."""
        if len(password) < self.min_length:
            return f"must be at least {self.min_length} characters"
        if len(password) > 1024:
            return "must be at most 1024 characters"
        return None

    async def hash(self, password: str) -> str:
        """The PHC-format argon2id hash."""
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str, tenant_id: str = "") -> bool:
        """Whether the password matches; a missing hash is checked against the dummy (same cost). At most
        VERIFY_PER_TENANT of a tenant's verifications run at once."""
        target = password_hash or self._dummy

        def check() -> bool:
            try:
                return bool(self._hasher.verify(target, password)) and password_hash is not None
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

        return await self._verifying.run(tenant_id, check)
