"""The tenant lifecycle end to end, against the four services as real processes.

CreateTenant / GetTenant / ListTenants, UpdateTenant with field masks, deactivation and activation (every
service refuses the tenant's calls, its live subscriptions end, its data is kept), DeleteTenant (checked
offline: not one key of the tenant is left in any column family), exact GetTenantStats (storage_bytes
compared with the bytes actually in the database), and the audit log of every lifecycle act.

Offline checks stop the storage process and open its RocksDB database read-only.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from allsource.storage.v1 import model_pb2, storage_pb2, storage_pb2_grpc
from allsource.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    ingest_pb2,
    ingest_pb2_grpc,
    query_pb2,
    query_pb2_grpc,
    tenant_pb2,
)
from allsource_client import event
from google.protobuf import field_mask_pb2, timestamp_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from rocksdict import AccessType, Options, Rdict

from services.storage import keys
from services.storage.rocksdb_backend import DATA_FAMILIES, FAMILIES
from services.suite import SERVICE_NAMES
from shared.auth.scopes import SCOPE_KEY, SYSTEM_TENANT, ScopeSigner
from shared.core.errors import error_info
from shared.core.wire import recast
from shared.limits.windows import WINDOWED, window_index
from tests.harness import Suite

FAST = {"ALLSOURCE_AUTH__ARGON2_MEMORY_KIB": "8192", "ALLSOURCE_AUTH__ARGON2_TIME_COST": "1"}
DEV_SERVICE_SECRET = b"development-only-service-secret"  # the development preset's, public by design
PASSWORD = "correct horse battery staple"
MiB = 1024 * 1024
READ_ORDERS = query_pb2.ReadStreamRequest(stream_id="orders-1")
Metadata = tuple[tuple[str, str], ...]

# The presets as tenant.proto documents them.
FREE = tenant_pb2.TenantQuotas(
    max_events_per_day=10_000,
    max_events_per_hour=2_000,
    max_events_per_minute=200,
    max_storage_bytes=100 * MiB,
    max_queries_per_hour=1_000,
    max_api_keys=2,
    max_users=5,
    max_projections=1,
    max_pipelines=1,
    max_consumer_groups=2,
    max_event_bytes=64 * 1024,
    max_result_bytes=MiB,
    max_request_units_per_second=100,
    max_request_units_burst=500,
)
PROFESSIONAL = tenant_pb2.TenantQuotas(
    max_events_per_day=1_000_000,
    max_events_per_hour=100_000,
    max_events_per_minute=10_000,
    max_storage_bytes=10 * 1024 * MiB,
    max_queries_per_hour=100_000,
    max_api_keys=25,
    max_users=100,
    max_projections=10,
    max_pipelines=10,
    max_consumer_groups=50,
    max_event_bytes=MiB,
    max_result_bytes=4 * MiB,
    max_request_units_per_second=2_000,
    max_request_units_burst=10_000,
)


# -- fixtures -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    running = Suite(tmp_path_factory.mktemp("tenant-lifecycle"), extra_env=FAST)
    try:
        running.start_all()
        yield running
    finally:
        running.stop_all()


@pytest.fixture(scope="module")
def offline_suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    """A suite whose storage the tests stop to read the database offline."""
    running = Suite(tmp_path_factory.mktemp("tenant-offline"), extra_env=FAST)
    try:
        running.start_all()
        yield running
    finally:
        running.stop_all()


# -- helpers --------------------------------------------------------------------------------------------


@dataclass
class Stubs:
    """Stubs of every public service, each call carrying the given metadata."""

    suite: Suite
    metadata: Metadata
    channels: list[grpc.Channel] = field(default_factory=list)

    def _channel(self, process: str) -> grpc.Channel:
        channel = self.suite.channel(process, self.metadata)
        self.channels.append(channel)
        return channel

    def __post_init__(self) -> None:
        self.admin = admin_pb2_grpc.AdminServiceStub(self._channel("admin"))
        self.auth = auth_pb2_grpc.AuthServiceStub(self._channel("admin"))
        self.ingest = ingest_pb2_grpc.IngestServiceStub(self._channel("ingest"))
        self.query = query_pb2_grpc.QueryServiceStub(self._channel("query"))

    def close(self) -> None:
        for channel in self.channels:
            channel.close()


def bearer(secret: str) -> Metadata:
    return (("authorization", f"Bearer {secret}"),)


def acting_on(suite: Suite, tenant_id: str) -> Metadata:
    """The operator's credentials, acting on a tenant."""
    return (*suite.auth_metadata(), ("x-allsource-tenant", tenant_id))


def operator(suite: Suite) -> Stubs:
    return Stubs(suite, suite.auth_metadata())


def refusal(call: Callable[..., Any], *args: Any, **kw: Any) -> tuple[str, str, list[tuple[str, str]]]:
    """(status code name, ErrorInfo reason, BadRequest field violations) of a call that must fail."""
    kw.setdefault("timeout", 10)
    try:
        result = call(*args, **kw)
        if hasattr(result, "__next__"):  # server streaming: the error comes while reading
            for _ in result:
                pass
    except grpc.RpcError as err:
        return decode(err)
    raise AssertionError(f"{getattr(call, '_method', call)} succeeded; a refusal was expected")


def decode(err: grpc.RpcError) -> tuple[str, str, list[tuple[str, str]]]:
    status = rpc_status.from_call(err)
    reason, violations = "", []
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations = [(v.field, v.description) for v in bad.field_violations]
    return err.code().name, reason, violations


def eventually_refused(
    expected: tuple[str, str], call: Callable[..., Any], *args: Any, timeout: float = 5.0, **kw: Any
) -> tuple[str, str]:
    """Poll until the call fails with (code, reason) (services forget cached tenants within a second)."""
    deadline = time.monotonic() + timeout
    got: tuple[str, str] = ("OK", "")
    while time.monotonic() < deadline:
        try:
            result = call(*args, timeout=5, **kw)
            if hasattr(result, "__next__"):
                for _ in result:
                    pass
            got = ("OK", "")
        except grpc.RpcError as err:
            code, reason, _ = decode(err)
            got = (code, reason)
            if got == expected:
                return got
        time.sleep(0.1)
    return got


def eventually_ok(call: Callable[..., Any], *args: Any, timeout: float = 20.0, **kw: Any) -> Any:
    """Poll until the call succeeds; returns its result."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call(*args, timeout=5, **kw)
        except grpc.RpcError as err:
            if time.monotonic() > deadline:
                raise AssertionError(f"still failing: {decode(err)}") from None
        time.sleep(0.1)


def suffix() -> str:
    return uuid.uuid4().hex[:8]


@dataclass
class TenantCreds:
    tenant_id: str
    username: str
    key: Metadata
    key_id: str


def make_tenant(suite: Suite, tenant_id: str, **create: Any) -> TenantCreds:
    """Create a tenant with an admin user and an admin API key (made by the operator acting on it)."""
    op = operator(suite)
    try:
        op.admin.CreateTenant(admin_pb2.CreateTenantRequest(tenant_id=tenant_id, **create), timeout=10)
    finally:
        op.close()
    on = Stubs(suite, acting_on(suite, tenant_id))
    try:
        username = f"admin-{suffix()[:6]}"
        on.auth.CreateUser(
            auth_pb2.CreateUserRequest(username=username, password=PASSWORD, role=auth_pb2.ROLE_ADMIN), timeout=10
        )
        made = on.auth.CreateApiKey(auth_pb2.CreateApiKeyRequest(name="admin", role=auth_pb2.ROLE_ADMIN), timeout=10)
    finally:
        on.close()
    return TenantCreds(tenant_id, username, bearer(made.secret), made.api_key.key_id)


def login(suite: Suite, tenant_id: str, username: str, password: str) -> auth_pb2.LoginResponse:
    with suite.raw_channel("admin") as channel:
        return auth_pb2_grpc.AuthServiceStub(channel).Login(
            auth_pb2.LoginRequest(tenant_id=tenant_id, username=username, password=password), timeout=10
        )


def login_refusal(suite: Suite, tenant_id: str, username: str, password: str) -> tuple[str, str]:
    with suite.raw_channel("admin") as channel:
        code, reason, _ = refusal(
            auth_pb2_grpc.AuthServiceStub(channel).Login,
            auth_pb2.LoginRequest(tenant_id=tenant_id, username=username, password=password),
        )
    return code, reason


def append(stubs: Stubs, stream_id: str, count: int, event_type: str = "Happened", request_id: str = "") -> Any:
    return stubs.ingest.AppendEvents(
        ingest_pb2.AppendEventsRequest(
            stream_id=stream_id,
            events=[event(event_type, {"n": i, "stream": stream_id}) for i in range(count)],
            request_id=request_id,
        ),
        timeout=10,
    )


def read_ids(stubs: Stubs, stream_id: str) -> list[str]:
    reply = stubs.query.ReadStream(query_pb2.ReadStreamRequest(stream_id=stream_id, page_size=1000), timeout=10)
    assert not reply.next_page_token
    return [e.event_id for e in reply.events]


def audit_entries(stubs: Stubs, **filters: Any) -> list[tenant_pb2.AuditEvent]:
    """Every audit entry the caller may list (an operator: the suite-wide log; a tenant: its own copy)."""
    out: list[tenant_pb2.AuditEvent] = []
    token = ""
    while True:
        page = stubs.admin.ListAuditEvents(
            admin_pb2.ListAuditEventsRequest(page_size=1000, page_token=token, **filters), timeout=10
        )
        out += list(page.events)
        token = page.next_page_token
        if not token:
            return out


def settled(suite: Suite, tenant: TenantCreds, queries: int = 0, since_ns: int = 0) -> None:
    """Wait until what the calls made so far write in the background has reached storage: every audit
    entry naming the tenant is complete in the suite-wide log and, those begun since `since_ns` (when a
    tenant of that id was created again: its creation), in the tenant's own copy; and its query count,
    added about once a second, has reached `queries` (unless the hour turned meanwhile)."""
    op, mine = operator(suite), Stubs(suite, tenant.key)
    hour = time.time_ns() // keys.HOUR_NS

    def done() -> bool:
        named = audit_entries(op, tenant_id=tenant.tenant_id)
        if any(e.outcome == "PENDING" for e in named):
            return False
        copied = {e.audit_id for e in audit_entries(mine) if e.outcome != "PENDING"}
        if not {e.audit_id for e in named if e.time.ToNanoseconds() >= since_ns} <= copied:
            return False
        if queries and time.time_ns() // keys.HOUR_NS == hour:
            stats = mine.admin.GetTenantStats(admin_pb2.GetTenantStatsRequest(), timeout=10).stats
            return stats.queries_this_hour >= queries
        return True

    try:
        suite.wait_until(done, timeout=15, what=f"the background writes for {tenant.tenant_id}")
    finally:
        op.close()
        mine.close()


def serving(suite: Suite, name: str) -> bool:
    with suite.raw_channel(name) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=SERVICE_NAMES[name]), timeout=1
            )
        except grpc.RpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING


@contextmanager
def offline(suite: Suite) -> Iterator[dict[str, Any]]:
    """Stop storage and open its database read-only; storage runs again (and serves) afterwards."""
    suite.stop("storage")
    db = Rdict(
        str(suite.data_dir / "rocksdb"),
        Options(raw_mode=True),
        column_families={name: Options(raw_mode=True) for name in FAMILIES},
        access_type=AccessType.read_only(),
    )
    try:
        yield {name: db.get_column_family(name) for name in FAMILIES}
    finally:
        db.close()
        suite.start("storage")
        for name in ("ingest", "query", "admin"):
            suite.wait_until(lambda n=name: serving(suite, n), timeout=20)


def scan(cf: Any, prefix: bytes) -> list[tuple[bytes, bytes]]:
    """Every (key, value) of a column family whose key starts with prefix."""
    out = []
    for key, value in cf.items(from_key=prefix):
        if not key.startswith(prefix):
            break
        out.append((key, value))
    return out


def tenant_number(db: dict[str, Any], tenant_id: str) -> int | None:
    raw = db["meta"].get(keys.META_TENANT + tenant_id.encode())
    return None if raw is None else keys.TENANT.unpack(raw)[0]


def tenant_keys(db: dict[str, Any], number: int) -> dict[str, list[tuple[bytes, bytes]]]:
    """A tenant's keys in every data column family, and its per-tenant meta keys."""
    prefix = keys.tenant_prefix(number)
    found = {name: scan(db[name], prefix) for name in DATA_FAMILIES}
    found["meta"] = [kv for p in keys.META_TENANT_PREFIXES for kv in scan(db["meta"], p + prefix)]
    return found


# -- 1. create, get, list -------------------------------------------------------------------------------


def test_create_get_and_list_tenants(suite: Suite) -> None:
    s = suffix()
    op = operator(suite)
    try:
        free = op.admin.CreateTenant(
            admin_pb2.CreateTenantRequest(
                tenant_id=f"free-{s}",
                display_name="Free Company",
                quota_preset=tenant_pb2.QUOTA_PRESET_FREE,
                metadata={"plan": "free", "region": "eu-west-1"},
            ),
            timeout=10,
        ).tenant
        assert free.tenant_id == f"free-{s}"
        assert free.display_name == "Free Company"
        assert free.status == tenant_pb2.TENANT_STATUS_ACTIVE
        assert free.quota_preset == tenant_pb2.QUOTA_PRESET_FREE
        assert free.quotas == FREE
        assert dict(free.metadata) == {"plan": "free", "region": "eu-west-1"}
        assert free.HasField("created_at") and free.created_at == free.updated_at
        assert abs(free.created_at.ToNanoseconds() - time.time_ns()) < 60 * 10**9
        assert not free.HasField("deactivated_at")

        pro = op.admin.CreateTenant(
            admin_pb2.CreateTenantRequest(
                tenant_id=f"pro-{s}",
                display_name="Pro Company",
                quota_preset=tenant_pb2.QUOTA_PRESET_PROFESSIONAL,
                quotas=tenant_pb2.TenantQuotas(max_api_keys=3),  # overrides the preset's 25
            ),
            timeout=10,
        ).tenant
        expected_pro = tenant_pb2.TenantQuotas()
        expected_pro.CopyFrom(PROFESSIONAL)
        expected_pro.max_api_keys = 3
        assert pro.quota_preset == tenant_pb2.QUOTA_PRESET_PROFESSIONAL
        assert pro.quotas == expected_pro

        custom = op.admin.CreateTenant(
            admin_pb2.CreateTenantRequest(
                tenant_id=f"custom-{s}",
                quota_preset=tenant_pb2.QUOTA_PRESET_CUSTOM,
                quotas=tenant_pb2.TenantQuotas(max_events_per_day=500, max_event_bytes=2048),
            ),
            timeout=10,
        ).tenant
        assert custom.quota_preset == tenant_pb2.QUOTA_PRESET_CUSTOM
        assert custom.quotas == tenant_pb2.TenantQuotas(max_events_per_day=500, max_event_bytes=2048)
        for unset in ("max_storage_bytes", "max_queries_per_hour", "max_api_keys", "max_projections", "max_pipelines"):
            assert not custom.quotas.HasField(unset), unset  # unlimited

        plain = op.admin.CreateTenant(admin_pb2.CreateTenantRequest(tenant_id=f"plain-{s}"), timeout=10).tenant
        assert plain.display_name == f"plain-{s}"  # defaults to the id
        assert plain.quota_preset == tenant_pb2.QUOTA_PRESET_FREE  # unset means FREE
        assert plain.quotas == FREE
        assert dict(plain.metadata) == {}

        op.admin.CreateTenant(admin_pb2.CreateTenantRequest(tenant_id=f"extra-{s}"), timeout=10)

        # GetTenant returns exactly what was created.
        for created in (free, pro, custom, plain):
            got = op.admin.GetTenant(admin_pb2.GetTenantRequest(tenant_id=created.tenant_id), timeout=10).tenant
            assert got == created

        # A taken id: ALREADY_EXISTS, and the tenant is unchanged.
        assert refusal(
            op.admin.CreateTenant,
            admin_pb2.CreateTenantRequest(tenant_id=f"free-{s}", display_name="Impostor"),
        )[:2] == ("ALREADY_EXISTS", "TENANT_ALREADY_EXISTS")
        assert op.admin.GetTenant(admin_pb2.GetTenantRequest(tenant_id=f"free-{s}"), timeout=10).tenant == free
        assert refusal(op.admin.CreateTenant, admin_pb2.CreateTenantRequest(tenant_id="default"))[:2] == (
            "ALREADY_EXISTS",
            "TENANT_ALREADY_EXISTS",
        )

        # Invalid ids: INVALID_ARGUMENT with a violation on tenant_id, and nothing created.
        bad_ids = [
            "ab",
            "Upper-case",
            "1starts-with-digit",
            "system",
            "admin",
            "ends-with-",
            "under_score",
            "",
            "x" * 64,
        ]
        for bad in bad_ids:
            code, reason, violations = refusal(op.admin.CreateTenant, admin_pb2.CreateTenantRequest(tenant_id=bad))
            assert (code, reason) == ("INVALID_ARGUMENT", "INVALID_TENANT"), bad
            assert [f for f, _ in violations] == ["tenant_id"], (bad, violations)
            if bad:
                assert refusal(op.admin.GetTenant, admin_pb2.GetTenantRequest(tenant_id=bad))[:2] == (
                    "NOT_FOUND",
                    "TENANT_NOT_FOUND",
                ), bad
        assert "reserved" in refusal(op.admin.CreateTenant, admin_pb2.CreateTenantRequest(tenant_id="system"))[2][0][1]

        # Pages of two: every tenant exactly once, in id order, the default tenant among them.
        seen: list[str] = []
        token, pages = "", 0
        while True:
            page = op.admin.ListTenants(admin_pb2.ListTenantsRequest(page_size=2, page_token=token), timeout=10)
            pages += 1
            assert 1 <= len(page.tenants) <= 2
            if page.next_page_token:
                assert len(page.tenants) == 2
            seen += [t.tenant_id for t in page.tenants]
            if f"free-{s}" in [t.tenant_id for t in page.tenants]:
                assert next(t for t in page.tenants if t.tenant_id == f"free-{s}") == free
            token = page.next_page_token
            if not token:
                break
        mine = {f"{p}-{s}" for p in ("free", "pro", "custom", "plain", "extra")}
        assert len(seen) == len(set(seen)), f"a tenant listed twice: {seen}"
        assert seen == sorted(seen)
        assert mine | {"default"} <= set(seen)
        assert pages == (len(seen) + 1) // 2
        # One page holding all of them agrees.
        whole = op.admin.ListTenants(admin_pb2.ListTenantsRequest(page_size=1000), timeout=10)
        assert [t.tenant_id for t in whole.tenants] == seen and not whole.next_page_token
        # A page token is bound to ListTenants: garbage is refused.
        assert refusal(op.admin.ListTenants, admin_pb2.ListTenantsRequest(page_token="garbage"))[0] == (
            "INVALID_ARGUMENT"
        )
    finally:
        op.close()


# -- 2. update with a field mask ------------------------------------------------------------------------


def test_update_tenant_changes_only_the_masked_fields(suite: Suite) -> None:
    tenant_id = f"upd-{suffix()}"
    op = operator(suite)

    def update(paths: list[str], **fields: Any) -> tenant_pb2.Tenant:
        given = tenant_pb2.Tenant(tenant_id=tenant_id, **fields)
        reply = op.admin.UpdateTenant(
            admin_pb2.UpdateTenantRequest(tenant=given, update_mask=field_mask_pb2.FieldMask(paths=paths)), timeout=10
        )
        stored = op.admin.GetTenant(admin_pb2.GetTenantRequest(tenant_id=tenant_id), timeout=10).tenant
        assert reply.tenant == stored
        return stored

    try:
        created = op.admin.CreateTenant(
            admin_pb2.CreateTenantRequest(
                tenant_id=tenant_id,
                display_name="Before",
                quota_preset=tenant_pb2.QUOTA_PRESET_PROFESSIONAL,
                metadata={"owner": "alice"},
            ),
            timeout=10,
        ).tenant

        # display_name only: quotas, preset, metadata and status untouched even though the request carries
        # other values for them.
        after = update(
            ["display_name"],
            display_name="After",
            quotas=tenant_pb2.TenantQuotas(max_events_per_day=1),
            quota_preset=tenant_pb2.QUOTA_PRESET_FREE,
            metadata={"owner": "mallory"},
            status=tenant_pb2.TENANT_STATUS_INACTIVE,
        )
        assert after.display_name == "After"
        assert after.quotas == PROFESSIONAL
        assert after.quota_preset == tenant_pb2.QUOTA_PRESET_PROFESSIONAL
        assert dict(after.metadata) == {"owner": "alice"}
        assert after.status == tenant_pb2.TENANT_STATUS_ACTIVE
        assert after.created_at == created.created_at
        assert after.updated_at.ToNanoseconds() >= created.updated_at.ToNanoseconds()

        # One quota: the display name (and every other quota) kept.
        one = update(
            ["quotas.max_events_per_day"],
            display_name="Ignored",
            quotas=tenant_pb2.TenantQuotas(max_events_per_day=42, max_api_keys=1),
        )
        expected = tenant_pb2.TenantQuotas()
        expected.CopyFrom(PROFESSIONAL)
        expected.max_events_per_day = 42
        assert one.display_name == "After"
        assert one.quotas == expected
        assert dict(one.metadata) == {"owner": "alice"}

        # quotas.<name> left unset in the request: that quota becomes unlimited.
        cleared = update(["quotas.max_api_keys"])
        expected.ClearField("max_api_keys")
        assert cleared.quotas == expected and not cleared.quotas.HasField("max_api_keys")

        # quotas: all replaced.
        replaced = update(["quotas"], quotas=tenant_pb2.TenantQuotas(max_storage_bytes=5 * MiB))
        assert replaced.quotas == tenant_pb2.TenantQuotas(max_storage_bytes=5 * MiB)
        assert replaced.display_name == "After"

        # quota_preset: the preset's quotas.
        preset = update(["quota_preset"], quota_preset=tenant_pb2.QUOTA_PRESET_FREE)
        assert preset.quota_preset == tenant_pb2.QUOTA_PRESET_FREE and preset.quotas == FREE

        # metadata: replaced as a whole; display name and quotas kept.
        meta = update(["metadata"], metadata={"team": "billing"})
        assert dict(meta.metadata) == {"team": "billing"}
        assert meta.display_name == "After" and meta.quotas == FREE

        # Unknown or read-only paths, and an empty mask: INVALID_ARGUMENT, nothing changed.
        for paths, field_name in (
            (["status"], "update_mask.paths[0]"),
            (["display_name", "bogus"], "update_mask.paths[1]"),
            (["tenant_id"], "update_mask.paths[0]"),
            (["quotas.no_such_quota"], "update_mask.paths[0]"),
            ([], "update_mask"),
        ):
            code, reason, violations = refusal(
                op.admin.UpdateTenant,
                admin_pb2.UpdateTenantRequest(
                    tenant=tenant_pb2.Tenant(tenant_id=tenant_id, display_name="Nope"),
                    update_mask=field_mask_pb2.FieldMask(paths=paths),
                ),
            )
            assert (code, reason) == ("INVALID_ARGUMENT", "INVALID_TENANT"), paths
            assert field_name in [f for f, _ in violations], (paths, violations)
        assert op.admin.GetTenant(admin_pb2.GetTenantRequest(tenant_id=tenant_id), timeout=10).tenant == meta

        # A tenant that does not exist.
        assert refusal(
            op.admin.UpdateTenant,
            admin_pb2.UpdateTenantRequest(
                tenant=tenant_pb2.Tenant(tenant_id=f"nope-{suffix()}", display_name="x"),
                update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
            ),
        )[:2] == ("NOT_FOUND", "TENANT_NOT_FOUND")
    finally:
        op.close()


# -- 3. deactivate and activate -------------------------------------------------------------------------


def test_deactivated_tenant_is_refused_everywhere_and_keeps_its_data(suite: Suite) -> None:
    s = suffix()
    tenant = make_tenant(suite, f"sleepy-{s}")
    bystander = make_tenant(suite, f"awake-{s}")
    op = operator(suite)
    mine = Stubs(suite, tenant.key)
    other = Stubs(suite, bystander.key)
    on_it = Stubs(suite, acting_on(suite, tenant.tenant_id))
    try:
        written = list(append(mine, "orders-1", 3).event_ids)
        append(other, "orders-1", 2)
        assert read_ids(mine, "orders-1") == written
        session = login(suite, tenant.tenant_id, tenant.username, PASSWORD).tokens  # works while active
        as_user = Stubs(suite, bearer(session.access_token))

        # A live subscription of the tenant, caught up.
        messages: list[query_pb2.SubscribeResponse] = []
        ended: list[tuple[tuple[str, str, list[tuple[str, str]]], float]] = []
        caught_up = threading.Event()
        call = mine.query.Subscribe(query_pb2.SubscribeRequest(), timeout=30)

        def follow() -> None:
            try:
                for message in call:
                    messages.append(message)
                    if message.HasField("caught_up"):
                        caught_up.set()
                ended.append((("OK", "", []), time.monotonic()))
            except grpc.RpcError as err:
                ended.append((decode(err), time.monotonic()))

        reader = threading.Thread(target=follow, daemon=True)
        reader.start()
        assert caught_up.wait(10), "the subscription never caught up"
        assert [e.event_id for m in messages for e in m.events.events] == written

        # The default tenant is protected.
        assert refusal(op.admin.DeactivateTenant, admin_pb2.DeactivateTenantRequest(tenant_id="default"))[:2] == (
            "FAILED_PRECONDITION",
            "DEFAULT_TENANT_PROTECTED",
        )

        before = time.time_ns()
        deactivated = op.admin.DeactivateTenant(
            admin_pb2.DeactivateTenantRequest(tenant_id=tenant.tenant_id), timeout=10
        ).tenant
        at = time.monotonic()
        assert deactivated.status == tenant_pb2.TENANT_STATUS_INACTIVE
        assert deactivated.HasField("deactivated_at")
        assert before - 10**9 <= deactivated.deactivated_at.ToNanoseconds() <= time.time_ns() + 10**9
        got = op.admin.GetTenant(admin_pb2.GetTenantRequest(tenant_id=tenant.tenant_id), timeout=10).tenant
        assert got == deactivated
        # Deactivating again changes nothing (the first deactivation time is kept).
        again = op.admin.DeactivateTenant(admin_pb2.DeactivateTenantRequest(tenant_id=tenant.tenant_id), timeout=10)
        assert again.tenant.deactivated_at == deactivated.deactivated_at

        # The live subscription ends, within a few seconds, with TENANT_INACTIVE.
        reader.join(5)
        assert not reader.is_alive(), "the deactivated tenant's subscription is still open"
        (code, reason, _), when = ended[0]
        assert (code, reason) == ("FAILED_PRECONDITION", "TENANT_INACTIVE")
        assert when - at < 3

        inactive = ("FAILED_PRECONDITION", "TENANT_INACTIVE")
        # Ingest, query and admin (auth) refuse the tenant's key.
        assert (
            eventually_refused(
                inactive,
                mine.ingest.AppendEvents,
                ingest_pb2.AppendEventsRequest(stream_id="orders-1", events=[event("Happened")]),
            )
            == inactive
        )
        assert eventually_refused(inactive, mine.query.ReadStream, READ_ORDERS) == inactive
        assert eventually_refused(inactive, mine.query.Subscribe, query_pb2.SubscribeRequest()) == inactive
        assert eventually_refused(inactive, mine.auth.WhoAmI, auth_pb2.WhoAmIRequest()) == inactive
        assert eventually_refused(inactive, mine.auth.ListApiKeys, auth_pb2.ListApiKeysRequest()) == inactive
        assert eventually_refused(inactive, mine.admin.GetTenantStats, admin_pb2.GetTenantStatsRequest()) == inactive
        # So does the operator acting on it.
        assert eventually_refused(inactive, on_it.query.ReadStream, READ_ORDERS) == inactive
        # A user's access token, and its refresh token.
        assert eventually_refused(inactive, as_user.auth.WhoAmI, auth_pb2.WhoAmIRequest()) == inactive
        assert eventually_refused(inactive, as_user.query.ReadStream, READ_ORDERS) == inactive
        with suite.raw_channel("admin") as channel:
            assert (
                refusal(
                    auth_pb2_grpc.AuthServiceStub(channel).RefreshToken,
                    auth_pb2.RefreshTokenRequest(refresh_token=session.refresh_token),
                )[:2]
                == inactive
            )
        # Login: the correct password gives TENANT_INACTIVE; a wrong one says nothing about the tenant.
        assert login_refusal(suite, tenant.tenant_id, tenant.username, PASSWORD) == inactive
        assert login_refusal(suite, tenant.tenant_id, tenant.username, "wrong password, surely") == (
            "UNAUTHENTICATED",
            "INVALID_CREDENTIALS",
        )

        # Other tenants are unaffected.
        assert append(other, "orders-1", 1).last_version == 3
        assert len(read_ids(other, "orders-1")) == 3
        assert other.auth.WhoAmI(auth_pb2.WhoAmIRequest(), timeout=10).tenant_id == bystander.tenant_id
        login(suite, bystander.tenant_id, bystander.username, PASSWORD)

        # Activated again: the same key reads back the events written before.
        activated = op.admin.ActivateTenant(admin_pb2.ActivateTenantRequest(tenant_id=tenant.tenant_id), timeout=10)
        assert activated.tenant.status == tenant_pb2.TENANT_STATUS_ACTIVE
        assert not activated.tenant.HasField("deactivated_at")
        assert (
            op.admin.GetTenant(admin_pb2.GetTenantRequest(tenant_id=tenant.tenant_id), timeout=10).tenant
            == activated.tenant
        )
        assert eventually_ok(mine.query.ReadStream, READ_ORDERS).events
        assert read_ids(mine, "orders-1") == written
        appended = eventually_ok(
            mine.ingest.AppendEvents, ingest_pb2.AppendEventsRequest(stream_id="orders-1", events=[event("Happened")])
        )
        assert (appended.first_version, appended.first_position) == (4, 4)
        assert eventually_ok(mine.auth.WhoAmI, auth_pb2.WhoAmIRequest()).tenant_id == tenant.tenant_id
        assert login(suite, tenant.tenant_id, tenant.username, PASSWORD).tokens.access_token
        # The session from before the deactivation goes on: its access token works, and its refresh token
        # (refused while the tenant was inactive) still refreshes.
        assert eventually_ok(as_user.auth.WhoAmI, auth_pb2.WhoAmIRequest()).name == tenant.username
        with suite.raw_channel("admin") as channel:
            try:
                refreshed = auth_pb2_grpc.AuthServiceStub(channel).RefreshToken(
                    auth_pb2.RefreshTokenRequest(refresh_token=session.refresh_token), timeout=10
                )
            except grpc.RpcError as err:
                raise AssertionError(
                    f"the refresh token refused while the tenant was inactive no longer works: {decode(err)[:2]}"
                ) from None
        assert refreshed.tokens.access_token
    finally:
        for stubs in (op, mine, other, on_it, as_user):
            stubs.close()


def storage_methods_of(suite: Suite, request_ids: set[str]) -> dict[str, list[str]]:
    """The storage RPCs (method names) made on behalf of each request id, as storage's access log has
    them, once every line logged before this call was made has reached the log (a barrier call's line)."""
    barrier = f"barrier-{uuid.uuid4().hex}"
    op = operator(suite)
    try:
        op.query.ListStreams(
            query_pb2.ListStreamsRequest(page_size=1), timeout=10, metadata=(("x-request-id", barrier),)
        )
    finally:
        op.close()
    suite.wait_until(lambda: barrier in suite.log("storage"), timeout=10)
    methods: dict[str, list[str]] = {request_id: [] for request_id in request_ids}
    for line in suite.log("storage").splitlines():
        if line.startswith("{") and '"msg":"rpc"' in line:
            entry = json.loads(line)
            if entry.get("request_id") in methods:
                methods[entry["request_id"]].append(entry["method"].rsplit("/", 1)[-1])
    return methods


def test_public_services_refuse_an_inactive_tenant_without_asking_storage(suite: Suite) -> None:
    """Each public service's own tenant check refuses a deactivated tenant: the refusal comes before the
    call's storage RPC is made, so it holds even where storage would let the call through (the storage
    side is tested on its own below). The services learn of the deactivation from the change feed, so
    this waits for the first refusal that never reached storage.

    Mutation caught: TenantResolution.check (shared/stages/tenant.py) without its TENANT_INACTIVE branch:
    "ingest AppendEvents: never refused by the service itself; last: FAILED_PRECONDITION TENANT_INACTIVE
    (its Append ran)", the same for query ReadStream, and "admin ListApiKeys: ...; last: OK (its
    ListRecords ran)"."""
    tenant = make_tenant(suite, f"idle-{suffix()}")
    mine = Stubs(suite, tenant.key)
    op = operator(suite)
    try:
        append(mine, "orders-1", 1)
        op.admin.DeactivateTenant(admin_pb2.DeactivateTenantRequest(tenant_id=tenant.tenant_id), timeout=10)
        probes: dict[str, tuple[Callable[..., Any], Any, str]] = {
            "ingest AppendEvents": (
                mine.ingest.AppendEvents,
                ingest_pb2.AppendEventsRequest(stream_id="orders-1", events=[event("Happened")]),
                "Append",
            ),
            "query ReadStream": (mine.query.ReadStream, READ_ORDERS, "ReadStream"),
            "admin ListApiKeys": (mine.auth.ListApiKeys, auth_pb2.ListApiKeysRequest(), "ListRecords"),
        }
        inactive = ("FAILED_PRECONDITION", "TENANT_INACTIVE")
        last: dict[str, str] = {}
        deadline = time.monotonic() + 10
        while probes and time.monotonic() < deadline:
            sent, answered = {}, {}
            for name, (rpc, request, _) in probes.items():
                sent[name] = f"idle-{uuid.uuid4().hex}"
                try:
                    answered[name] = refusal(rpc, request, metadata=(("x-request-id", sent[name]),))[:2]
                except AssertionError:
                    answered[name] = ("OK", "")
            seen = storage_methods_of(suite, set(sent.values()))
            for name, request_id in sent.items():
                storage_rpc = probes[name][2]
                if answered[name] == inactive and storage_rpc not in seen[request_id]:
                    del probes[name]  # refused by the service itself
                else:
                    ran = f"its {storage_rpc} ran" if storage_rpc in seen[request_id] else "storage not asked"
                    last[name] = f"{' '.join(filter(None, answered[name]))} ({ran})"
        never = [f"{name}: never refused by the service itself; last: {last[name]}" for name in probes]
        assert not never, "\n".join(never)
    finally:
        mine.close()
        op.close()


def test_storage_refuses_an_inactive_tenant_on_its_own(suite: Suite) -> None:
    """Storage refuses a deactivated tenant's data calls whatever the public services let through: called
    directly with a genuine scope for the tenant, each answers FAILED_PRECONDITION TENANT_INACTIVE (an
    append operation in its outcome). The controls: the same calls while the tenant is active, and the
    admin service's system scope after (that is how an inactive tenant is managed; appends and
    subscriptions excepted), are served.

    Mutation caught: StorageServicer._check and Append (services/storage/servicer.py) without
    check_tenant_usable: "served for the inactive tenant: ['Append', 'GetEvent', 'ReadStream', ...]"."""
    tenant = make_tenant(suite, f"dormant-{suffix()}")
    mine = Stubs(suite, tenant.key)
    op = operator(suite)
    try:
        (event_id,) = append(mine, "orders-1", 1).event_ids
    finally:
        mine.close()
    t = tenant.tenant_id
    appended = recast(
        ingest_pb2.AppendEventsRequest(stream_id="orders-1", events=[event("Happened")]), model_pb2.AppendInput
    )
    calls: dict[str, Any] = {
        "Append": storage_pb2.AppendRequest(operations=[storage_pb2.AppendOperation(tenant_id=t, request=appended)]),
        "GetEvent": storage_pb2.GetEventRequest(tenant_id=t, event_id=event_id),
        "ReadStream": storage_pb2.ReadStreamRequest(tenant_id=t, stream_id="orders-1"),
        "ReadEvents": storage_pb2.ReadEventsRequest(tenant_id=t),
        "ListStreams": storage_pb2.ListStreamsRequest(tenant_id=t),
        "GetStream": storage_pb2.GetStreamRequest(tenant_id=t, stream_id="orders-1"),
        "GetSnapshot": storage_pb2.GetSnapshotRequest(tenant_id=t, stream_id="orders-1"),
        "PutSnapshot": storage_pb2.PutSnapshotRequest(tenant_id=t, stream_id="orders-1", version=1, state=b"{}"),
        "Subscribe": storage_pb2.SubscribeRequest(tenant_id=t),
    }

    def answers(scope: str) -> dict[str, tuple[str, str]]:
        out = {}
        with suite.raw_channel("storage") as channel:
            stub = storage_pb2_grpc.StorageServiceStub(channel)
            for name, request in calls.items():
                try:
                    if name == "Append":
                        request.operations[0].scope = scope
                        outcome = stub.Append(request, metadata=((SCOPE_KEY, scope),), timeout=10).outcomes[0]
                        info = error_info(outcome.error) if outcome.WhichOneof("result") == "error" else None
                        out[name] = ("ERROR", info.reason if info else "") if info else ("OK", "")
                        continue
                    reply = getattr(stub, name)(request, metadata=((SCOPE_KEY, scope),), timeout=10)
                    if name == "Subscribe":
                        next(iter(reply))  # the first message (events) came: served
                        reply.cancel()
                    out[name] = ("OK", "")
                except grpc.RpcError as err:
                    out[name] = decode(err)[:2]
        return out

    tenant_scope = ScopeSigner(DEV_SERVICE_SECRET, "query", 60).mint(t, "user:someone")
    system_scope = ScopeSigner(DEV_SERVICE_SECRET, "admin", 60).mint(SYSTEM_TENANT, "system")
    try:
        active = answers(tenant_scope)
        assert set(active.values()) == {("OK", "")}, f"the control failed while active: {active}"
        op.admin.DeactivateTenant(admin_pb2.DeactivateTenantRequest(tenant_id=t), timeout=10)
        inactive = answers(tenant_scope)
        served = [name for name, answer in inactive.items() if answer[1] != "TENANT_INACTIVE"]
        assert not served, f"served for the inactive tenant: {served} ({inactive})"
        assert {code for code, _ in inactive.values()} == {"FAILED_PRECONDITION", "ERROR"}, inactive
        # Nobody appends to or follows an inactive tenant, the admin service included.
        del calls["Append"], calls["Subscribe"]
        managed = answers(system_scope)
        assert set(managed.values()) == {("OK", "")}, managed
    finally:
        op.close()


# -- 4. delete ------------------------------------------------------------------------------------------


def test_delete_tenant_purges_every_key_and_the_id_starts_afresh(offline_suite: Suite) -> None:
    suite = offline_suite
    s = suffix()
    victim = make_tenant(suite, f"victim-{s}")
    keeper = make_tenant(suite, f"keeper-{s}")
    op = operator(suite)
    mine = Stubs(suite, victim.key)
    kept = Stubs(suite, keeper.key)
    try:
        # A second key of the victim.
        second = mine.auth.CreateApiKey(
            auth_pb2.CreateApiKeyRequest(name="reader", role=auth_pb2.ROLE_READ_ONLY), timeout=10
        )
        append(mine, "orders-1", 3, "OrderPlaced", request_id=f"req-{s}")
        append(mine, "orders-2", 2, "OrderShipped")
        keeper_ids = list(append(kept, "orders-1", 4).event_ids)
        assert len(read_ids(mine, "orders-1")) == 3
        session = login(suite, victim.tenant_id, victim.username, PASSWORD).tokens

        # Not confirmed, or confirmed with another id: refused, nothing deleted.
        for confirm in ("", f"keeper-{s}", f"victim-{s}x"):
            code, reason, violations = refusal(
                op.admin.DeleteTenant,
                admin_pb2.DeleteTenantRequest(tenant_id=victim.tenant_id, confirm_tenant_id=confirm),
            )
            assert (code, reason) == ("INVALID_ARGUMENT", "DELETE_NOT_CONFIRMED"), confirm
            assert [f for f, _ in violations] == ["confirm_tenant_id"]
        got = op.admin.GetTenant(admin_pb2.GetTenantRequest(tenant_id=victim.tenant_id), timeout=10).tenant
        assert got.status == tenant_pb2.TENANT_STATUS_ACTIVE
        assert len(read_ids(mine, "orders-1")) == 3
        assert mine.auth.WhoAmI(auth_pb2.WhoAmIRequest(), timeout=10).tenant_id == victim.tenant_id
        # The default tenant cannot be deleted; an unknown one is NOT_FOUND.
        assert refusal(
            op.admin.DeleteTenant, admin_pb2.DeleteTenantRequest(tenant_id="default", confirm_tenant_id="default")
        )[:2] == ("FAILED_PRECONDITION", "DEFAULT_TENANT_PROTECTED")
        ghost = f"ghost-{s}"
        assert refusal(op.admin.DeleteTenant, admin_pb2.DeleteTenantRequest(tenant_id=ghost, confirm_tenant_id=ghost))[
            :2
        ] == ("NOT_FOUND", "TENANT_NOT_FOUND")

        settled(suite, victim, queries=2)  # its two reads and the audit outcomes above, written in the background

        # Offline, before: the victim's number and every key it owns.
        with offline(suite) as db:
            number = tenant_number(db, victim.tenant_id)
            keeper_number = tenant_number(db, keeper.tenant_id)
            assert number is not None and keeper_number is not None and number != keeper_number
            owned = tenant_keys(db, number)
            keeper_before = tenant_keys(db, keeper_number)
            seq_before = keys.unpack_u64(db["meta"].get(keys.META_TENANT_SEQ))
        assert len(owned["events"]) == 5 and len(owned["streams"]) == 2 and len(owned["stream_idx"]) == 5
        assert len(owned["id_idx"]) == 5 and len(owned["type_idx"]) == 5 and len(owned["requests"]) == 1
        assert owned["records"], "the victim's users and key index live in its range"
        owned_count = sum(len(v) for v in owned.values()) + 2  # + tenant/<id> and tenantrec/<id>

        deleted = eventually_ok(
            op.admin.DeleteTenant,
            admin_pb2.DeleteTenantRequest(tenant_id=victim.tenant_id, confirm_tenant_id=victim.tenant_id),
        )
        assert deleted.events_deleted == 5
        assert deleted.api_keys_deleted == 2
        assert deleted.storage_keys_deleted == owned_count

        # Gone: GetTenant, ListTenants, its keys, its users, the operator acting on it.
        assert refusal(op.admin.GetTenant, admin_pb2.GetTenantRequest(tenant_id=victim.tenant_id))[:2] == (
            "NOT_FOUND",
            "TENANT_NOT_FOUND",
        )
        listed = op.admin.ListTenants(admin_pb2.ListTenantsRequest(page_size=1000), timeout=10)
        assert victim.tenant_id not in [t.tenant_id for t in listed.tenants]
        unauthenticated = ("UNAUTHENTICATED", "INVALID_API_KEY")
        assert eventually_refused(unauthenticated, mine.query.ReadStream, READ_ORDERS) == unauthenticated
        assert (
            eventually_refused(
                unauthenticated,
                mine.ingest.AppendEvents,
                ingest_pb2.AppendEventsRequest(stream_id="orders-1", events=[event("E")]),
            )
            == unauthenticated
        )
        assert eventually_refused(unauthenticated, mine.auth.WhoAmI, auth_pb2.WhoAmIRequest()) == unauthenticated
        reader = Stubs(suite, bearer(second.secret))
        try:
            assert eventually_refused(unauthenticated, reader.auth.WhoAmI, auth_pb2.WhoAmIRequest()) == unauthenticated
        finally:
            reader.close()
        assert login_refusal(suite, victim.tenant_id, victim.username, PASSWORD) == (
            "UNAUTHENTICATED",
            "INVALID_CREDENTIALS",
        )
        as_user = Stubs(suite, bearer(session.access_token))
        stale_session = ("UNAUTHENTICATED", "USER_NOT_FOUND")
        try:
            assert eventually_refused(stale_session, as_user.auth.WhoAmI, auth_pb2.WhoAmIRequest()) == stale_session
        finally:
            as_user.close()
        on_it = Stubs(suite, acting_on(suite, victim.tenant_id))
        try:
            not_found = ("NOT_FOUND", "TENANT_NOT_FOUND")
            assert eventually_refused(not_found, on_it.query.ReadStream, READ_ORDERS) == not_found
            assert eventually_refused(not_found, on_it.auth.ListUsers, auth_pb2.ListUsersRequest()) == not_found
        finally:
            on_it.close()
        # Deleting it again: NOT_FOUND.
        assert refusal(
            op.admin.DeleteTenant,
            admin_pb2.DeleteTenantRequest(tenant_id=victim.tenant_id, confirm_tenant_id=victim.tenant_id),
        )[:2] == ("NOT_FOUND", "TENANT_NOT_FOUND")
        # The keeper is untouched.
        assert read_ids(kept, "orders-1") == keeper_ids

        # The id again: a new, empty tenant.
        recreated_ns = time.time_ns()
        again = make_tenant(suite, victim.tenant_id)
        fresh = Stubs(suite, again.key)
        try:
            # (services forget their cached "no such tenant" within a second of the creation)
            empty = ("NOT_FOUND", "STREAM_NOT_FOUND")
            assert eventually_refused(empty, fresh.query.ReadStream, READ_ORDERS) == empty
            assert list(fresh.query.ListEvents(query_pb2.ListEventsRequest(), timeout=10).events) == []
            first = append(fresh, "orders-1", 1)
            assert (first.first_position, first.first_version) == (1, 1)
            assert len(fresh.auth.ListApiKeys(auth_pb2.ListApiKeysRequest(), timeout=10).api_keys) == 1
            assert [u.username for u in fresh.auth.ListUsers(auth_pb2.ListUsersRequest(), timeout=10).users] == [
                again.username
            ]
        finally:
            fresh.close()
        # The old tenant's session does not come back with the id.
        as_user = Stubs(suite, bearer(session.access_token))
        try:
            assert refusal(as_user.auth.WhoAmI, auth_pb2.WhoAmIRequest())[:2] == stale_session
            assert refusal(as_user.query.ReadStream, READ_ORDERS)[0] == ("UNAUTHENTICATED")
        finally:
            as_user.close()
        with suite.raw_channel("admin") as channel:
            assert (
                refusal(
                    auth_pb2_grpc.AuthServiceStub(channel).RefreshToken,
                    auth_pb2.RefreshTokenRequest(refresh_token=session.refresh_token),
                )[0]
                == "UNAUTHENTICATED"
            )
        # Whatever was on its way lands before the check (in the new tenant, never in the old range).
        settled(suite, again, since_ns=recreated_ns)

        # Offline, after: not one key of the old number anywhere; the id maps to a new number.
        with offline(suite) as db:
            left = {name: found for name, found in tenant_keys(db, number).items() if found}
            assert not left, f"keys of the deleted tenant remain: {left}"
            mentions = sorted(k for k in db["meta"].keys() if victim.tenant_id.encode() in k)
            assert mentions == sorted(
                [keys.META_TENANT + victim.tenant_id.encode(), keys.META_TENANT_RECORD + victim.tenant_id.encode()]
            )
            new_number = tenant_number(db, victim.tenant_id)
            assert new_number is not None and new_number > number and new_number > seq_before
            assert keys.unpack_u64(db["meta"].get(keys.META_TENANT_SEQ)) == new_number
            keeper_after = tenant_keys(db, keeper_number)
        for name in ("events", "streams", "stream_idx", "type_idx", "id_idx"):
            assert keeper_after[name] == keeper_before[name], name
        assert read_ids(kept, "orders-1") == keeper_ids
    finally:
        for stubs in (op, mine, kept):
            stubs.close()


# -- 5. statistics --------------------------------------------------------------------------------------


def test_tenant_stats_are_exact_and_survive_a_restart(offline_suite: Suite) -> None:
    suite = offline_suite
    tenant = make_tenant(suite, f"stats-{suffix()}")  # FREE preset; one user, one key
    mine = Stubs(suite, tenant.key)
    try:
        mine.auth.CreateApiKey(auth_pb2.CreateApiKeyRequest(name="reader", role=auth_pb2.ROLE_READ_ONLY), timeout=10)
        hour = time.time_ns() // keys.HOUR_NS
        # 37 events over 4 streams, in 7 appends (two carrying request ids).
        plan = [("s-a", 10, "r1"), ("s-b", 6, ""), ("s-b", 4, "r2"), ("s-c", 9, ""), ("s-c", 1, ""), ("s-d", 5, ""),
                ("s-d", 2, "")]  # fmt: skip
        event_ids = []
        for stream_id, count, request_id in plan:
            reply = append(mine, stream_id, count, f"Type{count % 3}", request_id=request_id)
            event_ids += list(reply.event_ids)
        assert len(event_ids) == 37
        # Exactly 5 query calls.
        mine.query.ReadStream(query_pb2.ReadStreamRequest(stream_id="s-a"), timeout=10)
        mine.query.ReadStream(query_pb2.ReadStreamRequest(stream_id="s-b"), timeout=10)
        mine.query.GetEvent(query_pb2.GetEventRequest(event_id=event_ids[0]), timeout=10)
        mine.query.ListEvents(query_pb2.ListEventsRequest(page_size=100), timeout=10)
        mine.query.ListStreams(query_pb2.ListStreamsRequest(), timeout=10)

        def stats() -> tenant_pb2.TenantStats:
            return mine.admin.GetTenantStats(admin_pb2.GetTenantStatsRequest(), timeout=10).stats

        settled(suite, tenant, queries=5)  # query usage reaches storage about once a second
        first = stats()
        same_hour = time.time_ns() // keys.HOUR_NS == hour

        assert first.tenant_id == tenant.tenant_id
        assert first.events == 37
        assert first.streams == 4
        assert first.events_today == 37
        if same_hour:
            assert first.events_this_hour == 37
            assert first.queries_this_hour == 5
        assert first.api_keys == 2
        assert first.users == 1
        assert abs(first.measured_at.ToNanoseconds() - time.time_ns()) < 60 * 10**9
        assert first.storage_bytes > 0
        quotas = {q.quota: q for q in first.quotas}
        assert [q.quota for q in first.quotas] == [f.name for f in tenant_pb2.TenantQuotas.DESCRIPTOR.fields]
        expected_used = {
            "max_events_per_day": 37,
            "max_storage_bytes": first.storage_bytes,
            "max_queries_per_hour": first.queries_this_hour,
            "max_api_keys": 2,
            "max_projections": 0,
            "max_pipelines": 0,
            "max_event_bytes": 0,
        }
        for name, used in expected_used.items():
            q = quotas[name]
            assert q.HasField("limit") and q.limit == getattr(FREE, name), name
            assert q.used == used, name
            if name == "max_event_bytes":
                assert not q.HasField("utilization_percent")
            else:
                assert q.utilization_percent == pytest.approx(used / getattr(FREE, name) * 100), name
        assert quotas["max_events_per_day"].utilization_percent == pytest.approx(0.37)
        assert quotas["max_api_keys"].utilization_percent == pytest.approx(100.0)

        # The operator acting on the tenant sees the same figures.
        on_it = Stubs(suite, acting_on(suite, tenant.tenant_id))
        try:
            seen = on_it.admin.GetTenantStats(admin_pb2.GetTenantStatsRequest(), timeout=10).stats
        finally:
            on_it.close()
        assert (seen.tenant_id, seen.events, seen.streams, seen.api_keys, seen.users) == (
            tenant.tenant_id,
            37,
            4,
            2,
            1,
        )
        settled(suite, tenant)  # that call was audited: its copy in the tenant's records counts too
        first = stats()
        taken_ns = time.time_ns()

        # storage_bytes is exactly the bytes of the tenant's keys and values in the data column families.
        with offline(suite) as db:
            number = tenant_number(db, tenant.tenant_id)
            assert number is not None
            owned = tenant_keys(db, number)
            measured = {name: sum(len(k) + len(v) for k, v in owned[name]) for name in DATA_FAMILIES}
            assert len(owned["events"]) == 37 and len(owned["streams"]) == 4 and len(owned["requests"]) == 2
        assert first.storage_bytes == sum(measured.values()), (first.storage_bytes, measured)

        # After the restart: the same figures.
        after = eventually_ok(mine.admin.GetTenantStats, admin_pb2.GetTenantStatsRequest()).stats
        for name in ("tenant_id", "events", "streams", "storage_bytes", "events_today", "api_keys", "users"):
            assert getattr(after, name) == getattr(first, name), name
        if time.time_ns() // keys.HOUR_NS == hour:
            assert (after.events_this_hour, after.queries_this_hour) == (
                first.events_this_hour,
                first.queries_this_hour,
            )
        # A windowed quota starts again at each window (a restart that crosses a minute sees that one at 0).
        now_ns = time.time_ns()
        windowed = {
            name for name, length in WINDOWED.items() if window_index(length, now_ns) != window_index(length, taken_ns)
        }

        def quota_figures(stats: tenant_pb2.TenantStats) -> list[tuple[str, int, int]]:
            return [(q.quota, q.limit, q.used) for q in stats.quotas if q.quota not in windowed]

        assert quota_figures(after) == quota_figures(first)
        # And they keep counting: one more event.
        append(mine, "s-a", 1)
        assert stats().events == 38 and stats().streams == 4 and stats().events_today == 38
    finally:
        mine.close()


# -- 6. audit -------------------------------------------------------------------------------------------


def test_lifecycle_acts_and_acting_on_a_tenant_are_audited(suite: Suite) -> None:
    tenant_id = f"audited-{suffix()}"
    op = operator(suite)
    me = op.auth.WhoAmI(auth_pb2.WhoAmIRequest(), timeout=10)
    start = time.time_ns()
    acts: list[tuple[str, str, str, str]] = []  # request id, action, outcome, reason

    def rid(action: str, outcome: str = "OK", reason: str = "") -> Metadata:
        request_id = f"audit-{uuid.uuid4().hex}"
        acts.append((request_id, action, outcome, reason))
        return (("x-request-id", request_id),)

    a = "/allsource.v1.AdminService/"
    on_it = Stubs(suite, acting_on(suite, tenant_id))
    try:
        op.admin.CreateTenant(
            admin_pb2.CreateTenantRequest(tenant_id=tenant_id), timeout=10, metadata=rid(a + "CreateTenant")
        )
        op.admin.UpdateTenant(
            admin_pb2.UpdateTenantRequest(
                tenant=tenant_pb2.Tenant(tenant_id=tenant_id, display_name="Audited"),
                update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
            ),
            timeout=10,
            metadata=rid(a + "UpdateTenant"),
        )
        on_it.ingest.AppendEvents(
            ingest_pb2.AppendEventsRequest(stream_id="audited-1", events=[event("Touched")]),
            timeout=10,
            metadata=rid("/allsource.v1.IngestService/AppendEvents"),
        )
        on_it.query.ReadStream(
            query_pb2.ReadStreamRequest(stream_id="audited-1"),
            timeout=10,
            metadata=rid("/allsource.v1.QueryService/ReadStream"),
        )
        op.admin.DeactivateTenant(
            admin_pb2.DeactivateTenantRequest(tenant_id=tenant_id), timeout=10, metadata=rid(a + "DeactivateTenant")
        )
        op.admin.ActivateTenant(
            admin_pb2.ActivateTenantRequest(tenant_id=tenant_id), timeout=10, metadata=rid(a + "ActivateTenant")
        )
        # A failed act is audited with its code and reason.
        refusal(
            op.admin.DeleteTenant,
            admin_pb2.DeleteTenantRequest(tenant_id=tenant_id, confirm_tenant_id="someone-else"),
            metadata=rid(a + "DeleteTenant", "INVALID_ARGUMENT", "DELETE_NOT_CONFIRMED"),
        )
        # A read that is not audited (GetTenant is neither audited nor acting on another tenant).
        op.admin.GetTenant(admin_pb2.GetTenantRequest(tenant_id=tenant_id), timeout=10, metadata=rid("not audited"))
        not_audited = acts.pop()[0]
        op.admin.DeleteTenant(
            admin_pb2.DeleteTenantRequest(tenant_id=tenant_id, confirm_tenant_id=tenant_id),
            timeout=10,
            metadata=rid(a + "DeleteTenant"),
        )
        end = time.time_ns()
        wanted = {request_id for request_id, *_ in acts}

        def entries(**filters: Any) -> list[tenant_pb2.AuditEvent]:
            out, token = [], ""
            while True:
                page = op.admin.ListAuditEvents(
                    admin_pb2.ListAuditEventsRequest(page_size=50, page_token=token, **filters), timeout=10
                )
                out += list(page.events)
                token = page.next_page_token
                if not token:
                    return out

        since = timestamp_pb2.Timestamp()
        since.FromNanoseconds(start)
        deadline = time.monotonic() + 10
        while True:
            found = [e for e in entries(start_time=since) if e.request_id in wanted | {not_audited}]
            if (len(found) >= len(acts) and all(e.outcome != "PENDING" for e in found)) or time.monotonic() > deadline:
                break
            time.sleep(0.2)

        assert not [e for e in found if e.request_id == not_audited], "GetTenant should not be audited"
        by_request = {e.request_id: e for e in found}
        assert len(found) == len(by_request) == len(acts), [(e.action, e.outcome) for e in found]
        problems = []
        for request_id, action, outcome, reason in acts:
            entry = by_request[request_id]
            got = (entry.action, entry.tenant_id, entry.outcome, entry.reason)
            if got != (action, tenant_id, outcome, reason):
                problems.append(f"{action}: got (action, tenant, outcome, reason) {got}")
            assert entry.actor == f"key:{me.subject}"
            assert entry.actor_name == me.name
            assert entry.actor_tenant_id == "default"
            assert start <= entry.time.ToNanoseconds() <= end
            assert entry.peer and entry.audit_id
        # In the order the acts happened (ids sort by time).
        assert [e.request_id for e in found] == [request_id for request_id, *_ in acts]
        assert [e.audit_id for e in found] == sorted(e.audit_id for e in found)
        # Filtering by the tenant gives the same entries.
        names = {request_id: action for request_id, action, *_ in acts}
        filtered = [names.get(e.request_id, e.request_id) for e in entries(tenant_id=tenant_id, start_time=since)]
        if filtered != [action for _, action, *_ in acts]:
            problems.append(f"ListAuditEvents(tenant_id={tenant_id!r}) lists {filtered}")
        assert not problems, "\n".join(problems)
    finally:
        op.close()
        on_it.close()


def test_tenant_admin_sees_operator_acts_on_its_own_tenant(suite: Suite) -> None:
    tenant = make_tenant(suite, f"watched-{suffix()}")  # the operator created its user and key acting on it
    mine = Stubs(suite, tenant.key)
    op = operator(suite)
    on_it = Stubs(suite, acting_on(suite, tenant.tenant_id))
    try:
        request_id = f"peek-{uuid.uuid4().hex}"
        on_it.query.ListStreams(query_pb2.ListStreamsRequest(), timeout=10, metadata=(("x-request-id", request_id),))
        deadline = time.monotonic() + 10
        while True:
            events = list(mine.admin.ListAuditEvents(admin_pb2.ListAuditEventsRequest(), timeout=10).events)
            peek = [e for e in events if e.request_id == request_id]
            if (peek and peek[0].outcome == "OK") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert [(e.action, e.tenant_id, e.outcome) for e in peek] == [
            ("/allsource.v1.QueryService/ListStreams", tenant.tenant_id, "OK")
        ]
        actions = [e.action for e in events]
        assert "/allsource.v1.AuthService/CreateUser" in actions and "/allsource.v1.AuthService/CreateApiKey" in actions
        assert {e.tenant_id for e in events} == {tenant.tenant_id}
        # The tenant's own acts are not operator acts; and it cannot read another tenant's log.
        assert refusal(mine.admin.ListAuditEvents, admin_pb2.ListAuditEventsRequest(tenant_id="default"))[:2] == (
            "PERMISSION_DENIED",
            "CROSS_TENANT_DENIED",
        )
    finally:
        for stubs in (mine, op, on_it):
            stubs.close()


def test_audit_names_the_tenant_a_lifecycle_call_acts_on_and_signing_key_rotation_is_audited(suite: Suite) -> None:
    """A lifecycle call names its tenant in the request: that tenant is the one acted on, whatever the
    x-allsource-tenant header says. Rotating the suite's signing key is an operator's audited act."""
    s = suffix()
    victim, bystander = make_tenant(suite, f"victim-{s}"), make_tenant(suite, f"bystander-{s}")
    op = operator(suite)
    via_other = Stubs(suite, acting_on(suite, bystander.tenant_id))
    update_id, rotate_id = f"upd-{uuid.uuid4().hex}", f"rot-{uuid.uuid4().hex}"
    try:
        via_other.admin.UpdateTenant(
            admin_pb2.UpdateTenantRequest(
                tenant=tenant_pb2.Tenant(tenant_id=victim.tenant_id, display_name="Renamed"),
                update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
            ),
            timeout=10,
            metadata=(("x-request-id", update_id),),
        )
        op.auth.RotateSigningKey(
            auth_pb2.RotateSigningKeyRequest(), timeout=10, metadata=(("x-request-id", rotate_id),)
        )
        # A tenant's own administrator may not rotate the suite's signing key.
        mine = Stubs(suite, victim.key)
        try:
            code, reason, _ = refusal(mine.auth.RotateSigningKey, auth_pb2.RotateSigningKeyRequest())
            assert (code, reason) == ("PERMISSION_DENIED", "PERMISSION_DENIED")
        finally:
            mine.close()

        def audited(request_id: str) -> tenant_pb2.AuditEvent | None:
            listed = op.admin.ListAuditEvents(admin_pb2.ListAuditEventsRequest(page_size=1000), timeout=10).events
            return next((e for e in listed if e.request_id == request_id and e.outcome != "PENDING"), None)

        deadline = time.monotonic() + 10
        while (audited(update_id) is None or audited(rotate_id) is None) and time.monotonic() < deadline:
            time.sleep(0.2)
        update, rotate = audited(update_id), audited(rotate_id)
        assert update is not None and update.tenant_id == victim.tenant_id and update.outcome == "OK"
        assert rotate is not None and rotate.action == "/allsource.v1.AuthService/RotateSigningKey"
        assert rotate.outcome == "OK"
    finally:
        op.close()
        via_other.close()
