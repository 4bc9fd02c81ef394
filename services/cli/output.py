"""What commands print: Rich tables for people, JSON or YAML for scripts, progress bars on terminals.

Messages become protobuf's canonical JSON mapping with the protos' field names (64-bit integers as
strings, enums by name, timestamps in RFC 3339), so `--output json` reads as the API reference says.
"""

from __future__ import annotations

import enum
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import yaml
from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text


class OutputFormat(enum.StrEnum):
    """How results are printed."""

    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


# A column of a table: its heading and how to get the cell from a row.
Column = tuple[str, Callable[[Any], object]]

stdout = Console(highlight=False, soft_wrap=False)
stderr = Console(stderr=True, highlight=False)


def as_data(value: Any) -> Any:
    """Plain JSON-able data: messages by the canonical mapping, containers element by element."""
    if isinstance(value, Message):
        return json_format.MessageToDict(
            value, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )
    if isinstance(value, Mapping):
        return {str(k): as_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_data(v) for v in value]
    return value


def emit(
    fmt: OutputFormat,
    value: Any,
    columns: Sequence[Column] = (),
    *,
    title: str = "",
    empty: str = "nothing",
) -> None:
    """Print a message, a list of them or plain data in the chosen format."""
    if fmt is OutputFormat.JSON:
        sys.stdout.write(json.dumps(as_data(value), indent=2, ensure_ascii=False) + "\n")
    elif fmt is OutputFormat.YAML:
        sys.stdout.write(yaml.safe_dump(as_data(value), sort_keys=False, allow_unicode=True))
    elif isinstance(value, list | tuple):
        if not value:
            stdout.print(f"({empty})")
            return
        table = Table(title=title or None, show_lines=False)
        for heading, _ in columns:
            table.add_column(heading, overflow="fold")
        for row in value:
            table.add_row(*(Text(cell(get(row))) for _, get in columns))
        stdout.print(table)
    else:
        table = Table(title=title or None, show_header=False)
        table.add_column("field", style="bold")
        table.add_column("value", overflow="fold")
        rows = [(h, get(value)) for h, get in columns] if columns else flatten(as_data(value))
        for heading, item in rows:
            table.add_row(Text(heading), Text(cell(item)))
        stdout.print(table)
    sys.stdout.flush()


def flatten(data: Any, prefix: str = "") -> list[tuple[str, object]]:
    """Dotted keys and scalar values of nested data, for a key/value table."""
    if isinstance(data, dict):
        out: list[tuple[str, object]] = []
        for key, value in data.items():
            out.extend(flatten(value, f"{prefix}.{key}" if prefix else key))
        return out
    return [(prefix, data)]


def cell(value: object) -> str:
    """A table cell: timestamps in UTC to the second, lists comma-separated, unset as '-'."""
    if isinstance(value, Timestamp):
        return when(value)
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, list | tuple):
        return ", ".join(cell(v) for v in value) or "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
    if value is None or value == "":
        return "-"
    return str(value)


def when(ts: Timestamp | None) -> str:
    """A timestamp for people ('-' when unset)."""
    if ts is None or (ts.seconds == 0 and ts.nanos == 0):
        return "-"
    return datetime.fromtimestamp(ts.seconds, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def label(name: str, prefix: str) -> str:
    """An enum value's name for people: ROLE_READ_ONLY -> read-only."""
    return name.removeprefix(prefix).lower().replace("_", "-") or "-"


def progress(total: float | None, description: str) -> Progress:
    """A progress bar on stderr; disabled (prints nothing) when stderr is not an interactive terminal."""
    columns = (
        [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn()]
        if total
        else [SpinnerColumn(), TextColumn("{task.description}"), MofNCompleteColumn()]
    )
    bar = Progress(
        *columns,
        TimeElapsedColumn(),
        *([TimeRemainingColumn()] if total else []),
        console=stderr,
        disable=not stderr.is_interactive,
        transient=False,
    )
    bar.add_task(description, total=total or None)
    return bar


def note(message: str) -> None:
    """A remark for people, on stderr (stdout stays for results)."""
    stderr.print(message, highlight=False, markup=False)
