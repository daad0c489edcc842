"""Quota policy presets and arithmetic, and the Pacific-time quota day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time
from hypothesis import given
from hypothesis import strategies as st

from langflix_scheduler.errors import ConfigurationError
from langflix_scheduler.manager import system_clock
from langflix_scheduler.quota import (
    QUOTA_PRESETS,
    QuotaPolicy,
    next_quota_reset,
    quota_date_of,
    quota_day_start,
)

PT = ZoneInfo("America/Los_Angeles")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# -- presets ------------------------------------------------------------------------------------


def test_default_is_granular_2026() -> None:
    policy = QuotaPolicy.default()
    assert policy is QUOTA_PRESETS["granular-2026"]
    assert policy.name == "granular-2026"
    assert dict(policy.buckets) == {"uploads": 100, "shared": 10_000}
    assert policy.costs["videos.insert"] == ("uploads", 1)
    assert policy.costs["thumbnails.set"] == ("shared", 50)
    assert policy.costs["playlistItems.insert"] == ("shared", 50)
    assert policy.costs["videos.update"] == ("shared", 50)
    assert policy.costs["videos.list"] == ("shared", 1)
    assert policy.costs["channels.list"] == ("shared", 1)
    assert policy.limit("uploads") == 100
    assert policy.limit("shared") == 10_000


def test_legacy_preset() -> None:
    policy = QuotaPolicy.preset("legacy")
    assert dict(policy.buckets) == {"shared": 10_000}
    assert policy.costs["videos.insert"] == ("shared", 1600)
    assert policy.cost(["videos.insert"]) == {"shared": 1600}


def test_pool_2025_preset() -> None:
    policy = QuotaPolicy.preset("pool-2025")
    assert dict(policy.buckets) == {"shared": 10_000}
    assert policy.cost(["videos.insert"]) == {"shared": 100}


def test_unknown_preset_names_field_and_choices() -> None:
    with pytest.raises(ConfigurationError) as info:
        QuotaPolicy.preset("free-for-all")
    assert info.value.field == "quota_policy"
    assert "free-for-all" in str(info.value)
    assert "granular-2026" in str(info.value)


def test_presets_are_immutable() -> None:
    policy = QuotaPolicy.default()
    with pytest.raises(TypeError):
        policy.buckets["uploads"] = 5  # type: ignore[index]


# -- cost ---------------------------------------------------------------------------------------


def test_cost_insert_only() -> None:
    assert QuotaPolicy.default().cost(["videos.insert"]) == {"uploads": 1}


def test_cost_sums_per_bucket() -> None:
    ops = ["videos.insert", "thumbnails.set", "playlistItems.insert"]
    assert QuotaPolicy.default().cost(ops) == {"shared": 100, "uploads": 1}
    assert QuotaPolicy.preset("legacy").cost(ops) == {"shared": 1700}
    assert QuotaPolicy.preset("pool-2025").cost(ops) == {"shared": 200}


def test_cost_repeated_operations_add_up() -> None:
    assert QuotaPolicy.default().cost(["videos.list"] * 3 + ["videos.insert"] * 2) == {
        "shared": 3,
        "uploads": 2,
    }


def test_cost_drops_zero_buckets() -> None:
    policy = QuotaPolicy(
        buckets={"uploads": 10, "shared": 10},
        costs={"videos.insert": ("uploads", 1), "videos.list": ("shared", 0)},
    )
    assert policy.cost(["videos.insert", "videos.list"]) == {"uploads": 1}


def test_cost_unknown_operation() -> None:
    with pytest.raises(ConfigurationError) as info:
        QuotaPolicy.default().cost(["search.list"])
    assert info.value.field == "quota_policy.costs"
    assert "search.list" in str(info.value)


# -- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("buckets", "costs", "field"),
    [
        ({}, {"videos.insert": ("uploads", 1)}, "quota_policy.buckets"),
        ({"uploads": -1}, {"videos.insert": ("uploads", 1)}, "quota_policy.buckets.uploads"),
        ({"uploads": 1.5}, {"videos.insert": ("uploads", 1)}, "quota_policy.buckets.uploads"),
        ({"uploads": True}, {"videos.insert": ("uploads", 1)}, "quota_policy.buckets.uploads"),
        ({"uploads": 5}, {"thumbnails.set": ("uploads", 1)}, "quota_policy.costs"),
        ({"uploads": 5}, {"videos.insert": ("nope", 1)}, "quota_policy.costs.videos.insert"),
        ({"uploads": 5}, {"videos.insert": ("uploads", -1)}, "quota_policy.costs.videos.insert"),
    ],
)
def test_invalid_policy_names_the_field(
    buckets: dict[str, object], costs: dict[str, tuple[str, int]], field: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        QuotaPolicy(buckets=buckets, costs=costs)  # type: ignore[arg-type]
    assert info.value.field == field
    assert field in str(info.value)


def test_custom_policy_equality_and_hash() -> None:
    a = QuotaPolicy(name="tiny", buckets={"uploads": 3}, costs={"videos.insert": ("uploads", 1)})
    b = QuotaPolicy(name="tiny", buckets={"uploads": 3}, costs={"videos.insert": ("uploads", 1)})
    assert a == b
    assert hash(a) == hash(b)
    assert a.limit("uploads") == 3


# -- quota day ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        (utc(2026, 5, 4, 6, 59, 59), date(2026, 5, 3)),  # 23:59:59 PDT
        (utc(2026, 5, 4, 7, 0), date(2026, 5, 4)),  # 00:00 PDT
        (utc(2026, 1, 15, 7, 59), date(2026, 1, 14)),  # 23:59 PST
        (utc(2026, 1, 15, 8, 0), date(2026, 1, 15)),  # 00:00 PST
        # 2026-03-08 (spring forward): the day starts at 08:00 UTC (PST), ends 07:00 UTC (PDT).
        (utc(2026, 3, 8, 7, 59), date(2026, 3, 7)),
        (utc(2026, 3, 8, 8, 0), date(2026, 3, 8)),
        (utc(2026, 3, 9, 6, 59), date(2026, 3, 8)),
        (utc(2026, 3, 9, 7, 0), date(2026, 3, 9)),
        # 2026-11-01 (fall back): starts 07:00 UTC (PDT), ends 08:00 UTC the next day (PST).
        (utc(2026, 11, 1, 6, 59), date(2026, 10, 31)),
        (utc(2026, 11, 1, 7, 0), date(2026, 11, 1)),
        (utc(2026, 11, 2, 7, 59), date(2026, 11, 1)),
        (utc(2026, 11, 2, 8, 0), date(2026, 11, 2)),
        # Year end: 23:59 PST on 12-31 is already 2027 in UTC.
        (utc(2027, 1, 1, 7, 59), date(2026, 12, 31)),
        (utc(2027, 1, 1, 8, 0), date(2027, 1, 1)),
    ],
)
def test_quota_date_of(instant: datetime, expected: date) -> None:
    assert quota_date_of(instant) == expected


def test_quota_date_of_accepts_any_offset() -> None:
    seoul = datetime(2026, 5, 4, 15, 59, tzinfo=ZoneInfo("Asia/Seoul"))  # 06:59 UTC
    assert quota_date_of(seoul) == date(2026, 5, 3)
    assert quota_date_of(seoul.replace(minute=0, hour=16)) == date(2026, 5, 4)


def test_quota_date_of_other_zone() -> None:
    assert quota_date_of(utc(2026, 5, 4, 15), "Asia/Seoul") == date(2026, 5, 5)


def test_quota_date_of_rejects_naive() -> None:
    with pytest.raises(ValueError, match="aware"):
        quota_date_of(datetime(2026, 5, 4, 12))  # noqa: DTZ001


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        (utc(2026, 5, 4, 12), utc(2026, 5, 5, 7)),
        (utc(2026, 5, 4, 7, 0), utc(2026, 5, 5, 7)),  # strictly after: not the instant itself
        (utc(2026, 5, 4, 6, 59, 59), utc(2026, 5, 4, 7)),
        (utc(2026, 3, 7, 12), utc(2026, 3, 8, 8)),  # 03-08 starts in PST
        (utc(2026, 3, 8, 12), utc(2026, 3, 9, 7)),  # 23-hour day, next starts in PDT
        (utc(2026, 10, 31, 12), utc(2026, 11, 1, 7)),  # 11-01 starts in PDT
        (utc(2026, 11, 1, 12), utc(2026, 11, 2, 8)),  # 25-hour day, next starts in PST
        (utc(2026, 12, 31, 20), utc(2027, 1, 1, 8)),  # year end
        (utc(2027, 1, 1, 7, 30), utc(2027, 1, 1, 8)),  # still 2026-12-31 in PT
    ],
)
def test_next_quota_reset(instant: datetime, expected: datetime) -> None:
    got = next_quota_reset(instant)
    assert got == expected
    assert got.utcoffset() == timedelta(0)
    assert got.astimezone(PT).time().hour == 0
    assert got.astimezone(PT).time().minute == 0


def test_quota_day_lengths_on_dst_days() -> None:
    def length(day: date) -> timedelta:
        return quota_day_start(day + timedelta(days=1)) - quota_day_start(day)

    assert length(date(2026, 3, 8)) == timedelta(hours=23)
    assert length(date(2026, 11, 1)) == timedelta(hours=25)
    assert length(date(2026, 5, 4)) == timedelta(hours=24)
    assert length(date(2026, 12, 31)) == timedelta(hours=24)


@freeze_time("2026-11-01 08:30:00", tz_offset=0)
def test_quota_day_from_frozen_clock_during_fall_back() -> None:
    # 08:30 UTC on 11-01 is 01:30 PST, the *second* 01:30 of that day: still quota day 11-01.
    now = system_clock()
    assert now == utc(2026, 11, 1, 8, 30)
    assert quota_date_of(now) == date(2026, 11, 1)
    assert next_quota_reset(now) == utc(2026, 11, 2, 8)


def test_quota_day_from_frozen_clock_at_new_year() -> None:
    with freeze_time("2027-01-01 07:59:59"):
        now = datetime.now(UTC)
        assert quota_date_of(now) == date(2026, 12, 31)
        assert next_quota_reset(now) == utc(2027, 1, 1, 8)
    with freeze_time("2027-01-01 08:00:00"):
        now = datetime.now(UTC)
        assert quota_date_of(now) == date(2027, 1, 1)
        assert next_quota_reset(now) == utc(2027, 1, 2, 8)


@given(
    st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31)).map(  # noqa: DTZ001
        lambda d: d.replace(tzinfo=UTC)
    )
)
def test_next_reset_is_the_next_quota_day_start(instant: datetime) -> None:
    reset = next_quota_reset(instant)
    assert instant < reset <= instant + timedelta(hours=25)
    assert quota_date_of(reset) == quota_date_of(instant) + timedelta(days=1)
    assert quota_date_of(reset - timedelta(microseconds=1)) == quota_date_of(instant)
    assert quota_date_of(instant) == instant.astimezone(PT).date()


def test_fixed_offset_instants_agree() -> None:
    a = datetime(2026, 3, 8, 0, 0, tzinfo=timezone(timedelta(hours=-8)))
    assert quota_date_of(a) == date(2026, 3, 8)
    assert quota_date_of(a - timedelta(seconds=1)) == date(2026, 3, 7)


def test_after_upload_calls_are_priced_on_the_shared_bucket_in_every_preset() -> None:
    for policy in QUOTA_PRESETS.values():
        assert policy.cost(["videos.update", "videos.delete"]) == {"shared": 100}
        assert policy.cost(["videos.list", "playlistItems.list", "channels.list"]) == {"shared": 3}
