"""Feature flags (shared.config.flags): deterministic bucketing, rollout percentages and value precedence."""

from __future__ import annotations

import logging
import random
import uuid

import pytest

from shared.config.flag_registry import DEFINITIONS
from shared.config.flags import BUCKETS, FeatureFlags, FlagState, bucket
from shared.config.settings import FlagSettings

TENANT_FLAG = "json_payload_validation"  # bucketed by tenant
STREAM_FLAG = "entity_state_snapshots"  # bucketed by stream


def flags_at(name: str, percentage: float, *, enabled: bool = True, bucket_by: str | None = None) -> FeatureFlags:
    """A fresh FeatureFlags with one flag configured (never the process-wide FLAGS)."""
    ff = FeatureFlags()
    ff.configure({name: FlagSettings(enabled=enabled, percentage=percentage, bucket_by=bucket_by)})
    return ff


def override(name: str, *, enabled: bool = True, percentage: float = 100.0, by: str = "tester") -> FlagState:
    return FlagState(name, enabled, percentage, DEFINITIONS[name].bucket_by, "whatever", 123, by)


def random_ids(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(n)]


TENANTS = random_ids(20_000, seed=20_240_601)


def test_known_flags_and_their_bucketing() -> None:
    assert DEFINITIONS[TENANT_FLAG].bucket_by == "tenant"
    assert DEFINITIONS[STREAM_FLAG].bucket_by == "stream"


# -- deterministic bucketing --------------------------------------------------------------------------


def test_bucket_values_are_pinned() -> None:
    # Hard-coded on purpose: bucket() must give the same answer in every process and every release (a
    # tenant in a 10% rollout must stay in it after a restart or an upgrade), so these pin the hash
    # (blake2b-64 of "name\0key", mod 10,000). If they change, every rollout reshuffles its tenants.
    assert bucket(TENANT_FLAG, "tenant-a") == 5730
    assert bucket(TENANT_FLAG, "tenant-b") == 6484
    assert bucket(STREAM_FLAG, "orders-42") == 6461
    assert bucket(STREAM_FLAG, "tenant-a") == 8765  # the flag name is part of the hash
    assert bucket(TENANT_FLAG, "") == 9890


def test_buckets_are_in_range_and_repeatable() -> None:
    for key in TENANTS[:2000]:
        b = bucket(TENANT_FLAG, key)
        assert 0 <= b < BUCKETS
        assert bucket(TENANT_FLAG, key) == b


def test_same_tenant_same_answer_across_instances_and_calls() -> None:
    first, second = flags_at(TENANT_FLAG, 40), flags_at(TENANT_FLAG, 40)
    answers = {t: first.enabled(TENANT_FLAG, tenant=t) for t in TENANTS[:3000]}
    assert 0 < sum(answers.values()) < len(answers)  # a real mix, not everyone or no one
    for _ in range(3):
        assert {t: first.enabled(TENANT_FLAG, tenant=t) for t in answers} == answers
    assert {t: second.enabled(TENANT_FLAG, tenant=t) for t in answers} == answers
    streams_a, streams_b = flags_at(STREAM_FLAG, 40), flags_at(STREAM_FLAG, 40)
    for s in TENANTS[:1000]:
        assert streams_a.enabled(STREAM_FLAG, stream=s) == streams_b.enabled(STREAM_FLAG, stream=s)
        assert streams_a.enabled(STREAM_FLAG, stream=s) == streams_a.enabled(STREAM_FLAG, stream=s)


def test_answer_matches_the_bucket() -> None:
    ff = flags_at(TENANT_FLAG, 57.3)
    for t in TENANTS[:3000]:
        assert ff.enabled(TENANT_FLAG, tenant=t) == (bucket(TENANT_FLAG, t) < 5730)
    assert ff.enabled(TENANT_FLAG, tenant="tenant-a") is False  # bucket 5730: just outside
    assert flags_at(TENANT_FLAG, 57.31).enabled(TENANT_FLAG, tenant="tenant-a") is True


# -- percentages and rollouts -------------------------------------------------------------------------


@pytest.mark.parametrize("percentage", [5, 30, 50, 90])
def test_share_enabled_matches_the_percentage(percentage: float) -> None:
    ff = flags_at(TENANT_FLAG, percentage)
    share = 100 * sum(ff.enabled(TENANT_FLAG, tenant=t) for t in TENANTS) / len(TENANTS)
    assert abs(share - percentage) <= 1.5, share


@pytest.mark.parametrize("percentage", [5, 30, 50, 90])
def test_share_enabled_matches_the_percentage_for_streams(percentage: float) -> None:
    ff = flags_at(STREAM_FLAG, percentage)
    streams = random_ids(20_000, seed=7)
    share = 100 * sum(ff.enabled(STREAM_FLAG, stream=s) for s in streams) / len(streams)
    assert abs(share - percentage) <= 1.5, share


def test_raising_the_percentage_only_adds_tenants() -> None:
    at30 = {t for t in TENANTS if flags_at(TENANT_FLAG, 30).enabled(TENANT_FLAG, tenant=t)}
    ff60 = flags_at(TENANT_FLAG, 60)
    at60 = {t for t in TENANTS if ff60.enabled(TENANT_FLAG, tenant=t)}
    assert at30 and at30 < at60
    # Also when the same instance is reconfigured (a reload), and across finer steps.
    ff = FeatureFlags()
    previous: set[str] = set()
    for pct in (1, 5, 10, 30, 60, 99.9):
        ff.configure({TENANT_FLAG: FlagSettings(percentage=pct)})
        now = {t for t in TENANTS if ff.enabled(TENANT_FLAG, tenant=t)}
        assert previous <= now, pct
        previous = now


def test_stream_bucketed_flag_ignores_the_tenant() -> None:
    ff = flags_at(STREAM_FLAG, 50)
    streams = random_ids(500, seed=1)
    expected = {s: bucket(STREAM_FLAG, s) < 5000 for s in streams}
    assert 0 < sum(expected.values()) < len(streams)
    for s in streams:
        answers = {ff.enabled(STREAM_FLAG, tenant=t, stream=s) for t in ("", "tenant-a", "tenant-b", s)}
        assert answers == {expected[s]}
    # With one stream, every tenant gets the same answer.
    assert len({ff.enabled(STREAM_FLAG, tenant=t, stream="orders-42") for t in TENANTS[:500]}) == 1


def test_tenant_bucketed_flag_ignores_the_stream() -> None:
    ff = flags_at(TENANT_FLAG, 50)
    tenants = TENANTS[:500]
    expected = {t: bucket(TENANT_FLAG, t) < 5000 for t in tenants}
    assert 0 < sum(expected.values()) < len(tenants)
    for t in tenants:
        answers = {ff.enabled(TENANT_FLAG, tenant=t, stream=s) for s in ("", "orders-42", "x", t)}
        assert answers == {expected[t]}
    assert len({ff.enabled(TENANT_FLAG, tenant="tenant-a", stream=s) for s in TENANTS[:500]}) == 1


def test_configured_bucket_by_replaces_the_definitions() -> None:
    ff = flags_at(TENANT_FLAG, 50, bucket_by="stream")
    assert ff.states_by_name()[TENANT_FLAG].bucket_by == "stream"
    for s in random_ids(300, seed=3):
        assert ff.enabled(TENANT_FLAG, tenant="tenant-a", stream=s) == (bucket(TENANT_FLAG, s) < 5000)
    # Without bucket_by in the configuration, the definition's bucketing stays.
    assert flags_at(STREAM_FLAG, 50).states_by_name()[STREAM_FLAG].bucket_by == "stream"


@pytest.mark.parametrize(
    ("enabled", "percentage", "expected"),
    [(False, 100, False), (False, 50, False), (True, 0, False), (True, 100, True)],
)
def test_off_zero_and_hundred_percent(enabled: bool, percentage: float, expected: bool) -> None:
    for name in DEFINITIONS:
        ff = flags_at(name, percentage, enabled=enabled)
        answers = {ff.enabled(name, tenant=t, stream=t) for t in TENANTS[:2000]}
        answers |= {ff.enabled(name), ff.enabled(name, tenant="tenant-a", stream="orders-42")}
        assert answers == {expected}, name


def test_tiny_percentages_stay_tiny() -> None:
    ff = flags_at(TENANT_FLAG, 0.01)  # one bucket of 10,000
    on = [t for t in TENANTS if ff.enabled(TENANT_FLAG, tenant=t)]
    assert all(bucket(TENANT_FLAG, t) == 0 for t in on)
    assert len(on) < 20


# -- precedence: default < configuration < run-time override -----------------------------------------


def test_defaults_are_on_for_everyone() -> None:
    ff = FeatureFlags()
    states = ff.states()
    assert [s.name for s in states] == sorted(DEFINITIONS)
    for s in states:
        d = DEFINITIONS[s.name]
        assert (s.enabled, s.percentage, s.bucket_by, s.source) == (d.enabled, d.percentage, d.bucket_by, "default")
        assert ff.enabled(s.name, tenant="tenant-a", stream="orders-42") is True


def test_configuration_then_override_then_back() -> None:
    ff = FeatureFlags()
    ff.configure({TENANT_FLAG: FlagSettings(enabled=True, percentage=30)})
    state = ff.states_by_name()
    assert (state[TENANT_FLAG].percentage, state[TENANT_FLAG].source) == (30, "config")
    assert state[STREAM_FLAG].source == "default"  # unconfigured flags keep their defaults

    ff.set_overrides({TENANT_FLAG: override(TENANT_FLAG, enabled=False, by="alice")})
    state = ff.states_by_name()
    assert state[TENANT_FLAG].source == "override"
    assert (state[TENANT_FLAG].enabled, state[TENANT_FLAG].updated_by, state[TENANT_FLAG].updated_at_ns) == (
        False,
        "alice",
        123,
    )
    assert not any(ff.enabled(TENANT_FLAG, tenant=t) for t in TENANTS[:1000])

    # A reload of the configuration does not displace the override...
    ff.configure({TENANT_FLAG: FlagSettings(percentage=80)})
    assert ff.states_by_name()[TENANT_FLAG].source == "override"
    assert ff.enabled(TENANT_FLAG, tenant="tenant-a") is False

    # ...and clearing the overrides falls back to the configured value, not the default.
    ff.set_overrides({})
    state = ff.states_by_name()[TENANT_FLAG]
    assert (state.enabled, state.percentage, state.source) == (True, 80, "config")
    assert ff.enabled(TENANT_FLAG, tenant="tenant-a") is True  # bucket 5730 < 8000

    # And an empty configuration falls back to the default.
    ff.configure({})
    assert ff.states_by_name()[TENANT_FLAG].source == "default"
    assert ff.states_by_name()[TENANT_FLAG].percentage == 100


def test_overrides_replace_each_other_and_ignore_unknown_flags() -> None:
    ff = FeatureFlags()
    ff.set_overrides({TENANT_FLAG: override(TENANT_FLAG, enabled=False), "no_such_flag": override(TENANT_FLAG)})
    assert "no_such_flag" not in ff.states_by_name()
    assert ff.states_by_name()[TENANT_FLAG].source == "override"
    ff.set_overrides({STREAM_FLAG: override(STREAM_FLAG, percentage=0)})
    state = ff.states_by_name()
    assert (state[TENANT_FLAG].source, state[TENANT_FLAG].enabled) == ("default", True)
    assert state[STREAM_FLAG].source == "override"
    assert ff.enabled(STREAM_FLAG, stream="orders-42") is False


def test_states_are_copies() -> None:
    ff = FeatureFlags()
    ff.states_by_name().clear()
    assert set(ff.states_by_name()) == set(DEFINITIONS)


FLAGS_LOGGER = "shared.config.flags"


def changes(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == FLAGS_LOGGER and r.getMessage() == "feature flag changed"]


def test_a_change_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    ff = FeatureFlags()
    with caplog.at_level(logging.INFO, logger=FLAGS_LOGGER):
        ff.configure({TENANT_FLAG: FlagSettings(percentage=30)})
        (record,) = changes(caplog)
        assert record.levelno == logging.INFO
        assert record.flag == TENANT_FLAG  # type: ignore[attr-defined]
        assert (record.enabled, record.percentage, record.source) == (True, 30, "config")  # type: ignore[attr-defined]
        assert record.was == {"enabled": True, "percentage": 100.0, "bucket_by": "tenant"}  # type: ignore[attr-defined]

        caplog.clear()
        ff.set_overrides({TENANT_FLAG: override(TENANT_FLAG, enabled=False)})
        (record,) = changes(caplog)
        assert (record.flag, record.enabled, record.source) == (TENANT_FLAG, False, "override")  # type: ignore[attr-defined]

        caplog.clear()
        ff.set_overrides({})
        (record,) = changes(caplog)
        assert (record.enabled, record.percentage, record.source) == (True, 30, "config")  # type: ignore[attr-defined]


def test_no_log_without_a_change(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger=FLAGS_LOGGER):
        ff = FeatureFlags()  # the first values are not a change
        ff.configure({})
        ff.configure({TENANT_FLAG: FlagSettings()})  # same values as the default, only the source differs
        ff.set_overrides({})
        assert ff.states_by_name()[TENANT_FLAG].source == "config"
        assert changes(caplog) == []
        ff.configure({TENANT_FLAG: FlagSettings(percentage=10)})
        ff.configure({TENANT_FLAG: FlagSettings(percentage=10)})
        assert len(changes(caplog)) == 1
