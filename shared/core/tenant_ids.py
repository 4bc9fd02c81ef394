"""Tenant ids: the default tenant and the rules for the ids of new tenants."""

from __future__ import annotations

import re

# Exists from the first start and owns everything written before tenants were created; never deleted.
DEFAULT_TENANT = "default"
TENANT_ID = re.compile(r"[a-z][a-z0-9-]{1,61}[a-z0-9]")
RESERVED_IDS = frozenset({"system", "internal", "admin", "all"})


def tenant_id_problem(tenant_id: str) -> str | None:
    """What is wrong with a new tenant id, or None."""
    if not TENANT_ID.fullmatch(tenant_id):
        return "3-63 characters: lowercase letters, digits and hyphens, starting with a letter, not ending with -"
    if tenant_id in RESERVED_IDS:
        return f"{tenant_id!r} is reserved"
    return None
