"""`events import` holds a bounded window of events in memory, in count and in bytes."""

from __future__ import annotations

from typing import Any

import pytest
from allsource.v1 import event_pb2

from services.cli import ndjson


def test_a_window_closes_at_its_byte_bound_as_well_as_its_count(monkeypatch: pytest.MonkeyPatch) -> None:
    """200 events of 1 MB: no window holds more than WINDOW_BYTES and one event (64 MB). Before, the window
    counted events only: all 200 MB were held at once (an export of 20,000 such events needed 20 GB)."""
    windows: list[int] = []

    def record(session: Any, window: list[event_pb2.Event], *args: Any) -> None:
        windows.append(sum(e.ByteSize() for e in window))

    monkeypatch.setattr(ndjson, "_import_window", record)
    payload = b"x" * 1_000_000
    events = (event_pb2.Event(stream_id="s", version=v, payload=payload) for v in range(1, 201))
    ndjson.import_events(None, events)  # type: ignore[arg-type]
    assert len(windows) >= 3 and max(windows) <= ndjson.WINDOW_BYTES + 1_000_100, windows
