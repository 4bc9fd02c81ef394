"""Every service's call chain, in one place: which stages run, in which order (shared.rpc.chain).

Public services (ingest, query, admin): telemetry (span, metrics) -> request id and access log -> (ControlService
only) service authentication -> authentication -> tenant resolution -> authorization -> audit ->
admission -> usage accounting (query) -> handler. The storage service authenticates the suite's own
services only. A test lists each chain and fails when a stage is missing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from shared.auth.scopes import ScopeVerifier
from shared.config.settings import Settings
from shared.rpc.chain import Stage
from shared.stages.admission import Admission
from shared.stages.audit import AuditStage
from shared.stages.authentication import Authentication
from shared.stages.authorization import Authorization
from shared.stages.request_log import RequestLog
from shared.stages.service_authentication import ServiceAuthentication
from shared.stages.telemetry import Telemetry
from shared.stages.tenant import TenantResolution
from shared.stages.usage import UsageAccounting
from shared.telemetry.logs import AccessLog

if TYPE_CHECKING:
    from shared.harness.server import StorageBackedService
    from shared.tenancy.usage import QueryCounter


def _outer(name: str, settings: Settings) -> list[Stage]:
    return [
        Telemetry(name, propagate=settings.tracing.enabled, metrics=settings.metrics.enabled),
        RequestLog(AccessLog(name) if settings.log.access_log else None),
    ]


def internal_chain(name: str, settings: Settings, verifier: ScopeVerifier) -> list[Stage]:
    """The storage service: only the suite's services call it."""
    return [
        *_outer(name, settings),
        ServiceAuthentication(verifier, reflection_open=settings.auth.reflection == "open"),
    ]


def public_chain(
    service: StorageBackedService, *, count_queries: tuple[QueryCounter, Iterable[str]] | None = None
) -> list[Stage]:
    """A public service; `count_queries` (a counter and the services it counts) adds usage accounting."""
    settings = service.settings
    pepper = settings.auth.api_key_pepper
    stages = [
        *_outer(service.name, settings),
        ServiceAuthentication(service.scope_verifier(), control_only=True),
        Authentication(
            settings.auth,
            service.auth_state,
            service.token_verifier,
            pepper.get_secret_value().encode() if pepper else b"",
        ),
        TenantResolution(service.auth_state),
        Authorization(),
        AuditStage(service.audit),
        Admission(settings.limits, service.governor),
    ]
    if count_queries is not None:
        stages.append(UsageAccounting(*count_queries, service.governor))
    return stages
