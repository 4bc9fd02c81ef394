"""Exit statuses and error reports: the server's reason and field violations, never a traceback."""

from __future__ import annotations

import sys
from typing import TextIO

import grpc
from allsource_client import AllSourceClientError, error_from_rpc

OK = 0
# Something failed that is neither the user's nor the server's word: a local file, an internal error.
FAILED = 1
USAGE = 2  # Click's own status for usage errors; the CLI's own usage problems use it too
REFUSED = 3
UNAVAILABLE = 4
INTERRUPTED = 130

EXIT_STATUSES = f"""Exit statuses: {OK} done; {FAILED} failed otherwise (a local file, an internal server error);
{USAGE} usage error (bad arguments, unknown profile); {REFUSED} refused by the server (invalid argument,
permission, authentication, not found, already exists, precondition, conflict, quota), with the
server's reason; {UNAVAILABLE} unavailable (a service down or overloaded, a deadline exceeded)."""

_UNAVAILABLE_CODES = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
_REFUSED_CODES = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.UNIMPLEMENTED,
}


class CliError(Exception):
    """A failure the CLI reports in one line and turns into an exit status."""

    def __init__(self, message: str, status: int = FAILED, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.hint = hint


class UsageProblem(CliError):
    """The command line or the profile asks for something impossible (exit status 2)."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message, USAGE, hint)


class ServerRefusal(CliError):
    """A server error as the client package typed it, with its reason and field violations."""

    def __init__(self, error: AllSourceClientError, hint: str = "") -> None:
        super().__init__(error.message, status_for(error.code), hint)
        self.error = error


def status_for(code: grpc.StatusCode) -> int:
    """The exit status for a gRPC status code."""
    if code in _UNAVAILABLE_CODES:
        return UNAVAILABLE
    if code in _REFUSED_CODES:
        return REFUSED
    return FAILED


def from_rpc(err: grpc.RpcError, hint: str = "") -> ServerRefusal:
    """A failed call as a ServerRefusal (the status details decoded by the client package)."""
    return ServerRefusal(error_from_rpc(err), hint)


def report(error: CliError, stream: TextIO | None = None) -> int:
    """Print the error to stderr: `error: <message> (<CODE> <REASON>)`, then one violation per line."""
    out = stream or sys.stderr
    if isinstance(error, ServerRefusal):
        server = error.error
        label = " ".join(part for part in (server.code.name, server.reason) if part)
        print(f"error: {server.message or server.code.name.lower()} ({label})", file=out)
        for field, description in server.violations:
            print(f"  {field}: {description}", file=out)
        if server.metadata:
            print("  details: " + ", ".join(f"{k}={v}" for k, v in sorted(server.metadata.items())), file=out)
    else:
        print(f"error: {error.message}", file=out)
    if error.hint:
        print(f"hint: {error.hint}", file=out)
    out.flush()
    return error.status
