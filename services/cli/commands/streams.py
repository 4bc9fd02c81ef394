"""`streams list`: the acting tenant's streams (QueryService.ListStreams)."""

from __future__ import annotations

from typing import Any

import click
from allsource.v1 import query_pb2

from services.cli.context import Invocation, pass_invocation
from services.cli.output import Column, when
from services.cli.params import complete_stream_ids

STREAM_COLUMNS: list[Column] = [
    ("stream", lambda s: s.stream_id),
    ("version", lambda s: s.version),
    ("first position", lambda s: s.first_position),
    ("last position", lambda s: s.last_position),
    ("created", lambda s: when(s.created_at)),
    ("updated", lambda s: when(s.updated_at)),
]


@click.group("streams")
def group() -> None:
    """Streams of the acting tenant."""


@group.command("list")
@click.option("--prefix", default="", shell_complete=complete_stream_ids, help="Only ids starting with this.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True, help="At most this many.")
@pass_invocation
def list_streams(inv: Invocation, prefix: str, limit: int) -> None:
    """List streams in id order."""
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
