"""Fixtures: a shared running suite (four real processes on free ports) and per-test helpers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from allsource_client import AllSourceClient

from tests.harness import Suite


@pytest.fixture(scope="session")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    """The whole suite, started once for the session. Tests use their own stream ids (see `unique`)."""
    running = Suite(tmp_path_factory.mktemp("suite"))
    try:
        running.start_all()
        yield running
    finally:
        running.stop_all()


@pytest.fixture
def fresh_suite(tmp_path: Path) -> Iterator[Suite]:
    """A suite of this test's own, for tests that kill, stop or restart services."""
    running = Suite(tmp_path / "suite")
    try:
        yield running
    finally:
        running.stop_all()


@pytest.fixture
def client(suite: Suite) -> Iterator[AllSourceClient]:
    with suite.client() as c:
        yield c


@pytest.fixture
def unique() -> str:
    """A prefix no other test uses, for stream ids."""
    return f"t{uuid.uuid4().hex[:10]}-"
