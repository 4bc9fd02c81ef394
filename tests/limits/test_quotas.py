"""Quotas and rate limits on the running suite (real processes), as clients see them.

Tenants of the FREE and PROFESSIONAL plans, custom plans, overrides; the exact refusals
(RESOURCE_EXHAUSTED with ErrorInfo, QuotaFailure and RetryInfo), the x-ratelimit-* metadata and the
soft-limit warning, and what storage enforces under concurrency.
"""

from __future__ import annotations

import calendar
import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import grpc
from allsource.v1 import admin_pb2, auth_pb2, query_pb2, tenant_pb2
from google.protobuf import timestamp_pb2

from tests.harness import Suite, wait_until
from tests.limits.support import append_request, make_tenant, operator, override, refusal, refused

WARNING = "x-allsource-quota-warning"


def next_utc_midnight_s(now: float) -> float:
    return (now // 86400 + 1) * 86400


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


# -- events per day: FREE refused, PROFESSIONAL not --------------------------------------------------


def test_a_free_tenant_is_refused_past_its_events_per_day_while_a_professional_one_writes_on(suite: Suite) -> None:
    free = make_tenant(suite, "free")
    pro = make_tenant(suite, "pro", tenant_pb2.QUOTA_PRESET_PROFESSIONAL)
    # The FREE day (10,000 events) is lowered for the test, and its minute window and rate raised, so
    # that the day is the limit reached (and quickly).
    override(suite, free.tenant_id, "max_events_per_day", 300)
    override(suite, free.tenant_id, "max_events_per_minute", 1_000_000)
    override(suite, free.tenant_id, "max_request_units_per_second", 1_000_000)
    override(suite, free.tenant_id, "max_request_units_burst", 1_000_000)
    pro_results: list[str] = []
    stop = threading.Event()

    def professional() -> None:
        stub = pro.ingest()
        i = 0
        while not stop.is_set():
            try:
                stub.AppendEvents(append_request(f"pro-{i % 7}", 5), metadata=pro.metadata, timeout=10)
                pro_results.append("OK")
            except grpc.RpcError as err:
                pro_results.append(refusal(err).reason)
            i += 1

    writer = threading.Thread(target=professional)
    writer.start()
    try:
        stub = free.ingest()
        warned_at = None
        for i in range(30):  # 300 events, 10 per append
            _, call = stub.AppendEvents.with_call(
                append_request(f"free-{i % 3}", 10), metadata=free.metadata, timeout=10
            )
            trailing = dict(call.trailing_metadata())
            if WARNING in trailing and warned_at is None:
                warned_at = (i + 1) * 10
                assert "max_events_per_day" in trailing[WARNING] and "of 300 used" in trailing[WARNING]
        assert warned_at == 240  # from 80% of the day's quota
        now = time.time()
        got = refused(stub.AppendEvents, append_request("free-0", 1), metadata=free.metadata, timeout=10)
        assert (got.code, got.reason) == ("RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED")
        assert got.metadata["limit"] == "max_events_per_day"
        assert (got.metadata["value"], got.metadata["used"]) == ("300", "300")
        midnight = next_utc_midnight_s(now)
        resets = calendar.timegm(time.strptime(got.metadata["resets_at"], "%Y-%m-%dT%H:%M:%SZ"))
        assert resets == midnight
        assert got.retry_s is not None and abs(got.retry_s - (midnight - now)) < 5
        assert len(got.quota) == 1
        assert got.quota[0].quota_id == "max_events_per_day" and got.quota[0].quota_value == 300
        assert got.quota[0].subject == f"tenant:{free.tenant_id}"
        # Nothing of the refused append was written; a second refusal comes from the ingest service's
        # memory of the used-up window (the same details, no storage call).
        again = refused(stub.AppendEvents, append_request("free-1", 1), metadata=free.metadata, timeout=10)
        assert (again.reason, again.metadata["limit"]) == ("QUOTA_EXCEEDED", "max_events_per_day")
        usage = free.admin().GetQuotaUsage(admin_pb2.GetQuotaUsageRequest(), metadata=free.metadata, timeout=10)
        day = next(q for q in usage.quotas if q.quota == "max_events_per_day")
        assert (day.used, day.limit, day.state, day.overridden) == (300, 300, admin_pb2.QUOTA_STATE_HARD, True)
        assert day.resets_at.seconds == midnight
        time.sleep(0.5)  # the professional tenant keeps writing meanwhile
    finally:
        stop.set()
        writer.join()
        free.close()
        pro.close()
    assert pro_results and set(pro_results) == {"OK"}, set(pro_results)


# -- fairness: a noisy tenant takes its share, no more --------------------------------------------------


def test_a_noisy_tenant_takes_its_share_and_a_quiet_one_stays_fast(suite: Suite) -> None:
    noisy = make_tenant(suite, "noisy")  # FREE: 100 request units per second, bursts of 500
    for window in ("max_events_per_minute", "max_events_per_hour", "max_events_per_day"):
        override(suite, noisy.tenant_id, window, 1_000_000)  # the rate, not the windows, is under test
    quiet = make_tenant(suite, "quiet", tenant_pb2.QUOTA_PRESET_PROFESSIONAL)
    quiet_stub = quiet.ingest()

    def quiet_latencies(n: int) -> list[float]:
        out = []
        for i in range(n):
            started = time.perf_counter()
            quiet_stub.AppendEvents(append_request(f"q-{i % 5}"), metadata=quiet.metadata, timeout=10)
            out.append(time.perf_counter() - started)
        return out

    alone = quiet_latencies(150)
    stop = threading.Event()
    admitted = refused_calls = 0
    reasons: set[str] = set()
    lock = threading.Lock()
    headers: list[dict[str, str]] = []

    def hammer() -> None:
        nonlocal admitted, refused_calls
        stub = noisy.ingest()
        while not stop.is_set():
            try:
                _, call = stub.AppendEvents.with_call(append_request("n"), metadata=noisy.metadata, timeout=10)
                with lock:
                    admitted += 1
                    if len(headers) < 5:
                        headers.append(dict(call.trailing_metadata()))
            except grpc.RpcError as err:
                got = refusal(err)
                with lock:
                    refused_calls += 1
                    reasons.add(got.reason)

    started = time.monotonic()
    threads = [threading.Thread(target=hammer) for _ in range(12)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        loaded = quiet_latencies(150)
    finally:
        stop.set()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        noisy.close()
        quiet.close()
    # The noisy tenant got its plan's share: the burst plus the rate over the time, give or take a call.
    assert admitted <= 500 + 100 * elapsed + 5, (admitted, elapsed)
    assert admitted >= 500, admitted
    assert refused_calls > admitted and reasons == {"RATE_LIMITED"}
    assert all(h.get("x-ratelimit-limit") == "500" for h in headers), headers
    # The quiet tenant stays fast: its p99 under the noise within 10x its own p99 alone, and under 1 s.
    assert p99(loaded) < max(10 * p99(alone), 0.05) and p99(loaded) < 1.0, (p99(alone), p99(loaded))
    assert statistics.median(loaded) < 0.25


# -- storage bytes: exact, under concurrency ------------------------------------------------------------


def test_concurrent_appends_cannot_push_storage_past_its_quota(suite: Suite) -> None:
    limit = 200_000
    tenant = make_tenant(
        suite, "full", tenant_pb2.QUOTA_PRESET_CUSTOM, tenant_pb2.TenantQuotas(max_storage_bytes=limit)
    )
    stub = tenant.ingest()
    outcomes: list[str] = []
    lock = threading.Lock()

    def writer(n: int) -> None:
        for i in range(200):
            try:
                stub.AppendEvents(append_request(f"w{n}-{i % 4}", 2, size=1500), metadata=tenant.metadata, timeout=20)
                result = "OK"
            except grpc.RpcError as err:
                got = refusal(err)
                result = f"{got.reason}:{got.metadata.get('limit', '')}"
            with lock:
                outcomes.append(result)
            if result != "OK" and sum(1 for o in outcomes if o != "OK") > 64:
                return

    try:
        with ThreadPoolExecutor(32) as pool:
            list(pool.map(writer, range(32)))
        stats = tenant.admin().GetTenantStats(admin_pb2.GetTenantStatsRequest(), metadata=tenant.metadata, timeout=10)
        accepted = outcomes.count("OK")
        assert set(outcomes) == {"OK", "QUOTA_EXCEEDED:max_storage_bytes"}, set(outcomes)
        assert stats.stats.storage_bytes <= limit, stats.stats.storage_bytes  # not one byte over
        assert stats.stats.storage_bytes > limit - 8_000  # and full up to the size of about one append
        assert stats.stats.events == 2 * accepted  # refused appends wrote nothing
        usage = tenant.admin().GetQuotaUsage(admin_pb2.GetQuotaUsageRequest(), metadata=tenant.metadata, timeout=10)
        stored = next(q for q in usage.quotas if q.quota == "max_storage_bytes")
        assert stored.used == stats.stats.storage_bytes and stored.state == admin_pb2.QUOTA_STATE_SOFT
    finally:
        tenant.close()


# -- overrides --------------------------------------------------------------------------------------------


def test_an_override_applies_at_once_and_ends_on_time(suite: Suite) -> None:
    tenant = make_tenant(suite, "ovr", tenant_pb2.QUOTA_PRESET_PROFESSIONAL)
    stub, admin = tenant.ingest(), tenant.admin()
    try:
        day = time.time() // 86400
        made = override(suite, tenant.tenant_id, "max_events_per_day", 1, seconds=3)
        assert (made.value, made.reason) == (1, "test") and made.set_by.startswith("key:")  # the operator's key
        ends = made.expires_at.ToNanoseconds() / 1e9
        listed = admin.ListQuotaOverrides(admin_pb2.ListQuotaOverridesRequest(), metadata=tenant.metadata, timeout=10)
        assert [(o.quota, o.value) for o in listed.overrides] == [("max_events_per_day", 1)]
        usage = admin.GetQuotaUsage(admin_pb2.GetQuotaUsageRequest(), metadata=tenant.metadata, timeout=10)
        window = next(q for q in usage.quotas if q.quota == "max_events_per_day")
        assert (window.limit, window.overridden) == (1, True)
        stub.AppendEvents(append_request("o-1"), metadata=tenant.metadata, timeout=10)
        got = refused(stub.AppendEvents, append_request("o-1"), metadata=tenant.metadata, timeout=10)
        assert (got.reason, got.metadata["limit"], got.metadata["value"]) == (
            "QUOTA_EXCEEDED",
            "max_events_per_day",
            "1",
        )
        assert got.retry_s is not None and 0 < got.retry_s <= 86400

        # Ends on its own at its expiry: appends go again (within a moment of it), nothing else done.
        def goes() -> bool:
            try:
                stub.AppendEvents(append_request("o-1"), metadata=tenant.metadata, timeout=10)
                return True
            except grpc.RpcError:
                return False

        wait_until(goes, timeout=10, what="the override to expire")
        if time.time() // 86400 == day:  # (a new UTC day would have let it go anyway)
            assert time.time() >= ends - 0.5
        listed = admin.ListQuotaOverrides(admin_pb2.ListQuotaOverridesRequest(), metadata=tenant.metadata, timeout=10)
        assert list(listed.overrides) == []
        usage = admin.GetQuotaUsage(admin_pb2.GetQuotaUsageRequest(), metadata=tenant.metadata, timeout=10)
        window = next(q for q in usage.quotas if q.quota == "max_events_per_day")
        assert (window.limit, window.overridden) == (1_000_000, False)
    finally:
        tenant.close()


def test_override_requests_are_checked_and_only_operators_set_them(suite: Suite) -> None:
    tenant = make_tenant(suite, "ovrchk")
    op = operator(suite)
    try:
        base = admin_pb2.SetQuotaOverrideRequest(tenant_id=tenant.tenant_id, quota="max_events_per_day", value=5)
        base.duration.seconds = 60
        base.reason = "why"
        bad_quota = admin_pb2.SetQuotaOverrideRequest()
        bad_quota.CopyFrom(base)
        bad_quota.quota = "max_bananas"
        no_reason = admin_pb2.SetQuotaOverrideRequest()
        no_reason.CopyFrom(base)
        no_reason.reason = " "
        too_long = admin_pb2.SetQuotaOverrideRequest()
        too_long.CopyFrom(base)
        too_long.duration.seconds = 91 * 86400
        for request, field in ((bad_quota, "quota"), (no_reason, "reason"), (too_long, "duration")):
            got = refused(op.SetQuotaOverride, request, timeout=10)
            assert (got.code, got.reason, got.violations) == ("INVALID_ARGUMENT", "INVALID_QUOTA_OVERRIDE", [field])
        ghost = admin_pb2.SetQuotaOverrideRequest()
        ghost.CopyFrom(base)
        ghost.tenant_id = f"ghost-{uuid.uuid4().hex[:6]}"
        assert refused(op.SetQuotaOverride, ghost, timeout=10).reason == "TENANT_NOT_FOUND"
        # The tenant's own administrator reads its quotas but may not change them.
        got = refused(tenant.admin().SetQuotaOverride, base, metadata=tenant.metadata, timeout=10)
        assert got.code == "PERMISSION_DENIED"
        before = timestamp_pb2.Timestamp()
        before.GetCurrentTime()
        op.SetQuotaOverride(base, timeout=10)
        audited = op.ListAuditEvents(admin_pb2.ListAuditEventsRequest(start_time=before, page_size=1000), timeout=10)
        assert any(e.action.endswith("/SetQuotaOverride") and e.outcome == "OK" for e in audited.events), audited
        cleared = admin_pb2.SetQuotaOverrideRequest(tenant_id=tenant.tenant_id, quota="max_events_per_day", clear=True)
        assert not op.SetQuotaOverride(cleared, timeout=10).HasField("override")
        listed = tenant.admin().ListQuotaOverrides(
            admin_pb2.ListQuotaOverridesRequest(), metadata=tenant.metadata, timeout=10
        )
        assert list(listed.overrides) == []
    finally:
        tenant.close()


# -- rate limits: headers, warning, refusal ---------------------------------------------------------------


def test_rate_limits_answer_with_ratelimit_headers_a_soft_warning_and_the_real_wait(suite: Suite) -> None:
    tenant = make_tenant(
        suite,
        "rate",
        tenant_pb2.QUOTA_PRESET_CUSTOM,
        tenant_pb2.TenantQuotas(max_request_units_per_second=5, max_request_units_burst=10),
    )
    stub = tenant.ingest()
    try:
        # A unary call's client sees its metadata with the response: the fields ride in trailing metadata.
        seen = []
        for i in range(10):
            _, call = stub.AppendEvents.with_call(append_request(f"r-{i}"), metadata=tenant.metadata, timeout=10)
            seen.append((dict(call.trailing_metadata()), dict(call.trailing_metadata())))
        first_headers, first_trailers = seen[0]
        assert first_headers["x-ratelimit-limit"] == "10"
        assert first_headers["x-ratelimit-remaining"] == "9"
        assert first_headers["x-ratelimit-reset"] == "1"  # one unit back takes 0.2 s: rounded up
        assert WARNING not in first_trailers
        remaining = [int(h["x-ratelimit-remaining"]) for h, _ in seen]
        assert remaining == sorted(remaining, reverse=True) and remaining[-1] <= 1
        warned = [WARNING in t for _, t in seen]
        # From 80% of the burst spent: the 8th unit of 10 (the 9th if the bucket refilled a little meanwhile).
        assert warned.index(True) in (7, 8) and all(warned[warned.index(True) :]), warned
        assert "max_request_units_per_second" in seen[-1][1][WARNING]
        got = refused(stub.AppendEvents, append_request("r-x"), metadata=tenant.metadata, timeout=10)
        assert (got.code, got.reason, got.metadata["limit"]) == (
            "RESOURCE_EXHAUSTED",
            "RATE_LIMITED",
            "max_request_units_per_second",
        )
        assert got.metadata["value"] == "5" and got.metadata["burst"] == "10"
        assert got.quota[0].quota_id == "max_request_units_per_second" and got.quota[0].quota_value == 5
        assert got.retry_s is not None and 0 < got.retry_s <= 0.21
        assert got.trailing["x-ratelimit-remaining"] == "0"
        time.sleep(got.retry_s)
        stub.AppendEvents(append_request("r-y"), metadata=tenant.metadata, timeout=10)  # the real wait was enough
        # An append of many events costs its events; one larger than the burst goes when the bucket is
        # full and leaves it in debt.
        time.sleep(2.1)
        stub.AppendEvents(append_request("r-big", 25), metadata=tenant.metadata, timeout=10)
        got = refused(stub.AppendEvents, append_request("r-z"), metadata=tenant.metadata, timeout=10)
        assert got.retry_s is not None and 2.5 < got.retry_s < 3.3  # 15 units of debt and one more, at 5/s
    finally:
        tenant.close()


def test_a_stream_gets_the_ratelimit_fields_first_and_is_paced_by_its_messages(suite: Suite) -> None:
    tenant = make_tenant(
        suite,
        "paced",
        tenant_pb2.QUOTA_PRESET_CUSTOM,
        tenant_pb2.TenantQuotas(max_request_units_per_second=100, max_request_units_burst=100),
    )
    try:
        tenant.ingest().AppendEvents(append_request("s-1", 300), metadata=tenant.metadata, timeout=10)
        call = tenant.query().StreamEvents(
            query_pb2.StreamEventsRequest(batch_size=100), metadata=tenant.metadata, timeout=30
        )
        headers = dict(call.initial_metadata())  # before the first message
        assert (headers["x-ratelimit-limit"], headers["x-ratelimit-remaining"]) == ("100", "99")
        started = time.monotonic()
        received = sum(len(message.events) for message in call)
        took = time.monotonic() - started
        # 300 events in batches of 100 against 100 units per second (99 left at the start): the stream
        # waits for its tokens rather than failing, about 2 s.
        assert received == 300
        assert 1.5 < took < 6, took
    finally:
        tenant.close()


def test_a_page_read_costs_what_it_returns(suite: Suite) -> None:
    tenant = make_tenant(
        suite,
        "pages",
        tenant_pb2.QUOTA_PRESET_CUSTOM,
        tenant_pb2.TenantQuotas(max_request_units_per_second=1, max_request_units_burst=50),
    )
    query = tenant.query()
    try:
        tenant.ingest().AppendEvents(append_request("p-1", 30), metadata=tenant.metadata, timeout=10)
        # (With the in-memory backend each process meters its own calls: the query service's bucket is full.)
        _, call = query.ReadStream.with_call(
            query_pb2.ReadStreamRequest(stream_id="p-1", page_size=1000), metadata=tenant.metadata
        )
        assert dict(call.trailing_metadata())["x-ratelimit-remaining"] == "49"  # one unit to start
        _, call = query.ReadStream.with_call(
            query_pb2.ReadStreamRequest(stream_id="p-1", page_size=2), metadata=tenant.metadata
        )
        remaining = int(dict(call.trailing_metadata())["x-ratelimit-remaining"])
        assert remaining in (19, 20), remaining  # 50 - 30 (what the first read returned) - 1, and a moment's refill
        # A read that leaves the bucket in debt is paid for by the next calls.
        query.ReadStream(query_pb2.ReadStreamRequest(stream_id="p-1", page_size=30), metadata=tenant.metadata)
        got = refused(query.ReadStream, query_pb2.ReadStreamRequest(stream_id="p-1"), metadata=tenant.metadata)
        assert got.reason == "RATE_LIMITED" and got.retry_s is not None and 9 < got.retry_s < 13, got
    finally:
        tenant.close()


# -- queries per hour, keys, users, event and result sizes ---------------------------------------------


def test_queries_per_hour_are_refused_until_the_hour_ends(suite: Suite) -> None:
    tenant = make_tenant(suite, "queries", tenant_pb2.QUOTA_PRESET_PROFESSIONAL)
    override(suite, tenant.tenant_id, "max_queries_per_hour", 5)
    query = tenant.query()
    try:
        trailers = []
        for _ in range(5):
            _, call = query.ListStreams.with_call(query_pb2.ListStreamsRequest(), metadata=tenant.metadata)
            trailers.append(dict(call.trailing_metadata()))
        assert [WARNING in t for t in trailers] == [False, False, False, True, True]  # 4 of 5 is 80%
        now = time.time()
        got = refused(query.ListStreams, query_pb2.ListStreamsRequest(), metadata=tenant.metadata)
        assert (got.reason, got.metadata["limit"], got.metadata["value"]) == (
            "QUOTA_EXCEEDED",
            "max_queries_per_hour",
            "5",
        )
        hour_end = (now // 3600 + 1) * 3600
        assert got.retry_s is not None and abs(got.retry_s - (hour_end - now)) < 5
        # The operator acting on the tenant is not refused.
        acting = (*suite.auth_metadata(), ("x-allsource-tenant", tenant.tenant_id))
        query.ListStreams(query_pb2.ListStreamsRequest(), metadata=acting)
    finally:
        tenant.close()


def test_api_keys_and_users_stop_at_their_quota(suite: Suite) -> None:
    tenant = make_tenant(suite, "counts")  # FREE: 2 API keys (one made with the tenant), 5 users
    auth = tenant.auth()
    try:
        second = auth.CreateApiKey(
            auth_pb2.CreateApiKeyRequest(name="two", role=auth_pb2.ROLE_READ_ONLY), metadata=tenant.metadata
        )
        got = refused(
            auth.CreateApiKey,
            auth_pb2.CreateApiKeyRequest(name="three", role=auth_pb2.ROLE_READ_ONLY),
            metadata=tenant.metadata,
        )
        assert (got.reason, got.metadata["limit"], got.metadata["used"]) == ("QUOTA_EXCEEDED", "max_api_keys", "2")
        auth.RevokeApiKey(auth_pb2.RevokeApiKeyRequest(key_id=second.api_key.key_id), metadata=tenant.metadata)
        auth.CreateApiKey(
            auth_pb2.CreateApiKeyRequest(name="three", role=auth_pb2.ROLE_READ_ONLY), metadata=tenant.metadata
        )

        def create_user(i: int) -> str:
            try:
                auth.CreateUser(
                    auth_pb2.CreateUserRequest(
                        username=f"u{i}", password="a-long-enough-password", role=auth_pb2.ROLE_READ_ONLY
                    ),
                    metadata=tenant.metadata,
                    timeout=30,
                )
                return "OK"
            except grpc.RpcError as err:
                return refusal(err).reason

        with ThreadPoolExecutor(8) as pool:  # at the same time: the count still holds
            results = list(pool.map(create_user, range(8)))
        assert sorted(results) == ["OK"] * 5 + ["QUOTA_EXCEEDED"] * 3, results
    finally:
        tenant.close()


def test_event_and_result_sizes_follow_the_plan(suite: Suite) -> None:
    free = make_tenant(suite, "sizes")  # FREE: events up to 64 KiB
    small = make_tenant(
        suite,
        "results",
        tenant_pb2.QUOTA_PRESET_CUSTOM,
        tenant_pb2.TenantQuotas(max_result_bytes=10_000),
    )
    try:
        got = refused(
            free.ingest().AppendEvents, append_request("big", 1, size=70_000), metadata=free.metadata, timeout=10
        )
        assert (got.reason, got.metadata["limit"], got.metadata["value"]) == (
            "QUOTA_EXCEEDED",
            "max_event_bytes",
            "65536",
        )
        assert "events[0].payload" in got.quota[0].description
        free.ingest().AppendEvents(append_request("big", 1, size=60_000), metadata=free.metadata, timeout=10)
        # Results: at most max_result_bytes a page (the first event always goes), the rest on later pages.
        small.ingest().AppendEvents(append_request("r", 10, size=3_000), metadata=small.metadata, timeout=10)
        query = small.query()
        pages, token = [], ""
        while True:
            page = query.ListEvents(
                query_pb2.ListEventsRequest(page_size=100, page_token=token), metadata=small.metadata, timeout=10
            )
            pages.append(len(page.events))
            assert sum(e.ByteSize() for e in page.events) <= 10_000 or len(page.events) == 1
            token = page.next_page_token
            if not token:
                break
        assert sum(pages) == 10 and max(pages) <= 3, pages
        stream = query.ReadStream(query_pb2.ReadStreamRequest(stream_id="r", page_size=100), metadata=small.metadata)
        assert 1 <= len(stream.events) <= 3 and stream.next_page_token
    finally:
        free.close()
        small.close()
