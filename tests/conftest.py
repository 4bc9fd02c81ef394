"""Fixtures: a shared running suite (four real processes on free ports) and per-test helpers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from allsource_client import AllSourceClient

from tests.harness import Suite

# Modules whose tests measure time (one tenant's latency beside another's load, a bound on how long a
# call waits, a dead collector's cost) and so run alone: `make test` runs every other test on two
# workers (pytest-xdist), then these with nothing beside them. Marked `exclusive` here, in one place.
EXCLUSIVE = (
    "tests/integration/test_chaos.py",
    "tests/integration/test_overload.py",
    "tests/integration/test_tenant_fairness.py",
    "tests/integration/test_memory_pressure.py",
    "tests/integration/test_durability.py",
    # Processes, signals and drains with time bounds (and the launcher, whose services take the default
    # metrics ports unless told otherwise). Once, on two workers, a launcher exited before its banner.
    "tests/integration/test_launcher.py",
    "tests/integration/test_processes.py",
    "tests/limits/test_quotas.py",
    "tests/limits/test_redis_limiter.py",
    "tests/limits/test_replicas.py",
    "tests/limits/test_admission.py",
    "tests/storage/test_checkpoint_stall.py",
    "tests/telemetry/test_traces.py",
)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(str(config.rootpath))
    for item in items:
        if Path(str(item.path)).relative_to(root).as_posix() in EXCLUSIVE:
            item.add_marker(pytest.mark.exclusive)


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
