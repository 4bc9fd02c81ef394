"""Authorization walk: every principal calls every public RPC, and the outcome must match the declarations.

The RPCs come from the descriptors (every method of every service in the public API modules), so a new
RPC is walked without touching this file. What each principal may do is computed from the method options
(`required_permission`, `allow_unauthenticated`) and shared.auth.rbac, never from a table written here.

Principals: no credential; a user of each role (logged in); an API key of each role; API keys scoped to one
permission each (and one pair). Each call gets credentials minted for it alone (a fresh login, a fresh
key), so a call that ends a session or rotates a key cannot lock the rest of the walk out.

Scoped keys (stream-id prefix, event types) are checked separately on the data they may and may not touch.
"""

from __future__ import annotations

import itertools
import secrets
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from allsource.v1 import (
    admin_pb2,
    auth_pb2,
    auth_pb2_grpc,
    event_pb2,
    ingest_pb2,
    ingest_pb2_grpc,
    options_pb2,
    query_pb2,
    query_pb2_grpc,
)
from allsource_client import ANY, event
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from google.rpc import error_details_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from services.suite import ORDER
from shared.auth import rbac
from tests.harness import Suite

P = options_pb2
AUTHORIZATION = "authorization"
# The public API: every service these modules declare (the four below at least).
PUBLIC_MODULES = (ingest_pb2, query_pb2, admin_pb2, auth_pb2)
REQUIRED_SERVICES = {"IngestService", "QueryService", "AdminService", "AuthService"}
UNARY_TIMEOUT_S = 20.0
STREAM_TIMEOUT_S = 2.0  # streaming responses: at most one message is read (Subscribe never ends)
# Reasons with which the call chain refuses a call before its handler runs. A principal that holds the
# permission must never see one of them: the first three are authorization refusals, the rest mean its
# (freshly minted) credential was not accepted, which would hide the authorization outcome.
AUTHZ_REFUSALS = {"PERMISSION_DENIED", "MISSING_CREDENTIALS", "PERMISSION_NOT_DECLARED"}
CREDENTIAL_REFUSALS = {
    "MALFORMED_CREDENTIALS",
    "AUTH_UNAVAILABLE",
    "INVALID_API_KEY",
    "API_KEY_REVOKED",
    "API_KEY_EXPIRED",
    "TOKEN_REVOKED",
    "TOKEN_EXPIRED",
    "USER_NOT_FOUND",
    "USER_DISABLED",
    "TOO_MANY_FAILED_ATTEMPTS",
}
CREDENTIAL_REFUSAL_CODES = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.RESOURCE_EXHAUSTED}


# -- the RPCs, from the descriptors -------------------------------------------------------------------


def public_services() -> list[ServiceDescriptor]:
    return [service for module in PUBLIC_MODULES for service in module.DESCRIPTOR.services_by_name.values()]


def public_methods() -> list[tuple[ServiceDescriptor, MethodDescriptor]]:
    return [(service, method) for service in public_services() for method in service.methods]


def path_of(service: ServiceDescriptor, method: MethodDescriptor) -> str:
    return f"/{service.full_name}/{method.name}"


REQUIREMENTS = rbac.requirements(public_services())


def test_every_public_rpc_declares_its_permission() -> None:
    assert REQUIRED_SERVICES <= {s.name for s in public_services()}
    undeclared = [
        path
        for path, requirement in REQUIREMENTS.items()
        if requirement.permission == P.PERMISSION_UNSPECIFIED and not requirement.allow_unauthenticated
    ]
    assert not undeclared, "RPCs declaring neither required_permission nor allow_unauthenticated:\n" + "\n".join(
        undeclared
    )
    unknown = [
        path for path, requirement in REQUIREMENTS.items() if requirement.permission not in P.Permission.values()
    ]
    assert not unknown, f"RPCs declaring a permission the Permission enum does not have: {unknown}"


# -- outcomes -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    code: grpc.StatusCode
    reason: str = ""
    message: str = ""
    metadata: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        return f"{self.code.name} {self.reason}".strip()


OK = Outcome(grpc.StatusCode.OK)


def outcome_of(err: grpc.RpcError) -> Outcome:
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    message = err.details() if hasattr(err, "details") else str(err)
    try:
        status = rpc_status.from_call(err)
    except ValueError:
        status = None
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return Outcome(code, info.reason, message or "", tuple(sorted(info.metadata.items())))
    return Outcome(code, "", message or "")


@dataclass(frozen=True)
class Expectation:
    """Refused with this code and reason, or (code None) admitted: no authorization refusal."""

    code: grpc.StatusCode | None = None
    reason: str = ""

    def __str__(self) -> str:
        return f"{self.code.name} {self.reason}" if self.code else "admitted"

    def met_by(self, got: Outcome) -> bool:
        if self.code is not None:
            return got.code == self.code and got.reason == self.reason
        if got.reason in AUTHZ_REFUSALS:
            return False
        if got.reason in CREDENTIAL_REFUSALS and got.code in CREDENTIAL_REFUSAL_CODES:
            return False  # (a handler may use such a reason with another code: NOT_FOUND USER_NOT_FOUND)
        # A handler may answer UNAUTHENTICATED / PERMISSION_DENIED for its own reasons (a wrong current
        # password, someone else's token), but always with an ErrorInfo saying so.
        if got.code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            return bool(got.reason)
        return True


def expectation(permissions: frozenset[int] | None, path: str) -> Expectation:
    """What the declarations say about a principal (None: no credential) calling `path`."""
    requirement = REQUIREMENTS[path]
    if requirement.permission == P.PERMISSION_UNSPECIFIED and not requirement.allow_unauthenticated:
        return Expectation(grpc.StatusCode.PERMISSION_DENIED, "PERMISSION_NOT_DECLARED")
    if requirement.allow_unauthenticated:
        return Expectation()
    if permissions is None:
        return Expectation(grpc.StatusCode.UNAUTHENTICATED, "MISSING_CREDENTIALS")
    if requirement.permission in permissions:
        return Expectation()
    return Expectation(grpc.StatusCode.PERMISSION_DENIED, "PERMISSION_DENIED")


# -- the suite and its principals ---------------------------------------------------------------------


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return ((AUTHORIZATION, f"Bearer {token}"),)


@dataclass(frozen=True)
class Credential:
    """Credentials minted for one call."""

    metadata: tuple[tuple[str, str], ...] = ()
    access_token: str = ""  # users
    password: str = ""  # users


@dataclass(frozen=True)
class Principal:
    label: str
    kind: str  # none | user | api_key
    permissions: frozenset[int] | None  # None: no credential
    mint: Callable[[], Credential]


@dataclass
class Walk:
    suite: Suite
    channels: dict[str, grpc.Channel] = field(default_factory=dict)
    host: dict[str, str] = field(default_factory=dict)  # service full name -> process name
    passwords: dict[str, str] = field(default_factory=dict)  # username -> password
    names: Iterator[int] = field(default_factory=itertools.count)

    @property
    def admin(self) -> tuple[tuple[str, str], ...]:
        return self.suite.auth_metadata()

    def auth(self) -> auth_pb2_grpc.AuthServiceStub:
        return auth_pb2_grpc.AuthServiceStub(self.channels["admin"])

    def ingest(self) -> ingest_pb2_grpc.IngestServiceStub:
        return ingest_pb2_grpc.IngestServiceStub(self.channels["ingest"])

    def query(self) -> query_pb2_grpc.QueryServiceStub:
        return query_pb2_grpc.QueryServiceStub(self.channels["query"])

    def create_user(self, role: int) -> str:
        username = f"walk-{auth_pb2.Role.Name(role).lower()}-{next(self.names)}"
        password = secrets.token_urlsafe(18)
        self.auth().CreateUser(
            auth_pb2.CreateUserRequest(username=username, password=password, role=role),
            metadata=self.admin,
            timeout=UNARY_TIMEOUT_S,
        )
        self.passwords[username] = password
        return username

    def login(self, username: str) -> auth_pb2.TokenPair:
        response = self.auth().Login(
            auth_pb2.LoginRequest(username=username, password=self.passwords[username]), timeout=UNARY_TIMEOUT_S
        )
        return response.tokens

    def create_key(self, **fields: object) -> str:
        fields.setdefault("name", f"walk-key-{next(self.names)}")
        response = self.auth().CreateApiKey(
            auth_pb2.CreateApiKeyRequest(**fields),
            metadata=self.admin,
            timeout=UNARY_TIMEOUT_S,
        )
        return response.secret

    def user_principal(self, role: int) -> Principal:
        username = self.create_user(role)

        def mint() -> Credential:
            token = self.login(username).access_token
            return Credential(bearer(token), access_token=token, password=self.passwords[username])

        return Principal(f"user {auth_pb2.Role.Name(role)}", "user", rbac.permissions_of(role), mint)

    def key_principal(self, label: str, role: int = 0, permissions: Sequence[int] = ()) -> Principal:
        def mint() -> Credential:
            return Credential(bearer(self.create_key(role=role, permissions=list(permissions))))

        return Principal(label, "api_key", rbac.permissions_of(role, permissions), mint)


def hosted_services(channel: grpc.Channel) -> set[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    for reply in stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=UNARY_TIMEOUT_S
    ):
        return {s.name for s in reply.list_services_response.service}
    return set()


@pytest.fixture(scope="module")
def walk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Walk]:
    suite = Suite(
        Path(tmp_path_factory.mktemp("authz")),
        extra_env={
            "ALLSOURCE_AUTH__ARGON2_MEMORY_KIB": "8192",
            "ALLSOURCE_AUTH__ARGON2_TIME_COST": "1",
            "ALLSOURCE_AUTH__LOGIN_MAX_FAILURES": "1000000",
        },
    )
    channels: dict[str, grpc.Channel] = {}
    try:
        suite.start_all()
        channels = {name: suite.raw_channel(name) for name in ORDER}
        state = Walk(suite, channels)
        for name in ORDER:
            for service in hosted_services(channels[name]):
                state.host.setdefault(service, name)
        yield state
    finally:
        for channel in channels.values():
            channel.close()
        suite.stop_all()


def principals(walk: Walk) -> list[Principal]:
    roles = [r for r in auth_pb2.Role.values() if r != auth_pb2.ROLE_UNSPECIFIED]
    permissions = [p for p in P.Permission.values() if p != P.PERMISSION_UNSPECIFIED]
    out = [Principal("no credentials", "none", None, Credential)]
    out += [walk.user_principal(role) for role in roles]
    out += [walk.key_principal(f"key {auth_pb2.Role.Name(role)}", role=role) for role in roles]
    out += [walk.key_principal(f"key only {P.Permission.Name(p)}", permissions=[p]) for p in permissions]
    out.append(walk.key_principal("key READ+METRICS", permissions=[P.PERMISSION_READ, P.PERMISSION_METRICS]))
    return out


# -- requests -----------------------------------------------------------------------------------------

RequestBuilder = Callable[[Walk, Principal, Credential], Message]


def _login(walk: Walk, principal: Principal, credential: Credential) -> Message:
    # An empty Login answers UNAUTHENTICATED (bad password): log in for real, so being let in shows.
    username = next(iter(walk.passwords))
    return auth_pb2.LoginRequest(username=username, password=walk.passwords[username])


def _refresh(walk: Walk, principal: Principal, credential: Credential) -> Message:
    # An empty token answers UNAUTHENTICATED: use a real (unused, single-use) refresh token.
    return auth_pb2.RefreshTokenRequest(refresh_token=walk.login(next(iter(walk.passwords))).refresh_token)


def _change_password(walk: Walk, principal: Principal, credential: Credential) -> Message:
    # The right current password (users) and no new one: refused as a weak password, nothing changes.
    return auth_pb2.ChangePasswordRequest(current_password=credential.password)


def _revoke_token(walk: Walk, principal: Principal, credential: Credential) -> Message:
    # A user revokes the token of this very call (minted for it alone); keys send the empty default.
    return auth_pb2.RevokeTokenRequest(token=credential.access_token)


OVERRIDES: dict[str, RequestBuilder] = {
    "/allsource.v1.AuthService/Login": _login,
    "/allsource.v1.AuthService/RefreshToken": _refresh,
    "/allsource.v1.AuthService/ChangePassword": _change_password,
    "/allsource.v1.AuthService/RevokeToken": _revoke_token,
}


def request_for(
    walk: Walk, path: str, method: MethodDescriptor, principal: Principal, credential: Credential
) -> Message:
    builder = OVERRIDES.get(path)
    return builder(walk, principal, credential) if builder else GetMessageClass(method.input_type)()


# -- calls --------------------------------------------------------------------------------------------


def invoke(
    channel: grpc.Channel, path: str, method: MethodDescriptor, request: Message, metadata: Sequence[tuple[str, str]]
) -> Outcome:
    """Call any RPC generically: one request message, at most one response message."""
    kw = {
        "request_serializer": type(request).SerializeToString,
        "response_deserializer": GetMessageClass(method.output_type).FromString,
    }
    md = tuple(metadata)
    try:
        if not method.server_streaming:
            if method.client_streaming:
                channel.stream_unary(path, **kw)(iter([request]), timeout=UNARY_TIMEOUT_S, metadata=md)
            else:
                channel.unary_unary(path, **kw)(request, timeout=UNARY_TIMEOUT_S, metadata=md)
            return OK
        if method.client_streaming:
            call = channel.stream_stream(path, **kw)(iter([request]), timeout=STREAM_TIMEOUT_S, metadata=md)
        else:
            call = channel.unary_stream(path, **kw)(request, timeout=STREAM_TIMEOUT_S, metadata=md)
        try:
            next(call)
        except StopIteration:
            pass
        finally:
            call.cancel()
        return OK
    except grpc.RpcError as err:
        return outcome_of(err)


@dataclass(frozen=True)
class Check:
    principal: str
    rpc: str
    expected: Expectation
    got: Outcome

    @property
    def ok(self) -> bool:
        return self.expected.met_by(self.got)


def walk_principal(walk: Walk, principal: Principal) -> list[Check]:
    checks = []
    for service, method in public_methods():
        path = path_of(service, method)
        channel = walk.channels[walk.host[service.full_name]]
        credential = principal.mint()
        got = invoke(channel, path, method, request_for(walk, path, method, principal, credential), credential.metadata)
        checks.append(
            Check(principal.label, f"{service.name}/{method.name}", expectation(principal.permissions, path), got)
        )
    return checks


def table(checks: Sequence[Check]) -> str:
    rows = [("principal", "rpc", "expected", "got")] + [
        (c.principal, c.rpc, str(c.expected), f"{c.got} {c.got.message[:80]!r}") for c in checks
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join("  ".join(cell.ljust(widths[i]) if i < 3 else cell for i, cell in enumerate(row)) for row in rows)


def test_every_principal_on_every_rpc(walk: Walk) -> None:
    hosted = {service.full_name for service in public_services()}
    assert hosted <= walk.host.keys(), f"public services no process serves: {sorted(hosted - walk.host.keys())}"
    cast = principals(walk)

    # Each principal is what the walk takes it for.
    for principal in cast:
        if principal.permissions is None:
            continue
        me = walk.auth().WhoAmI(auth_pb2.WhoAmIRequest(), metadata=principal.mint().metadata, timeout=UNARY_TIMEOUT_S)
        assert frozenset(me.permissions) == principal.permissions, principal.label

    with ThreadPoolExecutor(max_workers=len(cast)) as pool:
        checks = [c for result in pool.map(lambda p: walk_principal(walk, p), cast) for c in result]

    assert len(checks) == len(cast) * len(public_methods())
    mismatches = [c for c in checks if not c.ok]
    assert not mismatches, (
        f"{len(mismatches)} of {len(checks)} (principal x RPC) checks disagree with the declarations:\n"
        + table(mismatches)
    )
    # Every refusal the walk expected, it got; and the walk did not lock its administrator out.
    walk.auth().WhoAmI(auth_pb2.WhoAmIRequest(), metadata=walk.admin, timeout=UNARY_TIMEOUT_S)


# -- scoped API keys ----------------------------------------------------------------------------------


def refused(call: Callable[[], object]) -> Outcome:
    try:
        call()
    except grpc.RpcError as err:
        return outcome_of(err)
    return OK


SCOPE_RESTRICTED = Outcome(grpc.StatusCode.PERMISSION_DENIED, "SCOPE_RESTRICTED")
EVENT_NOT_FOUND = Outcome(grpc.StatusCode.NOT_FOUND, "EVENT_NOT_FOUND")


def brief(outcome: Outcome) -> Outcome:
    return Outcome(outcome.code, outcome.reason)


def append(
    walk: Walk, metadata: Sequence[tuple[str, str]], stream_id: str, events: Sequence[event_pb2.EventData]
) -> ingest_pb2.AppendEventsResponse:
    return walk.ingest().AppendEvents(
        ingest_pb2.AppendEventsRequest(stream_id=stream_id, expected_version=ANY, events=events),
        metadata=tuple(metadata),
        timeout=UNARY_TIMEOUT_S,
    )


def list_events(walk: Walk, metadata: Sequence[tuple[str, str]], **filter_fields: object) -> list[event_pb2.Event]:
    found: list[event_pb2.Event] = []
    token = ""
    while True:
        page = walk.query().ListEvents(
            query_pb2.ListEventsRequest(filter=event_pb2.EventFilter(**filter_fields), page_token=token),
            metadata=tuple(metadata),
            timeout=UNARY_TIMEOUT_S,
        )
        found += page.events
        token = page.next_page_token
        if not token:
            return found


def list_streams(walk: Walk, metadata: Sequence[tuple[str, str]], prefix: str = "") -> list[str]:
    found: list[str] = []
    token = ""
    while True:
        page = walk.query().ListStreams(
            query_pb2.ListStreamsRequest(stream_id_prefix=prefix, page_token=token),
            metadata=tuple(metadata),
            timeout=UNARY_TIMEOUT_S,
        )
        found += [s.stream_id for s in page.streams]
        token = page.next_page_token
        if not token:
            return found


def stream_events(walk: Walk, metadata: Sequence[tuple[str, str]], **filter_fields: object) -> list[event_pb2.Event]:
    request = query_pb2.StreamEventsRequest(filter=event_pb2.EventFilter(**filter_fields))
    return [
        e
        for batch in walk.query().StreamEvents(request, metadata=tuple(metadata), timeout=UNARY_TIMEOUT_S)
        for e in batch.events
    ]


def subscribe_until_caught_up(
    walk: Walk, metadata: Sequence[tuple[str, str]], **fields: object
) -> list[event_pb2.Event]:
    call = walk.query().Subscribe(
        query_pb2.SubscribeRequest(**fields),
        metadata=tuple(metadata),
        timeout=UNARY_TIMEOUT_S,
    )
    found: list[event_pb2.Event] = []
    try:
        for message in call:
            if message.WhichOneof("content") == "events":
                found += message.events.events
            elif message.WhichOneof("content") == "caught_up":
                return found
    finally:
        call.cancel()
    raise AssertionError("the subscription ended before catching up")


def batch_append_error(
    walk: Walk, metadata: Sequence[tuple[str, str]], stream_id: str, events: Sequence[event_pb2.EventData]
) -> Outcome:
    request = ingest_pb2.BatchAppendRequest(
        append=ingest_pb2.AppendEventsRequest(stream_id=stream_id, expected_version=ANY, events=events)
    )
    replies = list(walk.ingest().BatchAppend(iter([request]), metadata=tuple(metadata), timeout=UNARY_TIMEOUT_S))
    assert len(replies) == 1
    if replies[0].WhichOneof("result") == "success":
        return OK
    status = replies[0].error
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return Outcome(next(c for c in grpc.StatusCode if c.value[0] == status.code), info.reason)
    return Outcome(grpc.StatusCode.UNKNOWN, "", status.message)


def test_stream_prefix_scope(walk: Walk, unique: str) -> None:
    inside, outside = unique + "in-", unique + "out-"
    admin = walk.admin
    seeded = append(walk, admin, outside + "s", [event("Seeded", {"n": 1})])
    append(walk, admin, inside + "seeded", [event("Seeded", {"n": 2})])
    key = bearer(walk.create_key(role=auth_pb2.ROLE_DEVELOPER, stream_id_prefix=inside))

    # Writing: inside works, outside is refused (single and batched), and nothing is written outside.
    mine = append(walk, key, inside + "s", [event("Mine", {"n": 3})])
    assert mine.last_version == 1
    assert brief(refused(lambda: append(walk, key, outside + "s", [event("Mine")]))) == SCOPE_RESTRICTED
    assert brief(refused(lambda: append(walk, key, unique + "in", [event("Mine")]))) == SCOPE_RESTRICTED
    assert batch_append_error(walk, key, outside + "s", [event("Mine")]) == SCOPE_RESTRICTED
    assert batch_append_error(walk, key, inside + "b", [event("Mine")]) == OK
    assert [e.event_type for e in list_events(walk, admin, stream_id=outside + "s")] == ["Seeded"]

    # Reading one stream.
    def read(stream_id: str) -> query_pb2.ReadStreamResponse:
        return walk.query().ReadStream(
            query_pb2.ReadStreamRequest(stream_id=stream_id), metadata=key, timeout=UNARY_TIMEOUT_S
        )

    assert [e.event_id for e in read(inside + "s").events] == list(mine.event_ids)
    assert brief(refused(lambda: read(outside + "s"))) == SCOPE_RESTRICTED
    assert (
        brief(
            refused(
                lambda: walk.query().GetEntityState(
                    query_pb2.GetEntityStateRequest(stream_id=outside + "s"), metadata=key, timeout=UNARY_TIMEOUT_S
                )
            )
        )
        == SCOPE_RESTRICTED
    )

    # Listing without a prefix shows only the streams in scope; a wider or other prefix is refused.
    in_scope = {inside + "seeded", inside + "s", inside + "b"}
    assert set(list_streams(walk, key)) == in_scope
    assert set(list_streams(walk, key, inside)) == in_scope
    assert brief(refused(lambda: list_streams(walk, key, outside))) == SCOPE_RESTRICTED
    assert brief(refused(lambda: list_streams(walk, key, unique))) == SCOPE_RESTRICTED
    assert {e.stream_id for e in list_events(walk, key)} == in_scope
    assert brief(refused(lambda: list_events(walk, key, stream_id_prefix=outside))) == SCOPE_RESTRICTED
    assert brief(refused(lambda: list_events(walk, key, stream_id=outside + "s"))) == SCOPE_RESTRICTED
    assert {e.stream_id for e in stream_events(walk, key)} == in_scope
    assert {e.stream_id for e in subscribe_until_caught_up(walk, key)} == in_scope
    assert brief(refused(lambda: subscribe_until_caught_up(walk, key, stream_id_prefix=outside))) == SCOPE_RESTRICTED

    # An event outside the scope answers like an event that does not exist.
    def get(event_id: str) -> query_pb2.GetEventResponse:
        return walk.query().GetEvent(
            query_pb2.GetEventRequest(event_id=event_id), metadata=key, timeout=UNARY_TIMEOUT_S
        )

    assert get(mine.event_ids[0]).event.stream_id == inside + "s"
    assert brief(refused(lambda: get(seeded.event_ids[0]))) == EVENT_NOT_FOUND
    assert brief(refused(lambda: get(str(uuid.uuid4())))) == EVENT_NOT_FOUND


def test_event_type_scope(walk: Walk, unique: str) -> None:
    allowed, other = f"Allowed{unique[1:-1]}", f"Other{unique[1:-1]}"
    admin = walk.admin
    seeded = append(walk, admin, unique + "mixed", [event(allowed, {"n": 1}), event(other, {"n": 2})])
    key = bearer(walk.create_key(role=auth_pb2.ROLE_DEVELOPER, event_types=[allowed]))

    # Writing: only the allowed type; a batch with one other type writes nothing.
    mine = append(walk, key, unique + "k", [event(allowed, {"n": 3})])
    assert brief(refused(lambda: append(walk, key, unique + "k", [event(other)]))) == SCOPE_RESTRICTED
    assert brief(refused(lambda: append(walk, key, unique + "k", [event(allowed), event(other)]))) == SCOPE_RESTRICTED
    assert batch_append_error(walk, key, unique + "k", [event(other)]) == SCOPE_RESTRICTED
    assert [e.event_id for e in list_events(walk, admin, stream_id=unique + "k")] == list(mine.event_ids)

    # Listing narrows to the allowed type; asking for another type is refused.
    expected = {seeded.event_ids[0], mine.event_ids[0]}
    assert {e.event_id for e in list_events(walk, key, stream_id_prefix=unique)} == expected
    assert {e.event_type for e in list_events(walk, key)} == {allowed}
    assert brief(refused(lambda: list_events(walk, key, event_types=[other]))) == SCOPE_RESTRICTED
    assert {e.event_id for e in stream_events(walk, key, stream_id_prefix=unique)} == expected
    assert {e.event_id for e in subscribe_until_caught_up(walk, key, stream_id_prefix=unique)} == expected
    assert brief(refused(lambda: subscribe_until_caught_up(walk, key, event_types=[other]))) == SCOPE_RESTRICTED

    def get(event_id: str) -> query_pb2.GetEventResponse:
        return walk.query().GetEvent(
            query_pb2.GetEventRequest(event_id=event_id), metadata=key, timeout=UNARY_TIMEOUT_S
        )

    assert get(seeded.event_ids[0]).event.event_type == allowed
    assert brief(refused(lambda: get(seeded.event_ids[1]))) == EVENT_NOT_FOUND
    assert brief(refused(lambda: get(str(uuid.uuid4())))) == EVENT_NOT_FOUND


# -- scope leaks found by this walk (fixed; kept as regressions) ------------------------------------


def test_event_type_scope_holds_for_reads_of_one_stream(walk: Walk, unique: str) -> None:
    allowed, other = f"Allowed{unique[1:-1]}", f"Other{unique[1:-1]}"
    stream = unique + "mixed"
    append(walk, walk.admin, stream, [event(allowed, {"a": 1}), event(other, {"secret": 2})])
    key = bearer(walk.create_key(role=auth_pb2.ROLE_READ_ONLY, event_types=[allowed]))
    # ReadStream answers the stream's events of the key's types only.
    page = walk.query().ReadStream(query_pb2.ReadStreamRequest(stream_id=stream), metadata=key, timeout=UNARY_TIMEOUT_S)
    assert [(e.event_type, e.version) for e in page.events] == [(allowed, 1)]
    # Folded state mixes every type of the stream (and snapshots hold the mix), so such a key is refused.
    got = refused(
        lambda: walk.query().GetEntityState(
            query_pb2.GetEntityStateRequest(stream_id=stream), metadata=key, timeout=UNARY_TIMEOUT_S
        )
    )
    assert brief(got) == SCOPE_RESTRICTED


def test_out_of_scope_event_is_indistinguishable_from_an_absent_one(walk: Walk, unique: str) -> None:
    allowed, other = f"Allowed{unique[1:-1]}", f"Other{unique[1:-1]}"
    seeded = append(walk, walk.admin, unique + "out-s", [event(other)])
    keys = {
        "prefix-scoped": bearer(walk.create_key(role=auth_pb2.ROLE_READ_ONLY, stream_id_prefix=unique + "in-")),
        "type-scoped": bearer(walk.create_key(role=auth_pb2.ROLE_READ_ONLY, event_types=[allowed])),
    }

    def answer(key: tuple[tuple[str, str], ...], event_id: str) -> Outcome:
        got = refused(
            lambda: walk.query().GetEvent(
                query_pb2.GetEventRequest(event_id=event_id), metadata=key, timeout=UNARY_TIMEOUT_S
            )
        )
        # The id itself differs between the two; everything else must not.
        return Outcome(
            got.code,
            got.reason,
            got.message.replace(event_id, "<id>"),
            tuple((k, v.replace(event_id, "<id>")) for k, v in got.metadata),
        )

    differences = {}
    for label, key in keys.items():
        hidden, absent = answer(key, seeded.event_ids[0]), answer(key, str(uuid.uuid4()))
        assert brief(hidden) == brief(absent) == EVENT_NOT_FOUND
        if hidden != absent:
            differences[label] = (hidden, absent)
    assert not differences, differences
