"""The suite's retry policy as a gRPC service config, for any gRPC client (it is plain JSON).

Reads are safe to repeat: gRPC retries them itself when the service is unreachable (UNAVAILABLE),
with a jittered exponential backoff. Only then: every refusal a service makes carries gRPC's server
pushback `grpc-retry-pushback-ms: -1`, so gRPC does not repeat a call the server answered (an
OVERLOADED or MIN_POSITION_NOT_REACHED refusal says when to come back in its RetryInfo instead).
Appends are not retried here: a refusal that says the server did nothing (it carries RetryInfo:
OVERLOADED, RATE_LIMITED, STORAGE_FULL, a breaker that is open) is safe to retry after the delay it
names, and `AllSourceClient` does so; an append that carries a request id or only client-chosen event
ids is safe to retry after any failure (the server recognises it).
"""

from __future__ import annotations

import json

_READS = [
    {"service": "allsource.v1.QueryService", "method": name}
    for name in ("GetEvent", "ReadStream", "ListEvents", "GetEntityState", "ListStreams")
]

POLICY = {
    "methodConfig": [
        {
            "name": _READS,
            "retryPolicy": {
                "maxAttempts": 3,
                "initialBackoff": "0.1s",
                "maxBackoff": "1s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }
    ]
}
SERVICE_CONFIG = json.dumps(POLICY)
