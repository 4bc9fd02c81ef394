"""AdminService's tenant lifecycle, tenant statistics and audit log (mixed into AdminServicer).

Tenants live in storage (which allocates each its key prefix and refuses calls for inactive ones). Every
change is announced on the auth change feed, so every service forgets its cached copy within a second:
a deactivated tenant's calls then fail with TENANT_INACTIVE everywhere.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import grpc
from allsource.storage.v1 import model_pb2, records_pb2, storage_pb2
from allsource.v1 import admin_pb2, options_pb2, tenant_pb2

from shared.auth.principal import Principal, current
from shared.auth.state import NS_API_KEYS, NS_KEY_USAGE, NS_TENANT_KEYS
from shared.core import pagination
from shared.core.errors import AllSourceError, FailedPrecondition, InvalidArgument, PermissionDenied, Unauthenticated
from shared.core.reasons import Reason
from shared.core.tenant_ids import DEFAULT_TENANT, tenant_id_problem
from shared.core.text import CONTROL, timestamp_problem
from shared.core.timestamps import to_timestamp
from shared.core.wire import recast
from shared.tenancy.audit import NS_AUDIT
from shared.tenancy.tenants import QUOTA_FIELDS, metadata_violations, quota_usage, quotas_for

if TYPE_CHECKING:
    from services.admin.auth import AuthServicer
    from shared.storage.client import StorageClient

log = logging.getLogger(__name__)
audit = logging.getLogger("allsource.audit")
K = records_pb2.AuthChangeKind
UPDATABLE = frozenset({"display_name", "quota_preset", "quotas", "metadata", *(f"quotas.{q}" for q in QUOTA_FIELDS)})
_PRESETS = set(tenant_pb2.QuotaPreset.values()) - {tenant_pb2.QUOTA_PRESET_UNSPECIFIED}
MAX_AUDIT_SCAN = 10_000


def _display_name_problem(name: str) -> str | None:
    if len(name) > 200 or CONTROL.search(name):
        return "up to 200 characters without control characters"
    return None


class TenantAdmin:
    """The tenant RPCs of AdminService."""

    storage: StorageClient
    auth: AuthServicer

    if TYPE_CHECKING:  # services.admin.quotas.QuotaAdmin, which AdminServicer mixes in beside this class

        async def used_quotas(self, tenant_id: str, usage: storage_pb2.GetTenantUsageResponse) -> dict[str, int]: ...

        async def forget_limits(self, tenant_id: str) -> None: ...

    def _operator(self) -> Principal:
        principal = current()
        if principal is None:
            raise Unauthenticated("this call needs credentials", reason=Reason.MISSING_CREDENTIALS)
        return principal

    async def _get(self, tenant_id: str) -> tuple[tenant_pb2.Tenant, int]:
        reply = await self.storage.get_tenant(storage_pb2.GetTenantRequest(tenant_id=tenant_id))
        return recast(reply.tenant, tenant_pb2.Tenant), reply.revision

    async def _put(self, tenant: tenant_pb2.Tenant, expected_revision: int) -> None:
        await self.storage.put_tenant(
            storage_pb2.PutTenantRequest(
                tenant=recast(tenant, model_pb2.TenantRecord), expected_revision=expected_revision
            )
        )

    async def _changed(self, tenant_id: str) -> None:
        """Tell every service to forget its copy of the tenant."""
        await self.auth.feed.publish(K.AUTH_CHANGE_KIND_TENANT_CHANGED, tenant_id)

    async def _update(self, tenant_id: str, change: object, what: str) -> tenant_pb2.Tenant:
        """Read, change and write back a tenant (compare-and-set, retried on a concurrent change)."""
        for _ in range(10):
            tenant, revision = await self._get(tenant_id)
            change(tenant)  # type: ignore[operator]
            tenant.updated_at.CopyFrom(to_timestamp(time.time_ns()))
            try:
                await self._put(tenant, revision)
            except AllSourceError as exc:
                if exc.reason == Reason.RECORD_REVISION_MISMATCH:
                    continue
                raise
            await self._changed(tenant_id)
            audit.info(what, extra={"by": self._operator().ref, "tenant": tenant_id})
            return tenant
        raise FailedPrecondition("the tenant keeps changing; try again", reason=Reason.TENANT_CONTENDED)

    async def complete_default_tenant(self) -> None:
        """Give the default tenant (which storage makes at its first start, knowing only its id and status)
        its name and unlimited quotas, once."""
        tenant, revision = await self._get(DEFAULT_TENANT)
        if tenant.quota_preset != tenant_pb2.QUOTA_PRESET_UNSPECIFIED:
            return
        tenant.display_name = tenant.display_name or "Default"
        tenant.quota_preset = tenant_pb2.QUOTA_PRESET_UNLIMITED
        tenant.quotas.CopyFrom(quotas_for(tenant_pb2.QUOTA_PRESET_UNLIMITED))
        tenant.updated_at.CopyFrom(to_timestamp(time.time_ns()))
        try:
            await self._put(tenant, revision)
        except AllSourceError as exc:
            if exc.reason != Reason.RECORD_REVISION_MISMATCH:  # another admin replica did it meanwhile
                raise

    # -- lifecycle -----------------------------------------------------------------------------------

    async def CreateTenant(
        self, request: admin_pb2.CreateTenantRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.CreateTenantResponse:
        violations = []
        if problem := tenant_id_problem(request.tenant_id):
            violations.append(("tenant_id", problem))
        if problem := _display_name_problem(request.display_name):
            violations.append(("display_name", problem))
        preset = request.quota_preset or tenant_pb2.QUOTA_PRESET_FREE
        if preset not in _PRESETS:
            violations.append(("quota_preset", "must be a QuotaPreset"))
        violations += metadata_violations(dict(request.metadata), "metadata")
        if violations:
            raise InvalidArgument("the tenant is invalid", reason=Reason.INVALID_TENANT, violations=violations)
        now = to_timestamp(time.time_ns())
        tenant = tenant_pb2.Tenant(
            tenant_id=request.tenant_id,
            display_name=request.display_name or request.tenant_id,
            status=tenant_pb2.TENANT_STATUS_ACTIVE,
            quota_preset=preset,
            quotas=quotas_for(preset, request.quotas if request.HasField("quotas") else None),
            metadata=dict(request.metadata),
            created_at=now,
            updated_at=now,
        )
        await self._put(tenant, 0)
        await self._changed(tenant.tenant_id)  # services may have cached "no such tenant"
        audit.info("tenant created", extra={"by": self._operator().ref, "tenant": tenant.tenant_id})
        return admin_pb2.CreateTenantResponse(tenant=tenant)

    async def GetTenant(
        self, request: admin_pb2.GetTenantRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.GetTenantResponse:
        tenant, _ = await self._get(request.tenant_id)
        return admin_pb2.GetTenantResponse(tenant=tenant)

    async def ListTenants(
        self, request: admin_pb2.ListTenantsRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ListTenantsResponse:
        size = pagination.page_size(request.page_size, 100, 1000)
        # Bound to the tenant acted on, like every page token: an operator acting on another tenant
        # (x-allsource-tenant) starts its own listing.
        bound = pagination.fingerprint("ListTenants", self._operator().tenant_id)
        after = pagination.cursor_str(pagination.decode(request.page_token, bound), "t") if request.page_token else ""
        reply = await self.storage.list_tenants(storage_pb2.ListTenantsRequest(after=after, limit=size))
        response = admin_pb2.ListTenantsResponse(tenants=[recast(t, tenant_pb2.Tenant) for t in reply.tenants])
        if not reply.end and reply.tenants:
            response.next_page_token = pagination.encode(bound, {"t": reply.tenants[-1].tenant_id})
        return response

    async def UpdateTenant(
        self, request: admin_pb2.UpdateTenantRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.UpdateTenantResponse:
        paths = list(request.update_mask.paths)
        given = request.tenant
        violations = []
        if not paths:
            violations.append(("update_mask", "name the fields to change"))
        if len(paths) > len(UPDATABLE) or len(set(paths)) < len(paths):
            raise InvalidArgument(
                "the update mask is invalid",
                violations=[("update_mask", f"each of at most {len(UPDATABLE)} updatable fields, once")],
            )
        for i, path in enumerate(paths):
            if path not in UPDATABLE:
                violations.append((f"update_mask.paths[{i}]", f"{path!r} cannot be updated here"))
        if "display_name" in paths and (problem := _display_name_problem(given.display_name)):
            violations.append(("tenant.display_name", problem))
        if "quota_preset" in paths and given.quota_preset not in _PRESETS:
            violations.append(("tenant.quota_preset", "must be a QuotaPreset"))
        if "metadata" in paths:
            violations += metadata_violations(dict(given.metadata), "tenant.metadata")
        if violations:
            raise InvalidArgument("the update is invalid", reason=Reason.INVALID_TENANT, violations=violations)

        def change(tenant: tenant_pb2.Tenant) -> None:
            if "display_name" in paths:
                tenant.display_name = given.display_name or tenant.tenant_id
            if "quota_preset" in paths:
                tenant.quota_preset = given.quota_preset
                tenant.quotas.CopyFrom(quotas_for(given.quota_preset))
            if "quotas" in paths:
                tenant.quotas.CopyFrom(given.quotas)
            for path in paths:
                if path.startswith("quotas."):
                    name = path.split(".", 1)[1]
                    if given.quotas.HasField(name):
                        setattr(tenant.quotas, name, getattr(given.quotas, name))
                    else:
                        tenant.quotas.ClearField(name)  # unset: unlimited
            if "metadata" in paths:
                tenant.metadata.clear()
                tenant.metadata.update(dict(given.metadata))

        tenant = await self._update(given.tenant_id, change, "tenant updated")
        return admin_pb2.UpdateTenantResponse(tenant=tenant)

    async def DeactivateTenant(
        self, request: admin_pb2.DeactivateTenantRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.DeactivateTenantResponse:
        if request.tenant_id == DEFAULT_TENANT:
            raise FailedPrecondition("the default tenant cannot be deactivated", reason=Reason.DEFAULT_TENANT_PROTECTED)

        def change(tenant: tenant_pb2.Tenant) -> None:
            if tenant.status != tenant_pb2.TENANT_STATUS_INACTIVE:
                tenant.status = tenant_pb2.TENANT_STATUS_INACTIVE
                tenant.deactivated_at.CopyFrom(to_timestamp(time.time_ns()))

        tenant = await self._update(request.tenant_id, change, "tenant deactivated")
        return admin_pb2.DeactivateTenantResponse(tenant=tenant)

    async def ActivateTenant(
        self, request: admin_pb2.ActivateTenantRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ActivateTenantResponse:
        def change(tenant: tenant_pb2.Tenant) -> None:
            tenant.status = tenant_pb2.TENANT_STATUS_ACTIVE
            tenant.ClearField("deactivated_at")

        tenant = await self._update(request.tenant_id, change, "tenant activated")
        return admin_pb2.ActivateTenantResponse(tenant=tenant)

    async def DeleteTenant(
        self, request: admin_pb2.DeleteTenantRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.DeleteTenantResponse:
        tenant_id = request.tenant_id
        if not request.confirm_tenant_id or request.confirm_tenant_id != tenant_id:
            raise InvalidArgument(
                "confirm the deletion by repeating the tenant id in confirm_tenant_id",
                reason=Reason.DELETE_NOT_CONFIRMED,
                violations=[("confirm_tenant_id", "must equal tenant_id")],
            )
        if tenant_id == DEFAULT_TENANT:
            raise FailedPrecondition("the default tenant cannot be deleted", reason=Reason.DEFAULT_TENANT_PROTECTED)
        await self._get(tenant_id)  # NOT_FOUND before anything changes

        # First stop it everywhere (storage refuses its data at once; the services within a second), then
        # remove its API keys (they live outside its key range), then purge its range.
        def stop(tenant: tenant_pb2.Tenant) -> None:
            tenant.status = tenant_pb2.TENANT_STATUS_INACTIVE
            if not tenant.HasField("deactivated_at"):
                tenant.deactivated_at.CopyFrom(to_timestamp(time.time_ns()))

        await self._update(tenant_id, stop, "tenant deactivated for deletion")
        records = self.auth.records
        keys_deleted = 0
        after = ""
        while True:
            page = await records.list(tenant_id, NS_TENANT_KEYS, after, 1000)
            for key_id, _, _ in page:
                if await records.delete("", NS_API_KEYS, key_id):
                    keys_deleted += 1
                await records.delete("", NS_KEY_USAGE, key_id)
                await self.auth.feed.publish(K.AUTH_CHANGE_KIND_API_KEY_CHANGED, key_id)
            if len(page) < 1000:
                break
            after = page[-1][0]
        purged = await self.storage.delete_tenant(storage_pb2.DeleteTenantRequest(tenant_id=tenant_id))
        await self.forget_limits(tenant_id)
        await self._changed(tenant_id)
        audit.info(
            "tenant deleted",
            extra={"by": self._operator().ref, "tenant": tenant_id, "events": purged.events_deleted},
        )
        return admin_pb2.DeleteTenantResponse(
            events_deleted=purged.events_deleted,
            api_keys_deleted=keys_deleted,
            storage_keys_deleted=purged.keys_deleted,
        )

    # -- statistics ----------------------------------------------------------------------------------

    async def GetIndexStats(
        self, request: admin_pb2.GetIndexStatsRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.GetIndexStatsResponse:
        tenant_id = self._operator().tenant_id
        stats = await self.storage.get_index_stats(storage_pb2.GetIndexStatsRequest(tenant_id=tenant_id))
        # allsource.storage.v1.IndexStats mirrors allsource.v1.IndexStats field for field.
        indexes = [admin_pb2.IndexStats.FromString(i.SerializeToString()) for i in stats.indexes]
        return admin_pb2.GetIndexStatsResponse(tenant_id=tenant_id, indexes=indexes)

    async def GetTenantStats(
        self, request: admin_pb2.GetTenantStatsRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.GetTenantStatsResponse:
        tenant_id = self._operator().tenant_id
        usage = await self.storage.get_tenant_usage(storage_pb2.GetTenantUsageRequest(tenant_id=tenant_id))
        tenant, _ = await self._get(tenant_id)
        used = await self.used_quotas(tenant_id, usage)
        return admin_pb2.GetTenantStatsResponse(
            stats=tenant_pb2.TenantStats(
                tenant_id=tenant_id,
                events=usage.events,
                streams=usage.streams,
                storage_bytes=usage.storage_bytes,
                events_today=usage.events_today,
                events_this_hour=usage.events_this_hour,
                queries_this_hour=usage.queries_this_hour,
                api_keys=used["max_api_keys"],
                users=used["max_users"],
                quotas=quota_usage(tenant.quotas, used),
                measured_at=to_timestamp(time.time_ns()),
            )
        )

    # -- audit log -----------------------------------------------------------------------------------

    async def ListAuditEvents(
        self, request: admin_pb2.ListAuditEventsRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ListAuditEventsResponse:
        caller = self._operator()
        operator = options_pb2.PERMISSION_OPERATE in caller.permissions and not caller.home_tenant_id
        if operator:
            log_tenant, wanted = "", request.tenant_id
        else:
            # A tenant's administrator reads the copy kept in their own tenant.
            if request.tenant_id and request.tenant_id != caller.tenant_id:
                raise PermissionDenied(
                    "only operators read other tenants' audit events", reason=Reason.CROSS_TENANT_DENIED
                )
            log_tenant, wanted = caller.tenant_id, ""
        size = pagination.page_size(request.page_size, 100, 1000)
        if request.HasField("start_time") and (problem := timestamp_problem(request.start_time)):
            raise InvalidArgument(f"start_time {problem}", violations=[("start_time", problem)])
        start_ns = max(0, request.start_time.ToNanoseconds()) if request.HasField("start_time") else 0
        bound = pagination.fingerprint("ListAuditEvents", log_tenant, wanted, start_ns)
        if request.page_token:
            after = pagination.cursor_str(pagination.decode(request.page_token, bound), "a")
        elif start_ns > 0:
            after = f"{start_ns - 1:020d}~"  # sorts after every key before that time, before every key at it
        else:
            after = ""
        response = admin_pb2.ListAuditEventsResponse()
        scanned = 0
        exhausted = False
        while len(response.events) < size and scanned < MAX_AUDIT_SCAN:
            page = await self.auth.records.list(log_tenant, NS_AUDIT, after, 1000)
            stopped_early = False
            for i, (key, value, _) in enumerate(page):
                after = key
                scanned += 1
                event = tenant_pb2.AuditEvent.FromString(value)
                if not wanted or event.tenant_id == wanted:
                    response.events.append(event)
                    if len(response.events) == size:
                        stopped_early = i < len(page) - 1
                        break
            if len(page) < 1000 and not stopped_early:
                exhausted = True
                break
        if not exhausted:
            response.next_page_token = pagination.encode(bound, {"a": after})
        return response
