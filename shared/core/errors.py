"""Typed errors that become a google.rpc.Status (AIP-193) with exactly one ErrorInfo.

Handlers raise these; the error-mapping interceptor turns them into a rich gRPC status. Errors coming
back from another service are rebuilt with `from_rpc_error` and re-emitted unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import grpc
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from shared.core.reasons import Reason

DOMAIN = "allsource.dev"
STATUS_DETAILS_KEY = "grpc-status-details-bin"


MAX_VIOLATIONS = 20
MAX_RETRY_AFTER_S = 86_400.0
MAX_MESSAGE_CHARS = 1024
MAX_FIELD_CHARS = 200


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


class AllSourceError(Exception):
    """An error with a gRPC code, an UPPER_SNAKE reason and optional structured details."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    reason: str = Reason.INTERNAL

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        code: grpc.StatusCode | None = None,
        metadata: Mapping[str, str] | None = None,
        violations: Iterable[tuple[str, str]] = (),
        retry_after: float | None = None,
        quota_violations: Iterable[tuple[str, str] | error_details_pb2.QuotaFailure.Violation] = (),
        status: status_pb2.Status | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        if code is not None:
            self.code = code
        self.metadata = dict(metadata or {})
        self.violations = list(violations)
        self.retry_after = retry_after
        self.quota_violations = list(quota_violations)
        self._status = status

    def to_status(self) -> status_pb2.Status:
        """The google.rpc.Status for this error."""
        if self._status is not None:
            return self._status
        # The status travels in trailers, which clients cap (16 KiB by default): whatever a request
        # carried, its refusal stays well within that (a message, metadata values and violations cut
        # short, at most MAX_VIOLATIONS listed and a count of the rest).
        status = status_pb2.Status(code=self.code.value[0], message=_cut(self.message, MAX_MESSAGE_CHARS))
        metadata = {k: _cut(v, MAX_FIELD_CHARS) for k, v in self.metadata.items()}
        info = error_details_pb2.ErrorInfo(reason=self.reason, domain=DOMAIN, metadata=metadata)
        status.details.add().Pack(info)
        if self.violations:
            bad = error_details_pb2.BadRequest()
            for field, description in self.violations[:MAX_VIOLATIONS]:
                bad.field_violations.add(
                    field=_cut(field, MAX_FIELD_CHARS), description=_cut(description, MAX_FIELD_CHARS)
                )
            if len(self.violations) > MAX_VIOLATIONS:
                bad.field_violations.add(
                    field=_cut(self.violations[MAX_VIOLATIONS][0], MAX_FIELD_CHARS),
                    description=f"and {len(self.violations) - MAX_VIOLATIONS} more problems not listed",
                )
            status.details.add().Pack(bad)
        if self.quota_violations:
            quota = error_details_pb2.QuotaFailure()
            for violation in self.quota_violations:
                if isinstance(violation, tuple):
                    quota.violations.add(subject=violation[0], description=violation[1])
                else:
                    quota.violations.append(violation)
            status.details.add().Pack(quota)
        if self.retry_after is not None:
            delay = duration_pb2.Duration()
            # A wait computed from a tiny rate can be astronomical: no client waits more than a day at once.
            delay.FromNanoseconds(int(min(max(self.retry_after, 0.0), MAX_RETRY_AFTER_S) * 1e9))
            status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=delay))
        return status

    def to_grpc_status(self) -> grpc.Status:
        """The status in the form `context.abort_with_status` and interceptors take."""
        return rpc_status.to_status(self.to_status())

    def __str__(self) -> str:
        return f"{self.code.name} {self.reason}: {self.message}"


class InvalidArgument(AllSourceError):
    """The request is malformed; BadRequest violations name the fields."""

    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = Reason.INVALID_ARGUMENT


class Unauthenticated(AllSourceError):
    """No valid credential: missing, malformed, expired, revoked, or unknown."""

    code = grpc.StatusCode.UNAUTHENTICATED
    reason = Reason.UNAUTHENTICATED


class PermissionDenied(AllSourceError):
    """A valid credential that does not allow this call."""

    code = grpc.StatusCode.PERMISSION_DENIED
    reason = Reason.PERMISSION_DENIED


class NotFound(AllSourceError):
    """The named resource does not exist (in the caller's tenant)."""

    code = grpc.StatusCode.NOT_FOUND
    reason = Reason.NOT_FOUND


class AlreadyExists(AllSourceError):
    """The resource to create exists already, or an id is taken with different content."""

    code = grpc.StatusCode.ALREADY_EXISTS
    reason = Reason.ALREADY_EXISTS


class FailedPrecondition(AllSourceError):
    """The system is not in a state the request needs."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = Reason.FAILED_PRECONDITION


class Aborted(AllSourceError):
    """A concurrency conflict; the caller may re-read and retry."""

    code = grpc.StatusCode.ABORTED
    reason = Reason.ABORTED


class ResourceExhausted(AllSourceError):
    """A limit, quota or rate was exceeded."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = Reason.RESOURCE_EXHAUSTED


class OutOfRange(AllSourceError):
    """A position or offset past the end of what exists."""

    code = grpc.StatusCode.OUT_OF_RANGE
    reason = Reason.INVALID_ARGUMENT


class Unavailable(AllSourceError):
    """A dependency is down or the service is shutting down; retrying later may succeed."""

    code = grpc.StatusCode.UNAVAILABLE
    reason = Reason.UNAVAILABLE


class DataLoss(AllSourceError):
    """Stored data (a backup chunk) is damaged or missing."""

    code = grpc.StatusCode.DATA_LOSS
    reason = Reason.BACKUP_CORRUPT


class Internal(AllSourceError):
    """A bug or an unexpected failure; details are in the server log under the request id."""

    code = grpc.StatusCode.INTERNAL
    reason = Reason.INTERNAL


class DeadlineExceeded(AllSourceError):
    """The call ran out of time."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED
    reason = Reason.DEADLINE_EXCEEDED


def with_retry_after(error: AllSourceError, seconds: float) -> AllSourceError:
    """The same error with another RetryInfo delay (every other detail kept)."""
    status = status_pb2.Status()
    status.CopyFrom(error.to_status())
    kept = [d for d in status.details if not d.Is(error_details_pb2.RetryInfo.DESCRIPTOR)]
    del status.details[:]
    status.details.extend(kept)
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(int(seconds * 1e9))
    status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    rebuilt = from_status(status)
    rebuilt.retry_after = seconds
    return rebuilt


def error_info(status: status_pb2.Status) -> error_details_pb2.ErrorInfo | None:
    """The ErrorInfo detail of a status, if it has one."""
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    return None


def from_status(status: status_pb2.Status) -> AllSourceError:
    """Rebuild an error from a google.rpc.Status, keeping every detail for re-emission."""
    info = error_info(status)
    code = _CODES.get(status.code, grpc.StatusCode.UNKNOWN)
    retry_after = None
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            retry_after = retry.retry_delay.ToNanoseconds() / 1e9
    return AllSourceError(
        status.message,
        code=code,
        reason=info.reason if info else code.name,
        metadata=dict(info.metadata) if info else {},
        retry_after=retry_after,
        status=status,
    )


def from_rpc_error(err: grpc.RpcError) -> AllSourceError:
    """Turn an error returned by the storage service into one this service re-raises unchanged.

    Errors without rich details (for example a connection failure) get an ErrorInfo naming storage.
    """
    upstream = "storage"
    status = None
    try:
        status = rpc_status.from_call(err)
    except ValueError:
        status = None
    if status is None:
        trailing = err.trailing_metadata() if hasattr(err, "trailing_metadata") else None
        for key, value in trailing or ():
            if key == STATUS_DETAILS_KEY:
                status = status_pb2.Status.FromString(value)
    if status is not None:
        return from_status(status)
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = err.details() if hasattr(err, "details") else str(err)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
        return AllSourceError(
            f"{upstream} is unavailable: {details}",
            code=grpc.StatusCode.UNAVAILABLE if code != grpc.StatusCode.CANCELLED else code,
            reason=Reason.STORAGE_UNAVAILABLE,
            metadata={"upstream": upstream, "upstream_code": code.name},
        )
    return AllSourceError(
        details or code.name,
        code=code,
        reason=Reason.STORAGE_ERROR,
        metadata={"upstream": upstream, "upstream_code": code.name},
    )


_CODES = {c.value[0]: c for c in grpc.StatusCode}
