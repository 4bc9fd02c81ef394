"""Every service's call chain, listed: a public service missing a stage (or running them out of order)
fails here, and so does a stage that is not applied to a method it must guard."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from services.admin.main import AdminProcess
from services.ingest.main import IngestProcess
from services.query.main import QueryProcess
from services.storage.main import StorageProcess
from shared.config.loader import load_settings
from shared.harness import server
from shared.rpc.chain import CallChain, MethodInfo, Registrar

PUBLIC = [
    "telemetry",
    "request",
    "service-authentication",
    "authentication",
    "tenant",
    "authorization",
    "audit",
    "admission",
]
EXPECTED = {
    IngestProcess: PUBLIC,
    QueryProcess: [*PUBLIC, "usage"],
    AdminProcess: PUBLIC,
    StorageProcess: ["telemetry", "request", "service-authentication"],
}


def chain_of(cls: type[server.Service], tmp_path: object) -> tuple[CallChain, list[str]]:
    settings = load_settings(environ={"ALLSOURCE_STORAGE__DATA_DIR": str(tmp_path)}).settings

    async def build() -> tuple[CallChain, list[str]]:
        service = cls(settings)
        chain = CallChain()
        service.service_names = service.register(Registrar(grpc.aio.server(), chain))
        chain.stages = service.stages()
        return chain, service.service_names

    return asyncio.run(build())


@pytest.mark.parametrize("cls", list(EXPECTED), ids=lambda c: c.__name__)
def test_each_service_declares_its_whole_chain_in_order(cls: type[server.Service], tmp_path: object) -> None:
    chain, _ = chain_of(cls, tmp_path)
    assert chain.names() == EXPECTED[cls]


@pytest.mark.parametrize("cls", [IngestProcess, QueryProcess, AdminProcess], ids=lambda c: c.__name__)
def test_every_public_method_passes_authentication_tenant_authorization_and_admission(
    cls: type[server.Service], tmp_path: object
) -> None:
    from google.protobuf import descriptor_pool

    from shared.auth import rbac

    chain, names = chain_of(cls, tmp_path)
    pool = descriptor_pool.Default()
    requirements = rbac.requirements(pool.FindServiceByName(n) for n in names)
    assert requirements
    for path, requirement in requirements.items():
        applied = [s.name for s in chain.stages if s.applies(MethodInfo(path, requirement))]
        for stage in ("request", "authentication", "tenant", "authorization", "audit", "admission"):
            assert stage in applied, f"{path} skips the {stage} stage"
        assert "service-authentication" not in applied
        if cls is QueryProcess:
            assert "usage" in applied


def test_control_methods_need_a_service_scope_and_nothing_public(tmp_path: object) -> None:
    chain, _ = chain_of(IngestProcess, tmp_path)
    control = MethodInfo("/allsource.control.v1.ControlService/ReloadConfig", None)
    applied = [s.name for s in chain.stages if s.applies(control)]
    assert applied == ["telemetry", "request", "service-authentication"]
