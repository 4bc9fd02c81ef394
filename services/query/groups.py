"""QueryService's consumer-group RPCs: validation, quota and paging here, state and dispatch in storage.

Storage is the one authority over each group (services/storage/groups.py), whatever the number of query
replicas; a replica only carries its consumers' Consume streams, each on one of the storage client's
stream connections, and counts them: past query.max_consume_streams_per_tenant RESOURCE_EXHAUSTED /
QUOTA_EXCEEDED, past query.max_consume_streams UNAVAILABLE / OVERLOADED.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import grpc
from allsource.storage.v1 import groups_pb2 as storage_groups
from allsource.v1 import event_pb2, groups_pb2

from services.query.subscriptions import StreamSlots
from shared.auth.principal import current
from shared.config.settings import LimitsSettings, QuerySettings
from shared.core import pagination
from shared.core.errors import AllSourceError, InvalidArgument, PermissionDenied
from shared.core.reasons import Reason
from shared.limits.governor import charge, current_limit
from shared.limits.memory import MemoryMonitor
from shared.rpc.streams import until_closed
from shared.storage.client import StorageClient
from shared.tenancy.scope import narrow, require_whole_streams, tenant_of

NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
MAX_IN_FLIGHT = 1000
MAX_ACK_IDS = 1000
SETTINGS_PATHS = {"settings", *(f"settings.{f.name}" for f in groups_pb2.ConsumerGroupSettings.DESCRIPTOR.fields)}


def name_problem(name: str) -> str | None:
    """What is wrong with a group name, or None."""
    return None if NAME.fullmatch(name) else "must be 1 to 64 characters of A-Z a-z 0-9 . _ -"


def check_name(name: str, field: str = "name") -> None:
    """Refuse a malformed group name."""
    if problem := name_problem(name):
        raise InvalidArgument(f"{field} {problem}", reason=Reason.INVALID_CONSUMER_GROUP, violations=[(field, problem)])


def settings_problems(s: groups_pb2.ConsumerGroupSettings) -> list[tuple[str, str]]:
    """What is wrong with a group's settings."""
    problems = []
    if s.max_in_flight_per_consumer > MAX_IN_FLIGHT:
        problems.append(("group.settings.max_in_flight_per_consumer", f"must be at most {MAX_IN_FLIGHT}"))
    if s.HasField("ack_timeout") and not 0.1 <= s.ack_timeout.ToNanoseconds() / 1e9 <= 3600:
        problems.append(("group.settings.ack_timeout", "must be between 100 ms and one hour"))
    if s.HasField("max_retries") and s.max_retries > 1000:
        problems.append(("group.settings.max_retries", "must be at most 1000"))
    if s.strategy not in groups_pb2.ConsumerStrategy.values():
        problems.append(("group.settings.strategy", "must be ROUND_ROBIN or BY_STREAM"))
    return problems


class ConsumerGroupRPCs:
    """The consumer-group RPCs of QueryService (mixed into QueryServicer)."""

    storage: StorageClient
    settings: QuerySettings
    limits: LimitsSettings
    consume_slots: StreamSlots
    memory: MemoryMonitor

    def _check_definition(self, group: groups_pb2.ConsumerGroup) -> None:
        from services.query.servicer import check_filter  # the filter rules are the reads' rules

        violations = []
        if problem := name_problem(group.name):
            violations.append(("group.name", problem))
        violations += settings_problems(group.settings)
        if group.start not in groups_pb2.ConsumerGroupStart.values():
            violations.append(("group.start", "must be BEGINNING, END or POSITION"))
        if group.start_position and group.start != groups_pb2.CONSUMER_GROUP_START_POSITION:
            violations.append(("group.start_position", "must be 0 unless start is POSITION"))
        if violations:
            raise InvalidArgument(
                "the consumer group is invalid", reason=Reason.INVALID_CONSUMER_GROUP, violations=violations
            )
        check_filter(
            event_pb2.EventFilter(
                stream_id=group.stream_id, stream_id_prefix=group.stream_id_prefix, event_types=group.event_types
            ),
            self.limits,
            "group",
        )

    async def CreateConsumerGroup(
        self, request: groups_pb2.CreateConsumerGroupRequest, context: grpc.aio.ServicerContext
    ) -> groups_pb2.CreateConsumerGroupResponse:
        self._check_definition(request.group)
        require_whole_streams("create a consumer group")
        upstream = storage_groups.CreateConsumerGroupRequest(tenant_id=tenant_of(context), group=request.group)
        # A credential limited to a stream prefix makes a group within it: what the group leaves open is
        # narrowed to the prefix, what reaches beyond it is refused (as for subscriptions).
        scoped = event_pb2.EventFilter(
            stream_id=request.group.stream_id, stream_id_prefix=request.group.stream_id_prefix
        )
        narrow(scoped)
        upstream.group.stream_id_prefix = scoped.stream_id_prefix
        upstream.group.ClearField("create_time")
        quota = current_limit("max_consumer_groups")
        if quota is not None:
            upstream.max_groups = quota
        reply = await self.storage.create_consumer_group(upstream)
        return groups_pb2.CreateConsumerGroupResponse(group=reply.group)

    async def UpdateConsumerGroup(
        self, request: groups_pb2.UpdateConsumerGroupRequest, context: grpc.aio.ServicerContext
    ) -> groups_pb2.UpdateConsumerGroupResponse:
        check_name(request.group.name, "group.name")
        paths = list(request.update_mask.paths) or ["settings"]
        violations = [("update_mask", f"{p!r} cannot be changed") for p in paths if p not in SETTINGS_PATHS]
        violations += settings_problems(request.group.settings)
        if violations:
            raise InvalidArgument("the update is invalid", reason=Reason.INVALID_CONSUMER_GROUP, violations=violations)
        reply = await self.storage.update_consumer_group(
            storage_groups.UpdateConsumerGroupRequest(tenant_id=tenant_of(context), group=request.group, paths=paths)
        )
        return groups_pb2.UpdateConsumerGroupResponse(group=reply.group)

    async def DeleteConsumerGroup(
        self, request: groups_pb2.DeleteConsumerGroupRequest, context: grpc.aio.ServicerContext
    ) -> groups_pb2.DeleteConsumerGroupResponse:
        check_name(request.name)
        await self.storage.delete_consumer_group(
            storage_groups.DeleteConsumerGroupRequest(tenant_id=tenant_of(context), name=request.name)
        )
        return groups_pb2.DeleteConsumerGroupResponse()

    async def ListConsumerGroups(
        self, request: groups_pb2.ListConsumerGroupsRequest, context: grpc.aio.ServicerContext
    ) -> groups_pb2.ListConsumerGroupsResponse:
        tenant = tenant_of(context)
        size = pagination.page_size(request.page_size, self.settings.default_page_size, self.settings.max_page_size)
        bound = pagination.fingerprint("ListConsumerGroups", tenant)
        after = pagination.cursor_str(pagination.decode(request.page_token, bound), "g") if request.page_token else ""
        reply = await self.storage.list_consumer_groups(
            storage_groups.ListConsumerGroupsRequest(tenant_id=tenant, after_name=after, limit=size)
        )
        token = "" if reply.end or not reply.groups else pagination.encode(bound, {"g": reply.groups[-1].name})
        return groups_pb2.ListConsumerGroupsResponse(groups=reply.groups, next_page_token=token)

    async def GetConsumerGroup(
        self, request: groups_pb2.GetConsumerGroupRequest, context: grpc.aio.ServicerContext
    ) -> groups_pb2.GetConsumerGroupResponse:
        check_name(request.name)
        reply = await self.storage.get_consumer_group(
            storage_groups.GetConsumerGroupRequest(tenant_id=tenant_of(context), name=request.name)
        )
        return groups_pb2.GetConsumerGroupResponse(group=reply.group, status=reply.status)

    async def _within_scope(self, tenant: str, name: str) -> None:
        """Refuse (SCOPE_RESTRICTED) a credential limited to a stream prefix or to event types the use of a
        group whose filter reaches beyond that scope: its events, parked ones included, would be seen."""
        principal = current()
        if principal is None or not (principal.stream_id_prefix or principal.event_types):
            return
        reply = await self.storage.get_consumer_group(
            storage_groups.GetConsumerGroupRequest(tenant_id=tenant, name=name)
        )
        g = reply.group
        streams = (
            not principal.stream_id_prefix
            or (bool(g.stream_id) and principal.allows_stream(g.stream_id))
            or (not g.stream_id and bool(g.stream_id_prefix) and principal.allows_prefix(g.stream_id_prefix))
        )
        types = not principal.event_types or (bool(g.event_types) and all(map(principal.allows_type, g.event_types)))
        if not (streams and types):
            raise PermissionDenied(
                f"this credential may not use consumer group {name!r}: its filter reaches beyond the credential's "
                "streams or event types",
                reason=Reason.SCOPE_RESTRICTED,
                metadata={"group": name},
            )

    async def ListParked(
        self, request: groups_pb2.ListParkedRequest, context: grpc.aio.ServicerContext
    ) -> groups_pb2.ListParkedResponse:
        check_name(request.group, "group")
        tenant = tenant_of(context)
        await self._within_scope(tenant, request.group)
        size = pagination.page_size(request.page_size, self.settings.default_page_size, self.settings.max_page_size)
        bound = pagination.fingerprint("ListParked", tenant, request.group)
        after = pagination.cursor_int(pagination.decode(request.page_token, bound), "p") if request.page_token else 0
        reply = await self.storage.list_parked(
            storage_groups.ListParkedRequest(tenant_id=tenant, group=request.group, after_position=after, limit=size)
        )
        token = ""
        if not reply.end and reply.events:
            token = pagination.encode(bound, {"p": reply.events[-1].event.position})
        return groups_pb2.ListParkedResponse(events=reply.events, next_page_token=token)

    async def ReplayParked(
        self, request: groups_pb2.ReplayParkedRequest, context: grpc.aio.ServicerContext
    ) -> groups_pb2.ReplayParkedResponse:
        check_name(request.group, "group")
        if request.max_events < 0:
            raise InvalidArgument(
                "max_events must not be negative", violations=[("max_events", "must not be negative")]
            )
        await self._within_scope(tenant_of(context), request.group)
        reply = await self.storage.replay_parked(
            storage_groups.ReplayParkedRequest(
                tenant_id=tenant_of(context), group=request.group, max_events=request.max_events
            )
        )
        return groups_pb2.ReplayParkedResponse(replayed=reply.replayed)

    async def Consume(
        self, request_iterator: AsyncIterator[groups_pb2.ConsumeRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[groups_pb2.ConsumeResponse]:
        tenant = tenant_of(context)
        iterator = request_iterator.__aiter__()
        try:
            first = await iterator.__anext__()
        except StopAsyncIteration:
            return
        if first.WhichOneof("content") != "join":
            raise InvalidArgument(
                "the first message of a Consume stream is a join",
                reason=Reason.INVALID_CONSUME_MESSAGE,
                violations=[("join", "must be the first message")],
            )
        join = first.join
        check_name(join.group, "join.group")
        violations = []
        if len(join.consumer_name) > 128:
            violations.append(("join.consumer_name", "must be at most 128 characters"))
        if join.max_in_flight > MAX_IN_FLIGHT:
            violations.append(("join.max_in_flight", f"must be at most {MAX_IN_FLIGHT}"))
        if violations:
            raise InvalidArgument("the join is invalid", violations=violations)
        await self._within_scope(tenant, join.group)
        refused: list[AllSourceError] = []

        async def upstream() -> AsyncIterator[storage_groups.ConsumeRequest]:
            yield storage_groups.ConsumeRequest(tenant_id=tenant, request=first)
            async for message in iterator:
                kind = message.WhichOneof("content")
                if kind not in ("ack", "nack"):  # storage answers a second join with its refusal
                    yield storage_groups.ConsumeRequest(tenant_id=tenant, request=message)
                    return
                ids = message.ack.positions if kind == "ack" else message.nack.positions
                if len(ids) > MAX_ACK_IDS:
                    # Refused whole, nothing of it applied: the upstream ends, then the stream with this.
                    refused.append(
                        InvalidArgument(
                            f"an {kind} names at most {MAX_ACK_IDS} positions",
                            reason=Reason.INVALID_CONSUME_MESSAGE,
                            violations=[(f"{kind}.positions", f"at most {MAX_ACK_IDS}")],
                        )
                    )
                    return
                yield storage_groups.ConsumeRequest(tenant_id=tenant, request=message)

        self.memory.admit("Consume streams")
        with self.consume_slots.hold(tenant):
            async for message in until_closed(self.storage.consume(upstream()), self.closing):  # type: ignore[attr-defined]
                if refused:
                    continue  # storage ends the stream now that its upstream has ended
                if message.WhichOneof("content") == "delivery":
                    await charge(len(message.delivery.events))
                yield message
        if refused:
            raise refused[0]
