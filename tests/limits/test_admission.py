"""Derived from the descriptors: every public RPC declares what it costs against rate limits, and every
one passes the admission stage, paying that cost (so no RPC escapes the limits, and none is refused for
lack of a declaration)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from allsource.v1 import admin_pb2, auth_pb2, event_pb2, ingest_pb2, options_pb2, query_pb2, tenant_pb2
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor

from shared.auth import rbac
from shared.auth.principal import Principal
from shared.config.settings import LimitsSettings
from shared.core.errors import AllSourceError
from shared.limits.book import LimitBook
from shared.limits.governor import Governor, plan_var
from shared.limits.limiter import MemoryLimiter
from shared.rpc.chain import Call, MethodInfo
from shared.stages.admission import Admission

PUBLIC_MODULES = (ingest_pb2, query_pb2, admin_pb2, auth_pb2)
C = options_pb2


def public_methods() -> list[tuple[str, MethodDescriptor]]:
    return [
        (f"/{service.full_name}/{method.name}", method)
        for module in PUBLIC_MODULES
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    ]


def test_every_public_rpc_declares_its_cost_and_the_cost_fits_its_shape() -> None:
    requirements = rbac.requirements(s for m in PUBLIC_MODULES for s in m.DESCRIPTOR.services_by_name.values())
    problems = []
    for path, method in public_methods():
        cost = requirements[path].cost
        streaming = method.client_streaming or method.server_streaming
        fields = method.input_type.fields_by_name
        expected = (
            {C.RATE_COST_STREAM, C.RATE_COST_CALL}
            if streaming
            else {C.RATE_COST_PAGE}
            if "page_token" in fields or {"event_ids", "reads"} & set(fields)  # pages and batch reads: per result
            else {C.RATE_COST_EVENTS}
            if "events" in fields
            else {C.RATE_COST_CALL}
        )
        if cost not in expected:
            problems.append(
                f"{path}: {C.RateCost.Name(cost)}, expected one of {sorted(C.RateCost.Name(c) for c in expected)}"
            )
    assert not problems, "\n".join(problems)


class _Context:
    def __init__(self) -> None:
        self.initial: tuple[tuple[str, str], ...] = ()
        self.trailing: tuple[tuple[str, str], ...] = ()

    async def send_initial_metadata(self, metadata: Any) -> None:
        self.initial = tuple(metadata)

    def set_trailing_metadata(self, metadata: Any) -> None:
        self.trailing = tuple(metadata)


class _Records:
    async def list(self, *a: Any) -> list[Any]:
        return []


def _request(method: MethodDescriptor) -> Any:
    message = message_factory.GetMessageClass(method.input_type)()
    if "events" in method.input_type.fields_by_name:
        message.events.extend([event_pb2.EventData(event_type="T", payload=b"{}") for _ in range(3)])
    return message


@pytest.mark.parametrize(("path", "method"), public_methods(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_public_rpc_passes_admission_and_pays_its_cost(path: str, method: MethodDescriptor) -> None:
    requirements = rbac.requirements(s for m in PUBLIC_MODULES for s in m.DESCRIPTOR.services_by_name.values())
    requirement = requirements[path]
    limiter = MemoryLimiter()
    governor = Governor(LimitsSettings(), LimitBook(_Records()), limiter)  # type: ignore[arg-type]
    stage = Admission(LimitsSettings(), governor)
    streaming = method.client_streaming or method.server_streaming
    info = MethodInfo(path, requirement, streaming=streaming)
    principal = Principal("api_key", "k1", "k1", "acme", auth_pb2.ROLE_ADMIN, frozenset({C.PERMISSION_READ}))
    tenant = tenant_pb2.Tenant(
        tenant_id="acme",
        quotas=tenant_pb2.TenantQuotas(max_request_units_per_second=1000, max_request_units_burst=1000),
    )
    context = _Context()
    request = None if method.client_streaming else _request(method)
    call = Call(info, context, request, (), "ipv4:127.0.0.1:1", 0.0, principal=principal, tenant=tenant)  # type: ignore[arg-type]

    async def admit() -> None:
        pending = stage.enter(call)
        if pending is not None:
            await pending

    try:
        asyncio.run(admit())
    except AllSourceError as exc:  # pragma: no cover - the failure message
        pytest.fail(f"{path} refused: {exc}")
    assert plan_var.get() is None  # set inside the call's own context only
    bucket = limiter.state("t:acme")
    assert bucket is not None, path
    paid = 1000 - bucket.tokens
    expected = 3 if requirement.cost == C.RATE_COST_EVENTS else 1
    assert paid == pytest.approx(expected, abs=0.5), (path, paid)
    # Streams get the fields before their first message; unary calls with the response (as trailers).
    fields = dict(context.initial if streaming else context.trailing)
    assert fields["x-ratelimit-limit"] == "1000", path
    stage.exit(call, None)  # type: ignore[arg-type]
    assert stage.in_flight == 0
    assert stage.by_tenant == {}  # the tenant's share is given back, and no entry is left behind
