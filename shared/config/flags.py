"""Feature flags: one small API for code, values from defaults < configuration < run-time overrides.

Code asks `FLAGS.enabled("name", tenant=..., stream=...)`. A flag is either off for everyone, or on for a
percentage of tenants or of streams. Bucketing is deterministic: a hash of the flag name and the tenant
(or stream) id puts each one in one of 10,000 buckets, so the same tenant always gets the same answer and
raising the percentage only ever adds tenants (A/B rollouts). Overrides are set through
AdminService.SetFeatureFlag, kept by storage, and pushed to every process.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace

from shared.config.flag_registry import DEFINITIONS, BucketBy
from shared.config.settings import FlagSettings

log = logging.getLogger(__name__)

BUCKETS = 10_000


@dataclass(frozen=True, slots=True)
class FlagState:
    """A flag's value in force, and where it came from."""

    name: str
    enabled: bool
    percentage: float
    bucket_by: BucketBy
    source: str  # default | config | override
    updated_at_ns: int = 0
    updated_by: str = ""


def bucket(name: str, key: str) -> int:
    """The bucket (0-9,999) of a tenant or stream for a flag; stable across processes and versions."""
    digest = hashlib.blake2b(f"{name}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


class FeatureFlags:
    """The flags in force in this process."""

    def __init__(self) -> None:
        self._configured: dict[str, FlagState] = {}
        self._overrides: dict[str, FlagState] = {}
        self._state: dict[str, FlagState] = {}
        self.configure({})

    def configure(self, config: Mapping[str, FlagSettings]) -> None:
        """Apply the configuration's flag values (start and reload)."""
        states = {}
        for name, d in DEFINITIONS.items():
            c = config.get(name)
            if c is None:
                states[name] = FlagState(name, d.enabled, d.percentage, d.bucket_by, "default")
            else:
                states[name] = FlagState(name, c.enabled, c.percentage, c.bucket_by or d.bucket_by, "config")
        self._configured = states
        self._recompute()

    def set_overrides(self, overrides: Mapping[str, FlagState]) -> None:
        """Apply the run-time overrides read from storage (replacing the previous ones)."""
        self._overrides = {name: replace(s, source="override") for name, s in overrides.items() if name in DEFINITIONS}
        self._recompute()

    def _recompute(self) -> None:
        new = {**self._configured, **self._overrides}
        for name, state in new.items():
            old = self._state.get(name)
            if old is not None and (old.enabled, old.percentage, old.bucket_by) != (
                state.enabled,
                state.percentage,
                state.bucket_by,
            ):
                log.info(
                    "feature flag changed",
                    extra={
                        "flag": name,
                        "enabled": state.enabled,
                        "percentage": state.percentage,
                        "bucket_by": state.bucket_by,
                        "source": state.source,
                        "was": {"enabled": old.enabled, "percentage": old.percentage, "bucket_by": old.bucket_by},
                    },
                )
        self._state = new

    def enabled(self, name: str, *, tenant: str = "", stream: str = "") -> bool:
        """Whether the feature is on for this tenant or stream (by the flag's bucketing)."""
        state = self._state[name]
        if not state.enabled or state.percentage <= 0:
            return False
        if state.percentage >= 100:
            return True
        key = tenant if state.bucket_by == "tenant" else stream
        return bucket(name, key) < state.percentage * (BUCKETS / 100)

    def states_by_name(self) -> dict[str, FlagState]:
        """Every flag's state, keyed by name."""
        return dict(self._state)

    def states(self) -> list[FlagState]:
        """Every flag's state, by name."""
        return [self._state[name] for name in sorted(self._state)]


FLAGS = FeatureFlags()
