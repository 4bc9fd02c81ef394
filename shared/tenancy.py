"""Which tenant a call acts for.

Until identity and multi-tenancy arrive, every call belongs to the `default` tenant. This is the one
place that decides it, so the credential-based rule replaces it without touching the handlers.
"""

from __future__ import annotations

import grpc

DEFAULT_TENANT = "default"


def tenant_of(context: grpc.aio.ServicerContext) -> str:
    """The tenant the current call acts for."""
    return DEFAULT_TENANT
