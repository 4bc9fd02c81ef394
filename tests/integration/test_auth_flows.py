"""Sessions, rotation, revocation and bootstrap, end to end across the four processes.

Revocation, disabling, deletion and key revocation must stop a credential on every service within one
second (the change feed is read every 0.5 s).
"""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from allsource.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    event_pb2,
    ingest_pb2,
    ingest_pb2_grpc,
    options_pb2,
    query_pb2,
    query_pb2_grpc,
)
from allsource_client import error_from_rpc, event
from google.protobuf import duration_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from tests.harness import Suite, free_port, wait_until

FAST = {
    "ALLSOURCE_AUTH__ARGON2_MEMORY_KIB": "8192",
    "ALLSOURCE_AUTH__ARGON2_TIME_COST": "1",
    "ALLSOURCE_AUTH__LOGIN_MAX_FAILURES": "1000",
    "ALLSOURCE_AUTH__KEY_USAGE_FLUSH_S": "0.5",
}
PASSWORD = "correct horse battery staple"
WITHIN_S = 1.0


@pytest.fixture(scope="module")
def auth_suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    suite = Suite(tmp_path_factory.mktemp("auth"), extra_env=FAST)
    try:
        suite.start_all()
        yield suite
    finally:
        suite.stop_all()


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def auth_stub(suite: Suite, token: str | None = None) -> auth_pb2_grpc.AuthServiceStub:
    channel = suite.channel("admin", bearer(token)) if token else suite.channel("admin")
    return auth_pb2_grpc.AuthServiceStub(channel)


def new_user(suite: Suite, role: int = auth_pb2.ROLE_DEVELOPER) -> tuple[str, str]:
    """(user id, username) of a fresh user with PASSWORD."""
    name = f"u{uuid.uuid4().hex[:12]}"
    user = auth_stub(suite).CreateUser(auth_pb2.CreateUserRequest(username=name, password=PASSWORD, role=role)).user
    return user.user_id, name


def login(suite: Suite, username: str, password: str = PASSWORD) -> auth_pb2.TokenPair:
    with suite.raw_channel("admin") as channel:
        return (
            auth_pb2_grpc.AuthServiceStub(channel)
            .Login(auth_pb2.LoginRequest(username=username, password=password))
            .tokens
        )


def reason_of(err: grpc.RpcError) -> str:
    return error_from_rpc(err).reason


def works_everywhere(suite: Suite, token: str) -> dict[str, str]:
    """Call a cheap RPC on ingest, query and admin: name -> "ok" when the credential is accepted (even if
    that RPC is then not permitted), else the UNAUTHENTICATED reason."""
    calls: dict[str, Callable[[], object]] = {
        "ingest": lambda: ingest_pb2_grpc.IngestServiceStub(suite.channel("ingest", bearer(token))).AppendEvents(
            ingest_pb2.AppendEventsRequest(stream_id="probe", events=[event("Probe")]), timeout=5
        ),
        "query": lambda: query_pb2_grpc.QueryServiceStub(suite.channel("query", bearer(token))).ListStreams(
            query_pb2.ListStreamsRequest(page_size=1), timeout=5
        ),
        "admin": lambda: auth_stub(suite, token).WhoAmI(auth_pb2.WhoAmIRequest(), timeout=5),
    }
    out = {}
    for name, call in calls.items():
        try:
            call()
            out[name] = "ok"
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.PERMISSION_DENIED:
                out[name] = "ok"  # authenticated (only not allowed this particular call)
                continue
            assert err.code() == grpc.StatusCode.UNAUTHENTICATED, (name, err)
            out[name] = reason_of(err)
    return out


def refused_everywhere_within(suite: Suite, token: str, started: float) -> dict[str, str]:
    """Poll until the credential is refused by every service; assert that took at most WITHIN_S."""
    while True:
        seen = works_everywhere(suite, token)
        if "ok" not in seen.values():
            elapsed = time.monotonic() - started
            assert elapsed <= WITHIN_S, f"refused everywhere only after {elapsed:.2f} s: {seen}"
            return seen
        if time.monotonic() - started > 5:
            pytest.fail(f"still accepted after 5 s: {seen}")
        time.sleep(0.05)


def kid_of(token: str) -> str:
    header = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


# -- sessions ---------------------------------------------------------------------------------------


def test_login_gives_tokens_with_the_documented_claims(auth_suite: Suite) -> None:
    user_id, name = new_user(auth_suite, auth_pb2.ROLE_READ_ONLY)
    tokens = login(auth_suite, name)
    payload = tokens.access_token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert {"jti", "iat", "exp", "nbf", "iss", "aud", "sub", "tenant", "role"} <= claims.keys()
    assert (claims["sub"], claims["tenant"], claims["role"], claims["typ"]) == (
        user_id,
        "default",
        auth_pb2.ROLE_READ_ONLY,
        "access",
    )
    assert claims["exp"] - claims["iat"] == 900  # 15 minutes by default
    refresh_ttl = tokens.refresh_token_expires_at.seconds - tokens.access_token_expires_at.seconds + 900
    assert refresh_ttl == 7 * 24 * 3600
    me = auth_stub(auth_suite, tokens.access_token).WhoAmI(auth_pb2.WhoAmIRequest())
    assert (me.kind, me.subject, me.name, me.role) == ("user", user_id, name, auth_pb2.ROLE_READ_ONLY)
    assert works_everywhere(auth_suite, tokens.access_token)["query"] == "ok"


def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_family(auth_suite: Suite) -> None:
    _, name = new_user(auth_suite)
    first = login(auth_suite, name)
    with auth_suite.raw_channel("admin") as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        second = stub.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=first.refresh_token)).tokens
        assert second.refresh_token != first.refresh_token and second.access_token != first.access_token
        third = stub.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=second.refresh_token)).tokens
        assert set(works_everywhere(auth_suite, third.access_token).values()) == {"ok"}
        # Replaying a spent refresh token (as a thief would) revokes every token of the family.
        with pytest.raises(grpc.RpcError) as err:
            stub.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=first.refresh_token))
        started = time.monotonic()
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED and reason_of(err.value) == "REFRESH_TOKEN_REUSED"
        assert set(refused_everywhere_within(auth_suite, third.access_token, started).values()) == {"TOKEN_REVOKED"}
        with pytest.raises(grpc.RpcError) as err:
            stub.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=third.refresh_token))
        assert reason_of(err.value) == "TOKEN_REVOKED"
    # another login is a new family and works
    assert works_everywhere(auth_suite, login(auth_suite, name).access_token)["ingest"] == "ok"


RACES = 6


def test_two_refreshes_racing_on_one_token_end_the_family(auth_suite: Suite) -> None:
    """Two RefreshToken calls with the same refresh token at once (several times, so that both read the
    token's record before either marks it used): at most one gets new tokens, and afterwards the new
    access token, the new refresh token and the original one are all refused.

    Mutation caught: in RefreshToken's revision-mismatch branch (services/admin/auth.py), the
    `_revoke_family` call dropped: the winner's access token stays accepted ("still accepted after 5 s").
    The same branch is driven deterministically in tests/unit/test_refresh_race.py."""
    _, name = new_user(auth_suite)
    with auth_suite.raw_channel("admin") as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        for _ in range(RACES):
            original = login(auth_suite, name)
            request = auth_pb2.RefreshTokenRequest(refresh_token=original.refresh_token)
            racing = [stub.RefreshToken.future(request, timeout=10) for _ in range(2)]
            won: list[auth_pb2.TokenPair] = []
            refused: list[str] = []
            for call in racing:
                try:
                    won.append(call.result().tokens)
                except grpc.RpcError as err:
                    assert err.code() == grpc.StatusCode.UNAUTHENTICATED, err
                    refused.append(reason_of(err))
            answered = time.monotonic()
            assert len(won) <= 1, "both racing refreshes got new tokens"
            assert set(refused) <= {"REFRESH_TOKEN_REUSED", "TOKEN_REVOKED"}, refused
            for tokens in won:
                seen = refused_everywhere_within(auth_suite, tokens.access_token, answered)
                assert set(seen.values()) == {"TOKEN_REVOKED"}, seen
            for spent in [original.refresh_token] + [tokens.refresh_token for tokens in won]:
                with pytest.raises(grpc.RpcError) as err:
                    stub.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=spent), timeout=10)
                assert reason_of(err.value) in {"REFRESH_TOKEN_REUSED", "TOKEN_REVOKED"}


def test_logout_and_revoke_token_reach_every_service_within_a_second(auth_suite: Suite) -> None:
    _, name = new_user(auth_suite)
    session = login(auth_suite, name)
    auth_stub(auth_suite, session.access_token).Logout(auth_pb2.LogoutRequest(refresh_token=session.refresh_token))
    refused_everywhere_within(auth_suite, session.access_token, time.monotonic())
    with auth_suite.raw_channel("admin") as channel, pytest.raises(grpc.RpcError) as err:
        auth_pb2_grpc.AuthServiceStub(channel).RefreshToken(
            auth_pb2.RefreshTokenRequest(refresh_token=session.refresh_token)
        )
    assert reason_of(err.value) == "TOKEN_REVOKED"

    other = login(auth_suite, name)
    auth_stub(auth_suite).RevokeToken(auth_pb2.RevokeTokenRequest(token=other.access_token))  # an admin revokes it
    refused_everywhere_within(auth_suite, other.access_token, time.monotonic())
    # a user cannot revoke someone else's token
    _, stranger = new_user(auth_suite)
    victim = login(auth_suite, name)
    with pytest.raises(grpc.RpcError) as err:
        auth_stub(auth_suite, login(auth_suite, stranger).access_token).RevokeToken(
            auth_pb2.RevokeTokenRequest(token=victim.access_token)
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED and reason_of(err.value) == "NOT_TOKEN_OWNER"


def test_disable_delete_and_role_changes_apply_to_existing_tokens(auth_suite: Suite) -> None:
    admin = auth_stub(auth_suite)
    user_id, name = new_user(auth_suite, auth_pb2.ROLE_DEVELOPER)
    token = login(auth_suite, name).access_token
    admin.DisableUser(auth_pb2.DisableUserRequest(user_id=user_id))
    seen = refused_everywhere_within(auth_suite, token, time.monotonic())
    assert set(seen.values()) <= {"USER_DISABLED", "TOKEN_REVOKED"}
    with pytest.raises(grpc.RpcError) as err:
        login(auth_suite, name)
    assert reason_of(err.value) == "USER_DISABLED"
    admin.EnableUser(auth_pb2.EnableUserRequest(user_id=user_id))
    fresh = login(auth_suite, name).access_token
    # Once a new token works on every service, every service has seen the user enabled again.
    wait_until(lambda: set(works_everywhere(auth_suite, fresh).values()) == {"ok"}, 5, "a new session everywhere")
    assert set(works_everywhere(auth_suite, token).values()) == {"TOKEN_REVOKED"}  # old tokens stay dead

    # A role change applies to the user's existing token: READ_ONLY cannot append any more.
    admin.SetUserRole(auth_pb2.SetUserRoleRequest(user_id=user_id, role=auth_pb2.ROLE_READ_ONLY))
    ingest = ingest_pb2_grpc.IngestServiceStub(auth_suite.channel("ingest", bearer(fresh)))
    started = time.monotonic()
    while True:
        try:
            ingest.AppendEvents(ingest_pb2.AppendEventsRequest(stream_id="probe", events=[event("Probe")]), timeout=5)
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.PERMISSION_DENIED
            break
        assert time.monotonic() - started < WITHIN_S
        time.sleep(0.05)

    admin.DeleteUser(auth_pb2.DeleteUserRequest(user_id=user_id))
    seen = refused_everywhere_within(auth_suite, fresh, time.monotonic())
    assert set(seen.values()) == {"USER_NOT_FOUND"}


def test_password_change_ends_sessions_and_needs_the_current_password(auth_suite: Suite) -> None:
    _, name = new_user(auth_suite)
    token = login(auth_suite, name).access_token
    me = auth_stub(auth_suite, token)
    with pytest.raises(grpc.RpcError) as err:
        me.ChangePassword(auth_pb2.ChangePasswordRequest(current_password="wrong", new_password="a new long password"))
    assert reason_of(err.value) == "INVALID_CREDENTIALS"
    with pytest.raises(grpc.RpcError) as err:
        me.ChangePassword(auth_pb2.ChangePasswordRequest(current_password=PASSWORD, new_password="short"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and reason_of(err.value) == "WEAK_PASSWORD"
    me.ChangePassword(auth_pb2.ChangePasswordRequest(current_password=PASSWORD, new_password="a new long password"))
    refused_everywhere_within(auth_suite, token, time.monotonic())
    with pytest.raises(grpc.RpcError):
        login(auth_suite, name)
    assert works_everywhere(auth_suite, login(auth_suite, name, "a new long password").access_token)["ingest"] == "ok"


def test_signing_key_rotation_keeps_earlier_tokens_valid(auth_suite: Suite) -> None:
    _, name = new_user(auth_suite)
    before = login(auth_suite, name).access_token
    new_kid = auth_stub(auth_suite).RotateSigningKey(auth_pb2.RotateSigningKeyRequest()).kid
    after = login(auth_suite, name).access_token
    assert kid_of(before) != new_kid and kid_of(after) == new_kid
    assert set(works_everywhere(auth_suite, before).values()) == {"ok"}  # verifies until it expires
    assert set(works_everywhere(auth_suite, after).values()) == {"ok"}  # other services fetch the new key
    with auth_suite.raw_channel("admin") as channel:
        keys = auth_pb2_grpc.AuthServiceStub(channel).GetPublicKeys(auth_pb2.GetPublicKeysRequest()).keys
    by_kid = {k.kid: k for k in keys}
    assert by_kid[new_kid].current and not by_kid[kid_of(before)].current
    assert all("PUBLIC KEY" in k.pem and "PRIVATE" not in k.pem for k in keys)


# -- API keys ---------------------------------------------------------------------------------------


def test_api_keys_are_shown_once_listed_without_secrets_and_record_last_use(auth_suite: Suite) -> None:
    admin = auth_stub(auth_suite)
    created = admin.CreateApiKey(
        auth_pb2.CreateApiKeyRequest(name=f"k{uuid.uuid4().hex[:6]}", role=auth_pb2.ROLE_SERVICE_ACCOUNT)
    )
    secret, key_id = created.secret, created.api_key.key_id
    assert secret.startswith(f"as_{key_id}_")
    assert works_everywhere(auth_suite, secret)["ingest"] == "ok"

    def listed() -> dict[str, auth_pb2.ApiKey]:
        return {k.key_id: k for k in admin.ListApiKeys(auth_pb2.ListApiKeysRequest(page_size=1000)).api_keys}

    # last-used times are flushed every 0.5 s here (a minute by default)
    wait_until(lambda: listed()[key_id].last_used_at.seconds > 0, 10, "the key's last use recorded")
    # The random part: everything after "as_<key id>_" (it may hold "_" itself: taking what followed the
    # last one once left the single byte b"M", found in a RocksDB file by chance).
    random_part = secret.removeprefix(f"as_{key_id}_")
    assert secret not in str(listed) and random_part not in str(listed)
    # the secret is stored only as a keyed hash: nothing under the data directory contains it
    for path in auth_suite.data_dir.rglob("*"):
        if path.is_file() and path.name != "bootstrap-admin.key":
            assert random_part.encode() not in path.read_bytes(), path


def test_revoked_and_expired_api_keys_stop_within_a_second(auth_suite: Suite) -> None:
    admin = auth_stub(auth_suite)
    key = admin.CreateApiKey(auth_pb2.CreateApiKeyRequest(name="to revoke", role=auth_pb2.ROLE_DEVELOPER))
    assert set(works_everywhere(auth_suite, key.secret).values()) == {"ok"}
    admin.RevokeApiKey(auth_pb2.RevokeApiKeyRequest(key_id=key.api_key.key_id))
    assert set(refused_everywhere_within(auth_suite, key.secret, time.monotonic()).values()) == {"API_KEY_REVOKED"}

    short = admin.CreateApiKey(
        auth_pb2.CreateApiKeyRequest(name="short", role=auth_pb2.ROLE_DEVELOPER, ttl=duration_pb2.Duration(seconds=1))
    )
    assert works_everywhere(auth_suite, short.secret)["query"] == "ok"
    expires_ns = short.api_key.expires_at.ToNanoseconds()
    wait_until(lambda: time.time_ns() > expires_ns, 5, "the key's expiry time")
    assert set(works_everywhere(auth_suite, short.secret).values()) == {"API_KEY_EXPIRED"}


def test_rotated_api_key_keeps_the_old_secret_for_the_grace_period_only(auth_suite: Suite) -> None:
    admin = auth_stub(auth_suite)
    key = admin.CreateApiKey(auth_pb2.CreateApiKeyRequest(name="rotating", role=auth_pb2.ROLE_DEVELOPER))
    rotated = admin.RotateApiKey(
        auth_pb2.RotateApiKeyRequest(key_id=key.api_key.key_id, grace_period=duration_pb2.Duration(seconds=3))
    )
    assert rotated.secret != key.secret
    grace_ends_ns = rotated.api_key.previous_secret_valid_until.ToNanoseconds()
    # Once the new secret works on every service, every service knows of the rotation.
    wait_until(lambda: set(works_everywhere(auth_suite, rotated.secret).values()) == {"ok"}, 5, "the new secret")
    during_grace = works_everywhere(auth_suite, key.secret)
    assert time.time_ns() < grace_ends_ns, "the grace period ended before it could be checked"
    assert set(during_grace.values()) == {"ok"}  # grace period
    wait_until(lambda: time.time_ns() > grace_ends_ns, 5, "the end of the grace period")
    assert set(works_everywhere(auth_suite, key.secret).values()) == {"INVALID_API_KEY"}
    assert set(works_everywhere(auth_suite, rotated.secret).values()) == {"ok"}


def test_a_key_cannot_get_permissions_its_creator_lacks(auth_suite: Suite) -> None:
    developer_key = auth_stub(auth_suite).CreateApiKey(
        auth_pb2.CreateApiKeyRequest(name="dev", permissions=[3, 6])  # write + admin
    )
    reader = auth_stub(auth_suite, developer_key.secret)
    with pytest.raises(grpc.RpcError) as err:
        reader.CreateApiKey(auth_pb2.CreateApiKeyRequest(name="escalate", role=auth_pb2.ROLE_ADMIN))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED and reason_of(err.value) == "PERMISSION_ESCALATION"


def refusal(call: Callable[[], object]) -> str:
    with pytest.raises(grpc.RpcError) as err:
        call()
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED, err.value
    return reason_of(err.value)


def test_no_route_around_the_escalation_rule(auth_suite: Suite) -> None:
    """A key with admin but not write reaches nothing more through users, roles, resets or key rotation."""
    P = options_pb2
    admin_only = auth_stub(auth_suite).CreateApiKey(
        auth_pb2.CreateApiKeyRequest(
            name="admin-reader", permissions=[P.PERMISSION_ADMIN, P.PERMISSION_READ, P.PERMISSION_METRICS]
        )
    )
    limited = auth_stub(auth_suite, admin_only.secret)
    name = f"esc{uuid.uuid4().hex[:8]}"
    create = auth_pb2.CreateUserRequest(username=name, password=PASSWORD, role=auth_pb2.ROLE_ADMIN)
    assert refusal(lambda: limited.CreateUser(create)) == "PERMISSION_ESCALATION"
    powerful_id, powerful_name = new_user(auth_suite, auth_pb2.ROLE_ADMIN)
    weak_id, _ = new_user(auth_suite, auth_pb2.ROLE_READ_ONLY)
    promote = auth_pb2.SetUserRoleRequest(user_id=weak_id, role=auth_pb2.ROLE_ADMIN)
    assert refusal(lambda: limited.SetUserRole(promote)) == "PERMISSION_ESCALATION"
    reset = auth_pb2.ResetPasswordRequest(user_id=powerful_id, new_password="another long passphrase")
    assert refusal(lambda: limited.ResetPassword(reset)) == "PERMISSION_ESCALATION"
    full_key = auth_stub(auth_suite).CreateApiKey(auth_pb2.CreateApiKeyRequest(name="full", role=auth_pb2.ROLE_ADMIN))
    rotate = auth_pb2.RotateApiKeyRequest(key_id=full_key.api_key.key_id)
    assert refusal(lambda: limited.RotateApiKey(rotate)) == "PERMISSION_ESCALATION"
    # Nothing changed: the powerful user's password still works, the weak user is still read-only.
    assert login(auth_suite, powerful_name).access_token
    assert auth_stub(auth_suite).GetUser(auth_pb2.GetUserRequest(user_id=weak_id)).user.role == auth_pb2.ROLE_READ_ONLY
    # Within its reach the same key still manages: a user with no more than it holds is fine.
    reader = auth_pb2.CreateUserRequest(username=name, password=PASSWORD, role=auth_pb2.ROLE_READ_ONLY)
    assert limited.CreateUser(reader).user.role == auth_pb2.ROLE_READ_ONLY


def test_a_scoped_key_makes_only_keys_within_its_scope(auth_suite: Suite) -> None:
    scoped = auth_stub(auth_suite).CreateApiKey(
        auth_pb2.CreateApiKeyRequest(
            name="scoped-admin", role=auth_pb2.ROLE_ADMIN, stream_id_prefix="acct-", event_types=["Opened", "Closed"]
        )
    )
    maker = auth_stub(auth_suite, scoped.secret)
    inherited = maker.CreateApiKey(auth_pb2.CreateApiKeyRequest(name="child", role=auth_pb2.ROLE_READ_ONLY)).api_key
    assert inherited.stream_id_prefix == "acct-" and sorted(inherited.event_types) == ["Closed", "Opened"]
    narrower = maker.CreateApiKey(
        auth_pb2.CreateApiKeyRequest(
            name="narrower", role=auth_pb2.ROLE_READ_ONLY, stream_id_prefix="acct-9", event_types=["Opened"]
        )
    ).api_key
    assert narrower.stream_id_prefix == "acct-9" and list(narrower.event_types) == ["Opened"]
    wider = auth_pb2.CreateApiKeyRequest(name="wider", role=auth_pb2.ROLE_READ_ONLY, stream_id_prefix="ac")
    assert refusal(lambda: maker.CreateApiKey(wider)) == "SCOPE_RESTRICTED"
    other_types = auth_pb2.CreateApiKeyRequest(name="types", role=auth_pb2.ROLE_READ_ONLY, event_types=["Deleted"])
    assert refusal(lambda: maker.CreateApiKey(other_types)) == "SCOPE_RESTRICTED"
    # Users are never scoped, so a scoped key cannot create, promote or take over one.
    user = auth_pb2.CreateUserRequest(
        username=f"s{uuid.uuid4().hex[:8]}", password=PASSWORD, role=auth_pb2.ROLE_READ_ONLY
    )
    assert refusal(lambda: maker.CreateUser(user)) == "SCOPE_RESTRICTED"
    user_id, _ = new_user(auth_suite, auth_pb2.ROLE_READ_ONLY)
    reset = auth_pb2.ResetPasswordRequest(user_id=user_id, new_password="another long passphrase")
    assert refusal(lambda: maker.ResetPassword(reset)) == "SCOPE_RESTRICTED"


# -- bootstrap and settings -------------------------------------------------------------------------


def test_bootstrap_key_is_private_printed_once_and_not_recreated(fresh_suite: Suite) -> None:
    suite = fresh_suite.start_all()
    path = suite.data_dir / "bootstrap-admin.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = suite.admin_key
    assert suite.log("admin").count(key) == 1  # printed once
    suite.stop("admin")
    suite.start("admin")
    assert suite.log("admin").count(key) == 1 and suite.admin_key == key  # no second bootstrap
    me = auth_stub(suite).WhoAmI(auth_pb2.WhoAmIRequest())
    assert (me.kind, me.role) == ("api_key", auth_pb2.ROLE_OPERATOR)


def test_authentication_off_is_explicit_and_warned_at_every_start(fresh_suite: Suite) -> None:
    suite = fresh_suite
    suite.extra_env = {"ALLSOURCE_AUTH__ENABLED": "false"}
    suite.start_all()
    with suite.raw_channel("ingest") as channel:
        ingest_pb2_grpc.IngestServiceStub(channel).AppendEvents(
            ingest_pb2.AppendEventsRequest(stream_id="open", events=[event("E")])
        )
    for name in ("ingest", "query", "admin", "storage"):
        assert "authentication is turned off" in suite.log(name), name


def test_reflection_can_require_authentication(fresh_suite: Suite) -> None:
    suite = fresh_suite
    suite.extra_env = {"ALLSOURCE_AUTH__REFLECTION": "authenticated"}
    suite.start_all()
    grpcurl = str(Path(sys.executable).parent / "grpcurl")
    refused = subprocess.run([grpcurl, "-plaintext", suite.address("query"), "list"], capture_output=True, text=True)
    assert refused.returncode != 0 and "Unauthenticated" in refused.stderr
    allowed = subprocess.run(
        [grpcurl, "-plaintext", "-H", f"authorization: Bearer {suite.admin_key}", suite.address("query"), "list"],
        capture_output=True,
        text=True,
    )
    assert allowed.returncode == 0 and "allsource.v1.QueryService" in allowed.stdout
    # health stays open (grpcurl would need reflection to find it; a mesh probe does not)
    with suite.raw_channel("query") as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_production_needs_the_bootstrap_password_from_configuration(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALLSOURCE_")}
    env.update(
        {
            "ALLSOURCE_PRESET": "production",
            "ALLSOURCE_TLS__MESH_SIDECAR": "true",
            "ALLSOURCE_TRACING__EXPORTER": "none",
            "ALLSOURCE_STORAGE__DATA_DIR": str(tmp_path),
            "ALLSOURCE_ADMIN__PORT": str(free_port()),
            "ALLSOURCE_INTERNAL__SERVICE_SECRET": "env:SVC",
            "SVC": "s" * 40,
            "ALLSOURCE_AUTH__API_KEY_PEPPER": "env:PEPPER",
            "PEPPER": "p" * 40,
        }
    )
    proc = subprocess.run([sys.executable, "-m", "services.admin"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "auth.bootstrap_admin_password" in proc.stderr


def test_error_details_are_rich(auth_suite: Suite) -> None:
    with auth_suite.raw_channel("query") as channel, pytest.raises(grpc.RpcError) as err:
        query_pb2_grpc.QueryServiceStub(channel).ListEvents(query_pb2.ListEventsRequest(filter=event_pb2.EventFilter()))
    status = rpc_status.from_call(err.value)
    assert status is not None and status.details and reason_of(err.value) == "MISSING_CREDENTIALS"


def test_open_reflection_ignores_credentials_so_the_call_shows_the_real_reason(suite: Suite) -> None:
    """Before: with a bad credential grpcurl's reflection lookup was refused first, and the user saw
    `failed to query for service descriptor ...: invalid API key` instead of the call's structured error."""
    grpcurl = str(Path(sys.executable).parent / "grpcurl")
    bad = "authorization: Bearer as_0000000000000000_notavalidsecret"
    listed = subprocess.run(
        [grpcurl, "-plaintext", "-H", bad, suite.address("query"), "list"], capture_output=True, text=True, timeout=30
    )
    assert listed.returncode == 0 and "allsource.v1.QueryService" in listed.stdout, listed.stderr
    called = subprocess.run(
        [grpcurl, "-plaintext", "-H", bad, "-d", "{}", suite.address("query"), "allsource.v1.QueryService/ListStreams"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert called.returncode != 0 and "failed to query for service descriptor" not in called.stderr
    assert "Unauthenticated" in called.stderr and "invalid API key" in called.stderr, called.stderr


def test_reflection_is_not_an_audited_act(fresh_suite: Suite) -> None:
    """An operator's authenticated reflection call naming another tenant reads descriptors, not the tenant's
    data: it passes the tenant stage like any call, but is not written to the audit log."""
    suite = fresh_suite
    suite.extra_env = {"ALLSOURCE_AUTH__REFLECTION": "authenticated"}
    suite.start_all()
    admin = admin_pb2_grpc.AdminServiceStub(suite.channel("admin"))
    tenant = f"refl-{uuid.uuid4().hex[:6]}"
    admin.CreateTenant(admin_pb2.CreateTenantRequest(tenant_id=tenant))
    metadata = (*suite.auth_metadata(), ("x-allsource-tenant", tenant))
    with suite.channel("query", metadata) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = list(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
    assert replies and replies[0].list_services_response.service
    entries = admin.ListAuditEvents(admin_pb2.ListAuditEventsRequest(tenant_id=tenant, page_size=1000)).events
    assert [e.action for e in entries if "Reflection" in e.action] == []
    assert any(e.action.endswith("/CreateTenant") for e in entries)  # the audit log itself works
