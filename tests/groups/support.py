"""Helpers of the consumer-group tests: appending events and a threaded Python consumer."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import grpc
from allsource.v1 import event_pb2, groups_pb2, ingest_pb2, ingest_pb2_grpc, query_pb2_grpc

from tests.harness import Suite

# What a consumer does with one delivered event: "ack", "retry", "park", "skip", or "hold" (nothing).
Policy = Callable[[groups_pb2.DeliveredEvent], str]


def append(suite: Suite, metadata: Sequence[tuple[str, str]], stream_id: str, count: int, kind: str = "Tick") -> None:
    """Append `count` events to one stream, 500 per call."""
    stub = ingest_pb2_grpc.IngestServiceStub(suite.channel("ingest", metadata))
    for start in range(0, count, 500):
        events = [
            event_pb2.EventData(event_type=kind, payload=b'{"i": %d}' % i)
            for i in range(start, min(count, start + 500))
        ]
        stub.AppendEvents(ingest_pb2.AppendEventsRequest(stream_id=stream_id, events=events), timeout=30)


def create_group(suite: Suite, metadata: Sequence[tuple[str, str]], **fields: object) -> groups_pb2.ConsumerGroup:
    """Create a consumer group."""
    stub = query_pb2_grpc.QueryServiceStub(suite.channel("query", metadata))
    reply = stub.CreateConsumerGroup(
        groups_pb2.CreateConsumerGroupRequest(group=groups_pb2.ConsumerGroup(**fields)), timeout=20
    )
    return reply.group


def group_status(suite: Suite, metadata: Sequence[tuple[str, str]], name: str) -> groups_pb2.GetConsumerGroupResponse:
    """GetConsumerGroup."""
    stub = query_pb2_grpc.QueryServiceStub(suite.channel("query", metadata))
    return stub.GetConsumerGroup(groups_pb2.GetConsumerGroupRequest(name=name), timeout=20)


@dataclass
class Consumer:
    """A consumer on its own thread: applies `policy` to each delivered event, acks and nacks in batches."""

    suite: Suite
    metadata: Sequence[tuple[str, str]]
    group: str
    name: str
    policy: Policy = lambda _: "ack"
    max_in_flight: int = 0
    received: list[tuple[int, str, int]] = field(default_factory=list)  # (position, stream, retry_count)
    acked: list[int] = field(default_factory=list)
    error: grpc.RpcError | None = None
    consumer_id: str = ""
    last_ack_at: float = 0.0  # time.perf_counter() when the latest ack was sent

    def __post_init__(self) -> None:
        self._requests: queue.Queue[groups_pb2.ConsumeRequest | None] = queue.Queue()
        self._lock = threading.Lock()
        self.channel = self.suite.channel("query", self.metadata)
        stub = query_pb2_grpc.QueryServiceStub(self.channel)
        join = groups_pb2.ConsumeJoin(group=self.group, consumer_name=self.name, max_in_flight=self.max_in_flight)
        self._requests.put(groups_pb2.ConsumeRequest(join=join))
        self.call = stub.Consume(self._outgoing())
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _outgoing(self) -> Iterator[groups_pb2.ConsumeRequest]:
        while (message := self._requests.get()) is not None:
            yield message

    def _run(self) -> None:
        try:
            for message in self.call:
                if message.WhichOneof("content") == "joined":
                    self.consumer_id = message.joined.consumer_id
                    continue
                decided: dict[str, list[int]] = {}
                for delivered in message.delivery.events:
                    with self._lock:
                        self.received.append(
                            (delivered.event.position, delivered.event.stream_id, delivered.retry_count)
                        )
                    decided.setdefault(self.policy(delivered), []).append(delivered.event.position)
                if decided.get("ack"):
                    self._requests.put(groups_pb2.ConsumeRequest(ack=groups_pb2.ConsumeAck(positions=decided["ack"])))
                    with self._lock:
                        self.acked += decided["ack"]
                        self.last_ack_at = time.perf_counter()
                for action, enum in (
                    ("retry", groups_pb2.NACK_ACTION_RETRY),
                    ("park", groups_pb2.NACK_ACTION_PARK),
                    ("skip", groups_pb2.NACK_ACTION_SKIP),
                ):
                    if decided.get(action):
                        nack = groups_pb2.ConsumeNack(positions=decided[action], action=enum, reason=f"test {action}")
                        self._requests.put(groups_pb2.ConsumeRequest(nack=nack))
        except grpc.RpcError as err:
            self.error = err

    def ack(self, positions: list[int]) -> None:
        """Ack positions held earlier."""
        with self._lock:
            self.acked += positions
        self._requests.put(groups_pb2.ConsumeRequest(ack=groups_pb2.ConsumeAck(positions=positions)))

    def close(self) -> None:
        """End the stream (the way a consumer that dies does: what it holds goes to the others)."""
        self._requests.put(None)
        self.call.cancel()
        self.thread.join(10)
        self.channel.close()

    def wait_joined(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while not self.consumer_id:
            if self.error is not None:
                raise self.error
            if time.monotonic() > deadline:
                raise AssertionError("the consumer did not join")
            time.sleep(0.01)
