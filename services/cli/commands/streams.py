"""`streams`: list the acting tenant's streams (QueryService.ListStreams), read and change their metadata
(GetStreamMetadata, SetStreamMetadata), and delete them, soft or hard (IngestService.DeleteStream)."""

from __future__ import annotations

import sys
from typing import Any

import click
from allsource.v1 import ingest_pb2, lifecycle_pb2, query_pb2
from google.protobuf import duration_pb2

from services.cli.commands.events import expected_version
from services.cli.context import Invocation, pass_invocation
from services.cli.errors import UsageProblem
from services.cli.output import Column, OutputFormat, as_data, when
from services.cli.params import Duration, KeyValue, complete_stream_ids

STREAM_COLUMNS: list[Column] = [
    ("stream", lambda s: s.stream_id),
    ("version", lambda s: s.version),
    ("first position", lambda s: s.first_position),
    ("last position", lambda s: s.last_position),
    ("created", lambda s: when(s.created_at)),
    ("updated", lambda s: when(s.updated_at)),
]


def _age(duration: Any) -> str:
    seconds = duration.seconds + duration.nanos / 1e9
    return f"{seconds:g}s" if seconds else "-"


METADATA_COLUMNS: list[Column] = [
    ("stream", lambda m: m.stream_id),
    ("metadata version", lambda m: m.metadata_version),
    ("stream version", lambda m: m.stream_version),
    ("max age", lambda m: _age(m.metadata.max_age)),
    ("max count", lambda m: m.metadata.max_count or "-"),
    ("truncate before", lambda m: m.metadata.truncate_before or "-"),
    ("custom", lambda m: dict(m.metadata.custom)),
    ("deleted", lambda m: "tombstoned" if m.tombstoned else "soft" if m.deleted else "no"),
]

stream_argument = click.argument("stream_id", shell_complete=complete_stream_ids)


@click.group("streams")
def group() -> None:
    """Streams of the acting tenant: list, metadata (retention, truncation, custom), delete."""


@group.command("list")
@click.option("--prefix", default="", shell_complete=complete_stream_ids, help="Only ids starting with this.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True, help="At most this many.")
@pass_invocation
def list_streams(inv: Invocation, prefix: str, limit: int) -> None:
    """List streams in id order (deleted streams and streams wholly past their max_age are not listed)."""
    streams: list[Any] = []
    token = ""
    while len(streams) < limit:
        page = inv.session.call(
            inv.session.query.ListStreams,
            query_pb2.ListStreamsRequest(stream_id_prefix=prefix, page_size=min(limit, 1000), page_token=token),
        )
        streams.extend(page.streams)
        token = page.next_page_token
        if not token:
            break
    inv.emit(streams[:limit], STREAM_COLUMNS, empty="no streams")


@group.group("metadata")
def metadata() -> None:
    """A stream's metadata: max_age, max_count, truncate_before and custom entries."""


def _get_metadata(inv: Invocation, stream_id: str) -> Any:
    return inv.session.call(
        inv.session.query.GetStreamMetadata, lifecycle_pb2.GetStreamMetadataRequest(stream_id=stream_id)
    )


@metadata.command("get")
@stream_argument
@pass_invocation
def metadata_get(inv: Invocation, stream_id: str) -> None:
    """Show a stream's metadata, its version, and whether the stream is deleted."""
    inv.emit(_get_metadata(inv, stream_id), METADATA_COLUMNS)


@metadata.command("set")
@stream_argument
@click.option("--max-age", type=Duration(), help="Hide events older than this (30d, 12h...; 0s: no limit).")
@click.option("--max-count", type=click.IntRange(min=0), help="Keep only the newest N events (0: no limit).")
@click.option("--truncate-before", type=click.IntRange(min=0), help="Hide versions below this (0: none).")
@click.option("--custom", multiple=True, type=KeyValue(), help="Set a custom entry KEY=VALUE (repeatable).")
@click.option("--unset-custom", multiple=True, help="Remove a custom entry (repeatable).")
@click.option("--replace", is_flag=True, help="Start from empty metadata instead of the current one.")
@click.option(
    "--expected-version",
    type=click.IntRange(min=0),
    help="Only if the metadata is at this version (0: never set); by default, the version just read.",
)
@pass_invocation
def metadata_set(
    inv: Invocation,
    stream_id: str,
    max_age: duration_pb2.Duration | None,
    max_count: int | None,
    truncate_before: int | None,
    custom: tuple[tuple[str, str], ...],
    unset_custom: tuple[str, ...],
    replace: bool,
    expected_version: int | None,
) -> None:
    """Change a stream's metadata: what is given changes, the rest stays (unless --replace).

    The server replaces the whole metadata at once, so the CLI reads it, applies the changes and writes
    it back only if nobody changed it in between (ABORTED, WRONG_METADATA_VERSION otherwise)."""
    if not (replace or custom or unset_custom) and max_age is max_count is truncate_before is None:
        raise UsageProblem("nothing to change: give --max-age, --max-count, --truncate-before, --custom or --replace")
    current = _get_metadata(inv, stream_id)
    new = lifecycle_pb2.StreamMetadata() if replace else current.metadata
    if max_age is not None:
        new.max_age.CopyFrom(max_age)
    if max_count is not None:
        new.max_count = max_count
    if truncate_before is not None:
        new.truncate_before = truncate_before
    for key in unset_custom:
        new.custom.pop(key, None)
    new.custom.update(dict(custom))
    request = lifecycle_pb2.SetStreamMetadataRequest(
        stream_id=stream_id,
        metadata=new,
        expected_metadata_version=current.metadata_version if expected_version is None else expected_version,
    )
    inv.session.call(inv.session.ingest.SetStreamMetadata, request)
    inv.emit(_get_metadata(inv, stream_id), METADATA_COLUMNS)


@group.command("delete")
@stream_argument
@click.option("--hard", is_flag=True, help="A tombstone: the stream id can never be written again.")
@click.option("--expected", default="any", show_default=True, help="any, exists or the stream's version.")
@click.option("--yes", is_flag=True, help="Do not ask before a hard delete.")
@pass_invocation
def delete(inv: Invocation, stream_id: str, hard: bool, expected: str, yes: bool) -> None:
    """Delete a stream. Soft by default: it disappears from reads and listings, and a later append
    continues its versions. --hard is irreversible (asks for the id again unless --yes)."""
    check = expected_version(expected)
    if hard and not yes:
        if not sys.stdin.isatty():
            raise UsageProblem("a hard delete needs --yes when there is no terminal to confirm on")
        typed = click.prompt(f"{stream_id} can never be written again. Type its id to confirm")
        if typed != stream_id:
            raise UsageProblem("the id typed does not match; nothing was deleted")
    request = ingest_pb2.DeleteStreamRequest(stream_id=stream_id, expected_version=check, hard=hard)
    reply = inv.session.call(inv.session.ingest.DeleteStream, request)
    if inv.output is not OutputFormat.TABLE:
        inv.emit({"stream_id": stream_id, "hard": hard, **as_data(reply)})
        return
    inv.emit(
        reply,
        [
            ("stream", lambda _: stream_id),
            ("kind", lambda _: "hard (tombstone)" if hard else "soft"),
            ("stream version", lambda r: r.stream_version),
            ("events deleted", lambda r: r.events_deleted),
        ],
    )
