"""The feature flags the code reads, with their defaults (shared.config.flags evaluates them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

BucketBy = Literal["tenant", "stream"]


@dataclass(frozen=True, slots=True)
class FlagDefinition:
    """A flag the code reads, with its default."""

    name: str
    description: str
    bucket_by: BucketBy
    enabled: bool = True
    percentage: float = 100.0


DEFINITIONS: dict[str, FlagDefinition] = {
    d.name: d
    for d in (
        FlagDefinition(
            "json_payload_validation",
            "Ingest rejects application/json payloads that do not parse. Bucketed by tenant, so a stricter "
            "rule can be rolled out tenant by tenant.",
            "tenant",
        ),
        FlagDefinition(
            "entity_state_snapshots",
            "GetEntityState stores a snapshot after a long fold, so the next fold starts from it. Bucketed by "
            "stream, to compare folds with and without snapshots.",
            "stream",
        ),
    )
}
