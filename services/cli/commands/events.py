"""`events`: append, get, read, state, tail a subscription, export to NDJSON and import it again, and delete
by criteria (a dry run first, then a confirmation)."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click
import grpc
import yaml
from allsource.v1 import admin_pb2, event_pb2, ingest_pb2, lifecycle_pb2, query_pb2
from google.protobuf import timestamp_pb2

from services.cli import ndjson
from services.cli.context import Invocation, pass_invocation
from services.cli.errors import ServerRefusal, UsageProblem
from services.cli.output import Column, OutputFormat, as_data, note, progress, when
from services.cli.params import KeyValue, Moment, complete_stream_ids

EVENT_COLUMNS: list[Column] = [
    ("position", lambda e: e.position),
    ("stream", lambda e: e.stream_id),
    ("version", lambda e: e.version),
    ("type", lambda e: e.event_type),
    ("recorded", lambda e: when(e.recorded_at)),
    ("payload", lambda e: payload_text(e)),
]
EXPECTED = {
    "any": ingest_pb2.ExpectedVersion(kind=ingest_pb2.EXPECTED_VERSION_KIND_ANY),
    "no-stream": ingest_pb2.ExpectedVersion(kind=ingest_pb2.EXPECTED_VERSION_KIND_NO_STREAM),
    "exists": ingest_pb2.ExpectedVersion(kind=ingest_pb2.EXPECTED_VERSION_KIND_STREAM_EXISTS),
}


def payload_text(event: Any, width: int = 60) -> str:
    """The payload as text when it is text, shortened for a table."""
    try:
        text = bytes(event.payload).decode()
    except UnicodeDecodeError:
        return f"<{len(event.payload)} bytes {event.content_type}>"
    return text if len(text) <= width else text[: width - 1] + "…"


def expected_version(value: str) -> ingest_pb2.ExpectedVersion:
    """--expected: any, no-stream, exists, or an exact version number."""
    if value in EXPECTED:
        return EXPECTED[value]
    if value.isdigit():
        return ingest_pb2.ExpectedVersion(kind=ingest_pb2.EXPECTED_VERSION_KIND_EXACT, version=int(value))
    raise click.BadParameter("any, no-stream, exists or a version number", param_hint="--expected")


def event_filter(stream: str, prefix: str, types: tuple[str, ...], after_position: int = 0) -> event_pb2.EventFilter:
    """An EventFilter from the command's options."""
    return event_pb2.EventFilter(
        stream_id=stream,
        stream_id_prefix=prefix,
        event_types=list(types),
        from_position=after_position + 1 if after_position else 0,
    )


stream_argument = click.argument("stream_id", shell_complete=complete_stream_ids)


@click.group("events")
def group() -> None:
    """Events of the acting tenant: append, read, tail, export, import and delete by criteria."""


@group.command("append")
@stream_argument
@click.option("--type", "event_type", required=True, help="The event type, for example OrderPlaced.")
@click.option("--data", default="{}", show_default=True, help="The payload; @FILE reads it from a file.")
@click.option("--content-type", default="", help="The payload's MIME type (application/json by default).")
@click.option("--metadata", multiple=True, type=KeyValue(), help="Metadata KEY=VALUE (repeatable).")
@click.option("--event-id", default="", help="A UUID for the event (the server assigns one by default).")
@click.option("--expected", default="any", show_default=True, help="any, no-stream, exists or a version.")
@pass_invocation
def append(
    inv: Invocation,
    stream_id: str,
    event_type: str,
    data: str,
    content_type: str,
    metadata: tuple[tuple[str, str], ...],
    event_id: str,
    expected: str,
) -> None:
    """Append one event to a stream."""
    if data.startswith("@"):
        try:
            payload = Path(data[1:]).read_bytes()
        except OSError as exc:
            raise UsageProblem(f"cannot read {data[1:]}: {exc.strerror}") from None
    else:
        payload = data.encode()
    request = ingest_pb2.AppendEventsRequest(
        stream_id=stream_id,
        expected_version=expected_version(expected),
        events=[
            event_pb2.EventData(
                event_id=event_id,
                event_type=event_type,
                payload=payload,
                content_type=content_type,
                metadata=dict(metadata),
            )
        ],
    )
    reply = inv.session.call(inv.session.ingest.AppendEvents, request)
    inv.emit(
        reply,
        [
            ("event id", lambda r: list(r.event_ids)),
            ("version", lambda r: r.last_version),
            ("position", lambda r: r.last_position),
            ("recorded", lambda r: when(r.recorded_at)),
            ("deduplicated", lambda r: "yes" if r.deduplicated else "no"),
        ],
    )


@group.command("get")
@click.argument("event_id")
@pass_invocation
def get(inv: Invocation, event_id: str) -> None:
    """Show one event by id."""
    reply = inv.session.call(inv.session.query.GetEvent, query_pb2.GetEventRequest(event_id=event_id))
    inv.emit(reply.event, [*EVENT_COLUMNS[:-1], ("event id", lambda e: e.event_id), ("payload", payload_text)])


@group.command("read")
@stream_argument
@click.option("--backward", is_flag=True, help="Newest first.")
@click.option("--from-version", type=click.IntRange(min=0), default=0, help="Start at this version.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True, help="At most this many.")
@pass_invocation
def read(inv: Invocation, stream_id: str, backward: bool, from_version: int, limit: int) -> None:
    """Read a stream's events."""
    events: list[Any] = []
    token = ""
    while len(events) < limit:
        page = inv.session.call(
            inv.session.query.ReadStream,
            query_pb2.ReadStreamRequest(
                stream_id=stream_id,
                direction=query_pb2.READ_DIRECTION_BACKWARD if backward else query_pb2.READ_DIRECTION_FORWARD,
                from_version=from_version,
                page_size=min(limit, 1000),
                page_token=token,
            ),
        )
        events.extend(page.events)
        token = page.next_page_token
        if not token:
            break
    inv.emit(events[:limit], EVENT_COLUMNS, empty="no events")


@group.command("state")
@stream_argument
@click.option("--as-of-version", type=click.IntRange(min=1), help="Fold up to this version.")
@pass_invocation
def state(inv: Invocation, stream_id: str, as_of_version: int | None) -> None:
    """A stream's folded state (its JSON payloads' top-level keys merged in order)."""
    request = query_pb2.GetEntityStateRequest(stream_id=stream_id)
    if as_of_version is not None:
        request.as_of_version = as_of_version
    reply = inv.session.call(inv.session.query.GetEntityState, request)
    folded = json.loads(reply.state or b"{}")
    inv.emit(
        {"stream_id": reply.stream_id, "version": reply.version, "updated_at": when(reply.updated_at), "state": folded},
        [
            ("stream", lambda r: r["stream_id"]),
            ("version", lambda r: r["version"]),
            ("updated", lambda r: r["updated_at"]),
            ("state", lambda r: json.dumps(r["state"], ensure_ascii=False)),
        ],
    )


@group.command("tail")
@click.option("--prefix", default="", shell_complete=complete_stream_ids, help="Only streams starting with this.")
@click.option("--type", "types", multiple=True, help="Only this event type (repeatable).")
@click.option("--after-position", type=click.IntRange(min=0), default=0, help="Catch up after this position.")
@click.option("--from-end", is_flag=True, help="Only events committed from now on.")
@click.option("--count", type=click.IntRange(min=1), help="Stop after this many events.")
@click.option("--timeout", type=click.FloatRange(min=0.1), help="Stop after this many seconds.")
@pass_invocation
def tail(
    inv: Invocation,
    prefix: str,
    types: tuple[str, ...],
    after_position: int,
    from_end: bool,
    count: int | None,
    timeout: float | None,
) -> None:
    """Follow the tenant's events live (a subscription); --output json prints one event per line."""
    request = query_pb2.SubscribeRequest(
        after_position=after_position, from_end=from_end, event_types=list(types), stream_id_prefix=prefix
    )
    seen = 0
    position = after_position
    messages = inv.session.stream(inv.session.query.Subscribe, request, timeout=timeout)
    try:
        for message in messages:
            kind = message.WhichOneof("content")
            if kind == "caught_up":
                note(f"caught up at position {message.caught_up.position}; following live")
            elif kind == "checkpoint":
                position = max(position, message.checkpoint.position)
            for event in message.events.events if kind == "events" else ():
                _print_event(inv.output, event)
                position = event.position
                seen += 1
                if count is not None and seen >= count:
                    return
    except ServerRefusal as refusal:
        if timeout is None or refusal.error.code != grpc.StatusCode.DEADLINE_EXCEEDED:
            raise
    finally:
        with contextlib.suppress(Exception):
            messages.close()  # type: ignore[attr-defined]
        note(f"last position seen: {position} (resume with --after-position {position})")


def _print_event(fmt: OutputFormat, event: Any) -> None:
    if fmt is OutputFormat.JSON:
        sys.stdout.write(json.dumps(as_data(event), ensure_ascii=False) + "\n")
    elif fmt is OutputFormat.YAML:
        sys.stdout.write("---\n" + yaml.safe_dump(as_data(event), sort_keys=False, allow_unicode=True))
    else:
        sys.stdout.write(
            f"{event.position}  {event.stream_id}@{event.version}  {event.event_type}  {payload_text(event)}\n"
        )
    sys.stdout.flush()


@group.command("export")
@click.argument("path", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--stream", default="", shell_complete=complete_stream_ids, help="Only this stream.")
@click.option("--prefix", default="", shell_complete=complete_stream_ids, help="Only streams starting with this.")
@click.option("--type", "types", multiple=True, help="Only this event type (repeatable).")
@click.option("--after-position", type=click.IntRange(min=0), default=0, help="Only events after this position.")
@click.option("--resume", is_flag=True, help="Continue an interrupted export into the same file.")
@click.option("--batch-size", type=click.IntRange(1, 2000), default=1000, show_default=True)
@pass_invocation
def export(
    inv: Invocation,
    path: str,
    stream: str,
    prefix: str,
    types: tuple[str, ...],
    after_position: int,
    resume: bool,
    batch_size: int,
) -> None:
    """Export events to NDJSON (PATH, or - for stdout), one allsource.v1.Event per line, in position order."""
    if resume:
        if path == "-" or not Path(path).exists():
            raise UsageProblem("--resume needs the file of an earlier export")
        after_position = max(after_position, ndjson.resume_point(path))
        note(f"resuming after position {after_position}")
    session = inv.session
    total = _export_total(inv, stream, prefix, types, after_position)
    written = [0]
    last = after_position

    def on_batch(count: int, position: int) -> None:
        written[0] += count
        bar.advance(bar.task_ids[0], count)

    with _open_out(path, append=resume) as out, progress(total, "exporting") as bar:
        try:
            for position in ndjson.export_events(
                session,
                out,
                event_filter(stream, prefix, types, after_position),
                batch_size=batch_size,
                on_batch=on_batch,
            ):
                last = position
        finally:
            if path != "-" or inv.output is OutputFormat.TABLE:
                note(f"last position written: {last}")
    summary = {"file": path, "events": written[0], "last_position": last}
    if path == "-":
        return
    inv.emit(
        summary,
        [
            ("file", lambda s: s["file"]),
            ("events", lambda s: s["events"]),
            ("last position", lambda s: s["last_position"]),
        ],
        title="exported",
    )


def _export_total(inv: Invocation, stream: str, prefix: str, types: tuple[str, ...], after: int) -> int | None:
    """How many events an unfiltered export will write (for the bar), when the caller may know."""
    if stream or prefix or types:
        return None
    try:
        stats = inv.session.call(inv.session.admin.GetTenantStats, admin_pb2.GetTenantStatsRequest())
    except ServerRefusal:
        return None
    return max(0, int(stats.stats.events) - after) or None


@contextlib.contextmanager
def _open_out(path: str, append: bool) -> Iterator[IO[bytes]]:
    if path == "-":
        yield sys.stdout.buffer
        return
    try:
        handle = open(path, "ab" if append else "wb")
    except OSError as exc:
        raise UsageProblem(f"cannot write {path}: {exc.strerror}") from None
    with handle:
        yield handle


@group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option(
    "--renumber",
    is_flag=True,
    help="Append after whatever the streams hold (versions renumbered) instead of keeping the file's versions.",
)
@pass_invocation
def import_(inv: Invocation, path: str, renumber: bool) -> None:
    """Import NDJSON events (from export) into the acting tenant; importing twice writes nothing new."""
    total = _count_lines(path) if path != "-" else None
    started = time.monotonic()
    with _open_in(path) as lines, progress(total, "importing") as bar:
        result = ndjson.import_events(
            inv.session,
            ndjson.read_events(lines),
            keep_versions=not renumber,
            on_progress=lambda n: bar.advance(bar.task_ids[0], n),
        )
    summary = {**result.as_dict(), "seconds": round(time.monotonic() - started, 2)}
    inv.emit(
        summary,
        [
            ("events", lambda s: s["events"]),
            ("appended", lambda s: s["appended"]),
            ("already there", lambda s: s["deduplicated"]),
            ("streams", lambda s: s["streams"]),
            ("appends", lambda s: s["appends"]),
            ("seconds", lambda s: s["seconds"]),
        ],
        title="imported",
    )


def _count_lines(path: str) -> int | None:
    count = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            count += block.count(b"\n")
    return count or None


@contextlib.contextmanager
def _open_in(path: str) -> Iterator[IO[bytes]]:
    if path == "-":
        yield sys.stdin.buffer
        return
    with open(path, "rb") as handle:
        yield handle


DELETE_COLUMNS: list[Column] = [
    ("events", lambda r: r.events_deleted),
    ("streams", lambda r: r.streams_affected),
    ("bytes freed", lambda r: r.bytes_freed),
    ("dry run", lambda r: "yes" if r.dry_run else "no"),
]


@group.command("delete")
@click.option("--prefix", default="", shell_complete=complete_stream_ids, help="Only streams starting with this.")
@click.option("--type", "types", multiple=True, help="Only this event type (repeatable).")
@click.option("--since", type=Moment(), help="Only events recorded from this time: ISO 8601 or a duration ago (2d).")
@click.option("--until", type=Moment(), help="Only events recorded before this time.")
@click.option("--dry-run", is_flag=True, help="Only count what would be erased.")
@click.option("--yes", is_flag=True, help="Do not ask: erase after the count.")
@pass_invocation
def delete(
    inv: Invocation,
    prefix: str,
    types: tuple[str, ...],
    since: timestamp_pb2.Timestamp | None,
    until: timestamp_pb2.Timestamp | None,
    dry_run: bool,
    yes: bool,
) -> None:
    """Erase the events matching every criterion given (at least one), irreversibly (tenant administrators).

    A dry run counts them first; the erasure then needs a confirmation on the terminal, or --yes."""
    request = lifecycle_pb2.DeleteEventsRequest(
        stream_id_prefix=prefix, event_types=list(types), start_time=since, end_time=until, dry_run=True
    )
    counted = inv.session.call(inv.session.ingest.DeleteEvents, request)
    if dry_run or counted.events_deleted == 0:
        if not dry_run:
            note("no event matches: nothing to erase")
        inv.emit(counted, DELETE_COLUMNS, title="would erase")
        return
    question = f"Erase {counted.events_deleted} events of {counted.streams_affected} streams? This cannot be undone"
    if not yes:
        if not sys.stdin.isatty():
            note(question.split("?")[0] + " (dry run)")
            raise UsageProblem("erasing events needs --yes when there is no terminal to confirm on")
        if not click.confirm(question, default=False, err=True):
            raise UsageProblem("not confirmed; nothing was erased")
    request.dry_run = False
    inv.emit(inv.session.call(inv.session.ingest.DeleteEvents, request), DELETE_COLUMNS, title="erased")
