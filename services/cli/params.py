"""Parameter types shared by the commands: roles, durations, times, key=value pairs, stream ids."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import click
from allsource.v1 import auth_pb2, options_pb2, query_pb2
from click.shell_completion import CompletionItem
from google.protobuf import duration_pb2, timestamp_pb2

from services.cli.completion import session_for

ROLES = {
    "admin": auth_pb2.ROLE_ADMIN,
    "developer": auth_pb2.ROLE_DEVELOPER,
    "read-only": auth_pb2.ROLE_READ_ONLY,
    "service-account": auth_pb2.ROLE_SERVICE_ACCOUNT,
    "operator": auth_pb2.ROLE_OPERATOR,
}
PERMISSIONS = {
    name.removeprefix("PERMISSION_").lower(): number
    for name, number in options_pb2.Permission.items()
    if number != options_pb2.PERMISSION_UNSPECIFIED
}
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class Choice(click.Choice):
    """A choice among names that map to protobuf enum numbers."""

    def __init__(self, mapping: Mapping[str, int]) -> None:
        super().__init__(list(mapping))
        self.mapping = mapping

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int):
            return value
        return self.mapping[super().convert(value, param, ctx)]


# What a request can carry (shared.core.text: durations of at most 100 years, timestamps of years 1-9999).
MAX_DURATION_S = 100 * 366 * 86_400
MIN_TIMESTAMP_S, MAX_TIMESTAMP_S = -62135596800, 253402300799


class Duration(click.ParamType):
    """A duration such as 90s, 15m, 2h or 30d, as a protobuf Duration."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, duration_pb2.Duration):
            return value
        match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd])", str(value).strip())
        if not match:
            self.fail(f"{value!r} is not a duration like 90s, 15m, 2h or 30d", param, ctx)
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
        if seconds > MAX_DURATION_S:
            self.fail(f"{value!r} is longer than the longest duration a request takes (100 years)", param, ctx)
        result = duration_pb2.Duration()
        result.FromNanoseconds(int(seconds * 1e9))
        return result


class Moment(click.ParamType):
    """A time: ISO 8601 (UTC unless it says otherwise) or a duration ago (1h), as a Timestamp."""

    name = "time"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, timestamp_pb2.Timestamp):
            return value
        text = str(value).strip()
        ago = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd])", text)
        try:
            seconds = (
                time.time() - float(ago.group(1)) * _UNITS[ago.group(2)]
                if ago
                else _aware(datetime.fromisoformat(text)).timestamp()
            )
        except (ValueError, OverflowError):
            self.fail(f"{value!r} is neither an ISO 8601 time nor a duration ago like 1h", param, ctx)
        if not MIN_TIMESTAMP_S <= seconds <= MAX_TIMESTAMP_S:
            self.fail(f"{value!r} is outside the years 1 to 9999", param, ctx)
        stamp = timestamp_pb2.Timestamp()
        stamp.FromNanoseconds(int(seconds * 1e9))
        return stamp


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class KeyValue(click.ParamType):
    """KEY=VALUE, as a pair."""

    name = "key=value"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, tuple):
            return value
        key, sep, item = str(value).partition("=")
        if not sep or not key:
            self.fail(f"{value!r} is not KEY=VALUE", param, ctx)
        return key, item


def complete_stream_ids(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Stream ids of the acting tenant that start with what was typed (shell and `shell` completion)."""
    try:
        session = session_for(ctx)
        reply = session.call(
            session.query.ListStreams,
            query_pb2.ListStreamsRequest(stream_id_prefix=incomplete, page_size=50),
            timeout=3,
        )
    except Exception:  # completion must never break the command line being typed
        return []
    return [CompletionItem(s.stream_id) for s in reply.streams]
