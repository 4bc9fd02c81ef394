"""`groups`: consumer groups of the acting tenant — list, info, create, delete, parked, replay (QueryService)."""

from __future__ import annotations

from typing import Any

import click
from allsource.v1 import groups_pb2
from google.protobuf import duration_pb2

from services.cli.context import Invocation, pass_invocation
from services.cli.output import Column, OutputFormat, label, when
from services.cli.params import Choice, Duration, complete_stream_ids

STRATEGIES = {
    "round-robin": groups_pb2.CONSUMER_STRATEGY_ROUND_ROBIN,
    "by-stream": groups_pb2.CONSUMER_STRATEGY_BY_STREAM,
}
# The server's own page limit (groups.proto): a page never holds more.
PAGE_LIMIT = 1000


def filter_text(group: Any) -> str:
    """What a group delivers, for people."""
    where = f"stream {group.stream_id}" if group.stream_id else f"prefix {group.stream_id_prefix or '(all)'}"
    return where + (f"; types {', '.join(group.event_types)}" if group.event_types else "")


def strategy_text(group: Any) -> str:
    return label(groups_pb2.ConsumerStrategy.Name(group.settings.strategy), "CONSUMER_STRATEGY_").replace(
        "unspecified", "round-robin"
    )


GROUP_COLUMNS: list[Column] = [
    ("group", lambda g: g.name),
    ("filter", filter_text),
    ("strategy", strategy_text),
    ("created", lambda g: when(g.create_time)),
]
PARKED_COLUMNS: list[Column] = [
    ("position", lambda p: p.event.position),
    ("stream", lambda p: p.event.stream_id),
    ("version", lambda p: p.event.version),
    ("type", lambda p: p.event.event_type),
    ("retries", lambda p: p.retry_count),
    ("reason", lambda p: p.reason),
    ("parked", lambda p: when(p.park_time)),
]


@click.group("groups")
def group() -> None:
    """Consumer groups (durable subscriptions shared by competing consumers) of the acting tenant."""


def _pages(inv: Invocation, method: Any, request: Any, items: str, limit: int) -> list[Any]:
    """Up to `limit` items of a paginated List call."""
    found: list[Any] = []
    while len(found) < limit:
        request.page_size = min(limit - len(found), PAGE_LIMIT)
        page = inv.session.call(method, request)
        found.extend(getattr(page, items))
        request.page_token = page.next_page_token
        if not page.next_page_token:
            break
    return found[:limit]


@group.command("list")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True, help="At most this many.")
@pass_invocation
def list_groups(inv: Invocation, limit: int) -> None:
    """List consumer groups by name."""
    groups = _pages(inv, inv.session.query.ListConsumerGroups, groups_pb2.ListConsumerGroupsRequest(), "groups", limit)
    inv.emit(groups, GROUP_COLUMNS, empty="no consumer groups")


@group.command("info")
@click.argument("name")
@pass_invocation
def info(inv: Invocation, name: str) -> None:
    """A group's filter and settings, its checkpoint, lag, in-flight and parked counts, and its consumers."""
    reply = inv.session.call(inv.session.query.GetConsumerGroup, groups_pb2.GetConsumerGroupRequest(name=name))
    if inv.output is not OutputFormat.TABLE:
        inv.emit(reply)
        return
    g, s = reply.group, reply.status
    inv.emit(
        reply,
        [
            ("group", lambda _: g.name),
            ("filter", lambda _: filter_text(g)),
            ("strategy", lambda _: strategy_text(g)),
            ("checkpoint", lambda _: s.checkpoint),
            ("head position", lambda _: s.head_position),
            ("lag", lambda _: s.lag),
            ("in flight", lambda _: s.in_flight),
            ("parked", lambda _: s.parked_count),
            ("created", lambda _: when(g.create_time)),
        ],
    )
    inv.emit(
        list(s.consumers),
        [
            ("consumer", lambda c: c.consumer_id),
            ("name", lambda c: c.name),
            ("in flight", lambda c: c.in_flight),
            ("acked", lambda c: c.acked),
        ],
        title="consumers",
        empty="no consumers connected",
    )


@group.command("create")
@click.argument("name")
@click.option("--stream", default="", shell_complete=complete_stream_ids, help="Only this stream's events.")
@click.option("--prefix", default="", shell_complete=complete_stream_ids, help="Only streams starting with this.")
@click.option("--type", "types", multiple=True, help="Only this event type (repeatable).")
@click.option("--from-end", is_flag=True, help="Start at the end of the log: only later events.")
@click.option("--after-position", type=click.IntRange(min=1), help="Start after this position.")
@click.option("--strategy", type=Choice(STRATEGIES), help="round-robin (the default) or by-stream.")
@click.option("--max-in-flight", type=click.IntRange(1, 1000), help="Unacked events per consumer.")
@click.option("--ack-timeout", type=Duration(), help="Redeliver what stays unacked this long (30s by default).")
@click.option("--max-retries", type=click.IntRange(0, 1000), help="Deliveries before an event is parked.")
@pass_invocation
def create(
    inv: Invocation,
    name: str,
    stream: str,
    prefix: str,
    types: tuple[str, ...],
    from_end: bool,
    after_position: int | None,
    strategy: int | None,
    max_in_flight: int | None,
    ack_timeout: duration_pb2.Duration | None,
    max_retries: int | None,
) -> None:
    """Create a consumer group."""
    if from_end and after_position is not None:
        raise click.UsageError("give --from-end or --after-position, not both")
    start = groups_pb2.CONSUMER_GROUP_START_BEGINNING
    if from_end:
        start = groups_pb2.CONSUMER_GROUP_START_END
    elif after_position is not None:
        start = groups_pb2.CONSUMER_GROUP_START_POSITION
    settings = groups_pb2.ConsumerGroupSettings(
        max_in_flight_per_consumer=max_in_flight or 0,
        ack_timeout=ack_timeout,
        strategy=strategy or groups_pb2.CONSUMER_STRATEGY_UNSPECIFIED,  # type: ignore[arg-type]
    )
    if max_retries is not None:
        settings.max_retries = max_retries
    request = groups_pb2.CreateConsumerGroupRequest(
        group=groups_pb2.ConsumerGroup(
            name=name,
            stream_id=stream,
            stream_id_prefix=prefix,
            event_types=list(types),
            start=start,
            start_position=after_position or 0,
            settings=settings,
        )
    )
    reply = inv.session.call(inv.session.query.CreateConsumerGroup, request)
    inv.emit(reply.group, GROUP_COLUMNS)


@group.command("delete")
@click.argument("name")
@pass_invocation
def delete(inv: Invocation, name: str) -> None:
    """Delete a group with its checkpoint and parked events; its consumers' streams end."""
    inv.session.call(inv.session.query.DeleteConsumerGroup, groups_pb2.DeleteConsumerGroupRequest(name=name))
    inv.emit({"group": name, "deleted": True}, [("group", lambda r: r["group"]), ("deleted", lambda r: "yes")])


@group.command("parked")
@click.argument("name")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True, help="At most this many.")
@pass_invocation
def parked(inv: Invocation, name: str, limit: int) -> None:
    """A group's parked events, oldest position first, with why each was parked."""
    events = _pages(inv, inv.session.query.ListParked, groups_pb2.ListParkedRequest(group=name), "events", limit)
    inv.emit(events, PARKED_COLUMNS, empty="no parked events")


@group.command("replay")
@click.argument("name")
@click.option(
    "--max", "max_events", type=click.IntRange(1, 1000), default=1000, show_default=True, help="At most this many."
)
@pass_invocation
def replay(inv: Invocation, name: str, max_events: int) -> None:
    """Deliver a group's parked events again, oldest first; each stays parked until acked or skipped."""
    request = groups_pb2.ReplayParkedRequest(group=name, max_events=max_events)
    reply = inv.session.call(inv.session.query.ReplayParked, request)
    inv.emit(reply, [("replayed", lambda r: r.replayed)])
