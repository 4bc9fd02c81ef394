"""Request id and access log: every call gets an id (the caller's `x-request-id`, or a new one), returned
in trailing metadata and written on every log line, and one access-log line when it ends."""

from __future__ import annotations

import itertools
import os
import re
import time

from shared.rpc.chain import REQUEST_ID_KEY, Call, Outcome, Stage
from shared.telemetry.logs import AccessLog, request_id_var, tenant_var

# Request ids: a random per-process prefix and a counter. Unique, and far cheaper than uuid4 (a
# getrandom syscall per call); they identify calls, they are not secrets.
_ID_PREFIX = os.urandom(6).hex()
_ID_COUNTER = itertools.count(1)
# A caller's id is kept when it is 1-128 printable ASCII characters: it travels on to storage as
# metadata and into log lines, where anything else could not be sent or would mislead.
_CALLER_ID = re.compile(r"[!-~]{1,128}")


def new_request_id() -> str:
    """A fresh request id."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):08x}"


class RequestLog(Stage):
    """Assigns the request id; writes the access-log line (when the access log is on)."""

    name = "request"

    def __init__(self, access_log: AccessLog | None) -> None:
        self.access_log = access_log

    def enter(self, call: Call) -> None:
        request_id = ""
        for key, value in call.metadata:
            if key == REQUEST_ID_KEY and isinstance(value, str) and _CALLER_ID.fullmatch(value):
                request_id = value
                break
        request_id = request_id or new_request_id()
        call.request_id = request_id
        request_id_var.set(request_id)  # each RPC runs in its own task: the value dies with it
        call.trailing.append((REQUEST_ID_KEY, request_id))
        call.context.set_trailing_metadata(tuple(call.trailing))

    def exit(self, call: Call, outcome: Outcome) -> None:
        if self.access_log is not None:
            self.access_log.record(
                call.method.path,
                outcome.code,
                outcome.reason,
                (time.perf_counter() - call.started) * 1000,
                call.peer,
                call.request_id,
                tenant_var.get(),
                call.span,  # the telemetry stage's (None without tracing: then looked up, as for any line)
            )
