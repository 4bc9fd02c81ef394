"""Live subscriptions are bounded three ways, each refused clearly and retryably (F6 item 1).

- per tenant in a query process (`query.max_subscriptions_per_tenant`): RESOURCE_EXHAUSTED /
  QUOTA_EXCEEDED with a QuotaFailure and RetryInfo (the tenant may close one of its own);
- per query process (`query.max_subscriptions`): UNAVAILABLE / OVERLOADED with RetryInfo (another
  replica may have room);
- in storage, over every query process (`storage.max_subscriptions`): UNAVAILABLE / OVERLOADED with
  RetryInfo, passed through the query service unchanged.

The caps are set tiny through a configuration file, so a handful of subscriptions reach them; storage's
cap is reached by reloading the file with query's caps raised above it.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from allsource.v1 import admin_pb2, admin_pb2_grpc, config_pb2, query_pb2, query_pb2_grpc
from allsource_client import status_from_call
from google.rpc import error_details_pb2

from tests.harness import Suite

Metadata = tuple[tuple[str, str], ...]


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Suite, Path]]:
    work = tmp_path_factory.mktemp("subscription-caps")
    config = work / "allsource.toml"
    config.write_text("")
    suite = Suite(work / "suite", extra_env={"ALLSOURCE_CONFIG": str(config)})
    try:
        suite.start_all()
        yield suite, config
    finally:
        suite.stop_all()


def configure(suite: Suite, config: Path, text: str) -> None:
    """Write the configuration file and have every service apply it."""
    config.write_text(text)
    reply = admin_pb2_grpc.AdminServiceStub(suite.channel("admin")).ReloadConfig(
        admin_pb2.ReloadConfigRequest(), timeout=30
    )
    for result in reply.results:
        assert result.status == config_pb2.RELOAD_STATUS_APPLIED, result


def storage_subscriptions(suite: Suite) -> int:
    """The subscriptions storage follows now (its allsource_subscriptions_active gauge)."""
    url = f"http://127.0.0.1:{suite.metrics_ports['storage']}/metrics"
    with urllib.request.urlopen(url, timeout=5) as reply:
        for line in reply.read().decode().splitlines():
            if line.startswith("allsource_subscriptions_active"):
                return int(float(line.rsplit(" ", 1)[1]))
    raise AssertionError("storage does not report allsource_subscriptions_active")


def refusal(err: grpc.RpcError) -> tuple[str, str, dict[str, str], float | None, list[str]]:
    """code, ErrorInfo reason and metadata, RetryInfo delay, QuotaFailure subjects."""
    status = status_from_call(err)
    assert status is not None, err
    reason, metadata, retry, quotas = "", {}, None, []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason, metadata = info.reason, dict(info.metadata)
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            delay = error_details_pb2.RetryInfo()
            detail.Unpack(delay)
            retry = delay.retry_delay.ToNanoseconds() / 1e9
        elif detail.Is(error_details_pb2.QuotaFailure.DESCRIPTOR):
            failure = error_details_pb2.QuotaFailure()
            detail.Unpack(failure)
            quotas = [v.subject for v in failure.violations]
    return err.code().name, reason, metadata, retry, quotas


class Subscriber:
    """Opens subscriptions on the query service and keeps them open until closed."""

    def __init__(self, suite: Suite) -> None:
        self.channel = grpc.aio.insecure_channel(suite.address("query"))
        self.stub = query_pb2_grpc.QueryServiceStub(self.channel)
        self.calls: list[grpc.aio.UnaryStreamCall] = []

    async def live(self, metadata: Metadata) -> grpc.aio.UnaryStreamCall:
        """A subscription that is live (storage has sent its caught-up marker)."""
        call = self.stub.Subscribe(query_pb2.SubscribeRequest(from_end=True), metadata=metadata, timeout=60)
        self.calls.append(call)
        assert (await call.read()).WhichOneof("content") == "caught_up"
        return call

    async def refused(self, metadata: Metadata) -> tuple[str, str, dict[str, str], float | None, list[str]]:
        call = self.stub.Subscribe(query_pb2.SubscribeRequest(from_end=True), metadata=metadata, timeout=60)
        self.calls.append(call)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call.read()
        return refusal(err.value)

    async def close(self) -> None:
        for call in self.calls:
            call.cancel()
        await self.channel.close()


def no_subscriptions_left(suite: Suite) -> None:
    """Wait for the subscriptions of earlier tests to be gone from storage (and so from query)."""
    suite.wait_until(lambda: storage_subscriptions(suite) == 0, timeout=15, what="earlier subscriptions closed")


def test_subscriptions_past_the_tenants_share_or_the_process_total_are_refused_clearly(
    capped: tuple[Suite, Path],
) -> None:
    suite, config = capped
    configure(suite, config, "[query]\nmax_subscriptions = 3\nmax_subscriptions_per_tenant = 2\n")
    no_subscriptions_left(suite)
    first = suite.create_tenant(f"capa-{uuid.uuid4().hex[:6]}")
    second = suite.create_tenant(f"capb-{uuid.uuid4().hex[:6]}")

    async def main() -> None:
        subscriber = Subscriber(suite)
        try:
            held = [await subscriber.live(first), await subscriber.live(first)]
            # The first tenant's share is used up: its own refusal, a quota it can do something about.
            code, reason, metadata, retry, quotas = await subscriber.refused(first)
            assert (code, reason) == ("RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"), (code, reason, metadata)
            assert metadata.get("limit") == "max_subscriptions_per_tenant" and metadata.get("value") == "2"
            assert quotas == ["max_subscriptions_per_tenant"]
            assert retry is not None and retry > 0
            # Another tenant still has a share, until the process as a whole is full (3).
            await subscriber.live(second)
            code, reason, metadata, retry, _ = await subscriber.refused(second)
            assert (code, reason) == ("UNAVAILABLE", "OVERLOADED"), (code, reason, metadata)
            assert metadata.get("limit") == "max_subscriptions" and metadata.get("value") == "3"
            assert retry is not None and retry > 0
            # Refusals hold nothing: storage follows exactly the three live subscriptions.
            assert storage_subscriptions(suite) == 3
            # Closing one frees its slot for anyone.
            held[0].cancel()
            deadline = time.monotonic() + 10
            while True:
                call = subscriber.stub.Subscribe(query_pb2.SubscribeRequest(from_end=True), metadata=second)
                subscriber.calls.append(call)
                try:
                    assert (await call.read()).WhichOneof("content") == "caught_up"
                    break
                except grpc.aio.AioRpcError as err:
                    assert refusal(err)[:2] == ("UNAVAILABLE", "OVERLOADED"), refusal(err)
                    assert time.monotonic() < deadline, "a closed subscription's slot was never freed"
                    await asyncio.sleep(0.05)
        finally:
            await subscriber.close()

    asyncio.run(main())


def test_subscriptions_past_storages_total_are_refused_clearly(capped: tuple[Suite, Path]) -> None:
    suite, config = capped
    # Query's caps above storage's, so that storage's is the one reached.
    configure(
        suite,
        config,
        "[query]\nmax_subscriptions = 10\nmax_subscriptions_per_tenant = 10\n[storage]\nmax_subscriptions = 2\n",
    )
    no_subscriptions_left(suite)
    tenant = suite.create_tenant(f"capc-{uuid.uuid4().hex[:6]}")

    async def main() -> None:
        subscriber = Subscriber(suite)
        try:
            await subscriber.live(tenant)
            await subscriber.live(tenant)
            code, reason, metadata, retry, _ = await subscriber.refused(tenant)
            assert (code, reason) == ("UNAVAILABLE", "OVERLOADED"), (code, reason, metadata)
            assert metadata.get("limit") == "storage.max_subscriptions" and metadata.get("value") == "2"
            assert retry is not None and retry > 0
            assert storage_subscriptions(suite) == 2
        finally:
            await subscriber.close()

    try:
        asyncio.run(main())
    finally:
        configure(suite, config, "")
