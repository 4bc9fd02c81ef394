"""Two refreshes racing on one refresh token, made deterministic: both read the token's record before
either marks it used, so one of them loses the compare-and-set (the revision-mismatch branch of
AuthServicer.RefreshToken). The whole family must end: the winner's new tokens and the original.

Mutation caught: the `_revoke_family` call of that branch dropped ("the winner's access token is not
revoked"). The end-to-end version is test_two_refreshes_racing_on_one_token_end_the_family in
tests/integration/test_auth_flows.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from allsource.storage.v1 import records_pb2
from allsource.v1 import auth_pb2, tenant_pb2

from services.admin.auth import AuthServicer
from shared.auth.state import NS_REFRESH, NS_USERS, AuthState
from shared.auth.tokens import ACCESS, TokenVerifier
from shared.config.settings import AuthSettings
from shared.core.errors import Aborted, AllSourceError
from shared.core.reasons import Reason


class Records:
    """In-memory control-plane records with compare-and-set; reads of refresh-token records wait until
    `readers` of them are in progress, so that concurrent refreshes all see the unused record."""

    def __init__(self, readers: int) -> None:
        self.values: dict[tuple[str, str, str], tuple[bytes, int]] = {}
        self.readers = readers
        self.reading = 0
        self.all_reading = asyncio.Event()
        self.mismatches = 0

    async def get(self, tenant_id: str, namespace: str, key: str) -> tuple[bytes, int] | None:
        found = self.values.get((tenant_id, namespace, key))
        if namespace == NS_REFRESH:
            self.reading += 1
            if self.reading >= self.readers:
                self.all_reading.set()
            await asyncio.wait_for(self.all_reading.wait(), 5)
        return found

    async def list(self, tenant_id: str, namespace: str, after: str, limit: int) -> list[tuple[str, bytes, int]]:
        keys = sorted(k for t, n, k in self.values if (t, n) == (tenant_id, namespace) and k > after)
        return [(k, *self.values[(tenant_id, namespace, k)]) for k in keys[:limit]]

    async def put(
        self, tenant_id: str, namespace: str, key: str, value: bytes, expected_revision: int | None = None
    ) -> int:
        await asyncio.sleep(0)  # a storage call: other coroutines run meanwhile
        _, revision = self.values.get((tenant_id, namespace, key), (b"", 0))
        if expected_revision is not None and expected_revision != revision:
            self.mismatches += 1
            raise Aborted("revision mismatch", reason=Reason.RECORD_REVISION_MISMATCH)
        self.values[(tenant_id, namespace, key)] = (value, revision + 1)
        return revision + 1

    async def delete(self, tenant_id: str, namespace: str, key: str, expected_revision: int | None = None) -> bool:
        return self.values.pop((tenant_id, namespace, key), None) is not None

    async def tenant(self, tenant_id: str) -> tenant_pb2.Tenant | None:
        return tenant_pb2.Tenant(tenant_id=tenant_id, status=tenant_pb2.TENANT_STATUS_ACTIVE)


async def refusal(servicer: AuthServicer, refresh_token: str) -> str:
    """The reason a refresh with this token is refused (fails if it is not)."""
    with pytest.raises(AllSourceError) as err:
        await servicer.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=refresh_token), None)  # type: ignore[arg-type]
    return err.value.reason


def test_racing_refreshes_revoke_the_family_of_the_winner_too() -> None:
    async def body() -> None:
        records = Records(readers=2)
        settings = AuthSettings()
        state = AuthState(records, resync_s=1, api_key_max_failures=10)  # type: ignore[arg-type]
        verifier = TokenVerifier(settings, state.public_key)
        servicer = AuthServicer(settings, records, state, verifier, b"sealing secret for the test")  # type: ignore[arg-type]
        await servicer.keyring.load()
        user = records_pb2.UserRecord(user_id="u1", tenant_id="default", username="ann", role=auth_pb2.ROLE_DEVELOPER)
        records.values[("default", NS_USERS, "u1")] = (user.SerializeToString(), 1)
        original = await servicer._issue(user, family="family-1")
        request = auth_pb2.RefreshTokenRequest(refresh_token=original.refresh_token)

        outcomes: list[Any] = await asyncio.gather(
            servicer.RefreshToken(request, None),  # type: ignore[arg-type]
            servicer.RefreshToken(request, None),  # type: ignore[arg-type]
            return_exceptions=True,
        )
        won = [o.tokens for o in outcomes if isinstance(o, auth_pb2.RefreshTokenResponse)]
        lost = [o.reason for o in outcomes if isinstance(o, AllSourceError)]
        assert records.mismatches == 1, "the race did not reach the compare-and-set"
        assert len(won) == 1 and lost == [Reason.REFRESH_TOKEN_REUSED], outcomes

        (winner,) = won
        claims = verifier.verify(winner.access_token, token_type=ACCESS)
        assert state.revoked(claims.jti, claims.family), "the winner's access token is not revoked"
        assert await refusal(servicer, winner.refresh_token) == Reason.TOKEN_REVOKED, (
            "the winner's refresh token still refreshes"
        )
        assert await refusal(servicer, original.refresh_token) in (Reason.TOKEN_REVOKED, Reason.REFRESH_TOKEN_REUSED)

    asyncio.run(body())
