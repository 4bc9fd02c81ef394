"""The Python client retries by what the server said: a refusal with RetryInfo is tried again after the
delay it names, `retries` times, and gRPC itself repeats nothing on top of that."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from allsource_client import AllSourceClientError

from tests.harness import Suite, wait_until


def get_event_calls(suite: Suite, tenant: str) -> int:
    """The tenant's GetEvent calls in the query service's access log."""
    count = 0
    for line in suite.log("query").splitlines():
        if '"allsource.access"' in line and "GetEvent" in line:
            entry = json.loads(line)
            count += entry.get("tenant") == tenant and entry["method"].endswith("/GetEvent")
    return count


def test_a_read_refused_with_a_delay_reaches_the_server_retries_plus_one_times(suite: Suite) -> None:
    """get_event with a min_position far beyond the log: the query service answers UNAVAILABLE /
    MIN_POSITION_NOT_REACHED with RetryInfo. With retries=1 the server sees exactly 2 calls, the second
    after the delay. Before, gRPC's own retry policy (the published service config, installed on the
    client's channels) repeated each refused call at once, up to 3 times, ignoring the delay: one read
    became 6 calls here (12 with the default 3 retries)."""
    tenant = f"retries-{uuid.uuid4().hex[:8]}"
    md = suite.create_tenant(tenant)
    with suite.client(retries=1, metadata=md) as client:
        started = time.monotonic()
        with pytest.raises(AllSourceClientError) as refused:
            client.get_event(str(uuid.uuid4()), min_position=10**15)
        took = time.monotonic() - started
    assert refused.value.reason == "MIN_POSITION_NOT_REACHED" and refused.value.retry_after is not None
    wait_until(lambda: get_event_calls(suite, tenant) >= 2, timeout=10, what="the access log lines")
    time.sleep(1.0)  # the access log is buffered: anything more would be there by now
    assert get_event_calls(suite, tenant) == 2
    assert took >= refused.value.retry_after
