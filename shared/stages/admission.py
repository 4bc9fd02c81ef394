"""Admission: whether the suite takes the call now (rate limits, quota pre-checks, load shedding).

Placed after authorization, so that only the caller's own tenant's budget is spent, and before usage
accounting and the handler. Nothing is limited yet; the stage holds the place where limits go.
"""

from __future__ import annotations

from shared.rpc.chain import MethodInfo, Stage


class Admission(Stage):
    """Admits every public call (limits arrive with the quota work); internal control calls are exempt."""

    name = "admission"

    def applies(self, method: MethodInfo) -> bool:
        return not method.control
