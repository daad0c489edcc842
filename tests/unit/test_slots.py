"""Slot arithmetic in the channel time zone: wall times, DST gaps and overlaps, properties."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langflix_scheduler.slots import channel_date_of, ensure_aware, iter_slots, slots_on_day

ZONES = ("UTC", "Asia/Seoul", "America/New_York", "Europe/London", "Australia/Lord_Howe")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# -- ensure_aware / channel_date_of -------------------------------------------------------------


def test_ensure_aware_rejects_naive() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ensure_aware(datetime(2026, 5, 1, 10, 0))  # noqa: DTZ001


def test_ensure_aware_converts_to_utc() -> None:
    seoul = datetime(2026, 5, 1, 10, 0, tzinfo=ZoneInfo("Asia/Seoul"))
    got = ensure_aware(seoul)
    assert got == utc(2026, 5, 1, 1, 0)
    assert got.tzinfo is UTC
    assert got.utcoffset() == timedelta(0)


def test_ensure_aware_fixed_offset() -> None:
    got = ensure_aware(datetime(2026, 5, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5))))
    assert got == utc(2026, 5, 2, 4, 30)


def test_channel_date_is_local() -> None:
    instant = utc(2026, 5, 4, 16, 0)  # 01:00 next day in Seoul, 12:00 in New York
    assert channel_date_of(instant, ZoneInfo("Asia/Seoul")) == date(2026, 5, 5)
    assert channel_date_of(instant, ZoneInfo("America/New_York")) == date(2026, 5, 4)
    assert channel_date_of(instant, ZoneInfo("UTC")) == date(2026, 5, 4)


def test_channel_date_of_rejects_naive() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        channel_date_of(datetime(2026, 5, 4), ZoneInfo("UTC"))  # noqa: DTZ001


# -- ordinary days in several zones -------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        ("UTC", [utc(2026, 5, 4, 10), utc(2026, 5, 4, 18)]),
        ("Asia/Seoul", [utc(2026, 5, 4, 1), utc(2026, 5, 4, 9)]),  # +09:00
        ("America/New_York", [utc(2026, 5, 4, 14), utc(2026, 5, 4, 22)]),  # EDT -04:00
        ("Europe/London", [utc(2026, 5, 4, 9), utc(2026, 5, 4, 17)]),  # BST +01:00
        ("Australia/Lord_Howe", [utc(2026, 5, 3, 23, 30), utc(2026, 5, 4, 7, 30)]),  # +10:30
    ],
)
def test_slots_on_ordinary_day(zone: str, expected: list[datetime]) -> None:
    got = slots_on_day(date(2026, 5, 4), [time(18, 0), time(10, 0)], ZoneInfo(zone))
    assert got == expected
    assert all(s.utcoffset() == timedelta(0) for s in got)


def test_slots_on_day_deduplicates_configured_times() -> None:
    got = slots_on_day(date(2026, 5, 4), [time(10), time(10), time(9)], ZoneInfo("UTC"))
    assert got == [utc(2026, 5, 4, 9), utc(2026, 5, 4, 10)]


def test_slots_on_day_no_times() -> None:
    assert slots_on_day(date(2026, 5, 4), [], ZoneInfo("UTC")) == []


# -- spring forward -----------------------------------------------------------------------------


def test_new_york_spring_forward_shifts_by_gap() -> None:
    # 2026-03-08: 02:00 EST -> 03:00 EDT; 02:30 does not exist and becomes 03:30 EDT.
    tz = ZoneInfo("America/New_York")
    got = slots_on_day(date(2026, 3, 8), [time(1, 30), time(2, 30), time(10, 0)], tz)
    assert got == [utc(2026, 3, 8, 6, 30), utc(2026, 3, 8, 7, 30), utc(2026, 3, 8, 14, 0)]
    assert [s.astimezone(tz).time() for s in got] == [time(1, 30), time(3, 30), time(10, 0)]


def test_new_york_spring_forward_collision_taken_once() -> None:
    tz = ZoneInfo("America/New_York")
    got = slots_on_day(date(2026, 3, 8), [time(2, 30), time(3, 30)], tz)
    assert got == [utc(2026, 3, 8, 7, 30)]


def test_london_spring_forward() -> None:
    # 2026-03-29: 01:00 GMT -> 02:00 BST.
    tz = ZoneInfo("Europe/London")
    got = slots_on_day(date(2026, 3, 29), [time(0, 30), time(1, 15), time(2, 15)], tz)
    # 01:15 does not exist -> 02:15 BST = 01:15 UTC, which is also what 02:15 BST is: one slot.
    assert got == [utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1, 15)]


def test_lord_howe_half_hour_spring_forward() -> None:
    # 2026-10-04: 02:00 +10:30 -> 02:30 +11:00 (a 30-minute gap).
    tz = ZoneInfo("Australia/Lord_Howe")
    got = slots_on_day(date(2026, 10, 4), [time(2, 10), time(2, 40), time(3, 0)], tz)
    local = [s.astimezone(tz) for s in got]
    # 02:10 is shifted by the 30-minute gap to 02:40, which collides with the configured 02:40.
    assert [t.time() for t in local] == [time(2, 40), time(3, 0)]
    assert got == [utc(2026, 10, 3, 15, 40), utc(2026, 10, 3, 16, 0)]


# -- fall back ----------------------------------------------------------------------------------


def test_new_york_fall_back_first_occurrence() -> None:
    # 2026-11-01: 02:00 EDT -> 01:00 EST; 01:30 happens twice.
    tz = ZoneInfo("America/New_York")
    got = slots_on_day(date(2026, 11, 1), [time(1, 30), time(9, 0)], tz)
    assert got == [utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 14, 0)]  # 01:30 EDT (first)
    assert got[0].astimezone(tz).fold == 0


def test_london_fall_back_first_occurrence() -> None:
    # 2026-10-25: 02:00 BST -> 01:00 GMT.
    got = slots_on_day(date(2026, 10, 25), [time(1, 30)], ZoneInfo("Europe/London"))
    assert got == [utc(2026, 10, 25, 0, 30)]  # 01:30 BST, not 01:30 GMT (01:30 UTC)


def test_lord_howe_half_hour_fall_back() -> None:
    # 2026-04-05: 02:00 +11:00 -> 01:30 +10:30; 01:45 happens twice.
    got = slots_on_day(date(2026, 4, 5), [time(1, 45)], ZoneInfo("Australia/Lord_Howe"))
    assert got == [utc(2026, 4, 4, 14, 45)]  # first occurrence, +11:00


def test_iter_slots_across_spring_forward_day_in_new_york() -> None:
    tz = ZoneInfo("America/New_York")
    got = list(iter_slots(utc(2026, 3, 7, 5), utc(2026, 3, 10, 5), [time(10, 0)], tz))
    assert got == [
        (date(2026, 3, 7), utc(2026, 3, 7, 15)),  # EST
        (date(2026, 3, 8), utc(2026, 3, 8, 14)),  # EDT
        (date(2026, 3, 9), utc(2026, 3, 9, 14)),
    ]


def test_iter_slots_half_open_interval() -> None:
    tz = ZoneInfo("UTC")
    got = list(iter_slots(utc(2026, 5, 4, 10), utc(2026, 5, 5, 10), [time(10)], tz))
    assert got == [(date(2026, 5, 4), utc(2026, 5, 4, 10))]


def test_iter_slots_empty_cases() -> None:
    tz = ZoneInfo("UTC")
    assert list(iter_slots(utc(2026, 5, 5), utc(2026, 5, 4), [time(10)], tz)) == []
    assert list(iter_slots(utc(2026, 5, 4), utc(2026, 5, 4), [time(10)], tz)) == []
    assert list(iter_slots(utc(2026, 5, 4), utc(2026, 5, 9), [], tz)) == []


def test_iter_slots_rejects_naive() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        list(iter_slots(datetime(2026, 5, 4), utc(2026, 5, 5), [time(10)], ZoneInfo("UTC")))  # noqa: DTZ001


def test_iter_slots_channel_day_is_local() -> None:
    tz = ZoneInfo("Asia/Seoul")
    got = list(iter_slots(utc(2026, 5, 4, 0), utc(2026, 5, 5, 0), [time(8), time(20)], tz))
    # 08:00 KST on 05-04 = 23:00 UTC 05-03 is before start; 20:00 KST 05-04 = 11:00 UTC.
    # 08:00 KST on 05-05 = 23:00 UTC 05-04, still before end.
    assert got == [
        (date(2026, 5, 4), utc(2026, 5, 4, 11)),
        (date(2026, 5, 5), utc(2026, 5, 4, 23)),
    ]


# -- properties ---------------------------------------------------------------------------------


def _oracle_day(day: date, times: list[time], tz: ZoneInfo) -> set[datetime]:
    """Independent model of the documented rules, using only the zone's offsets at midnight."""
    off_a = datetime.combine(day, time(0), tzinfo=tz).utcoffset()
    off_b = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).utcoffset()
    assert off_a is not None
    assert off_b is not None
    out: set[datetime] = set()
    for t in times:
        naive = datetime.combine(day, t)
        candidates = sorted(
            (naive - off).replace(tzinfo=UTC)
            for off in {off_a, off_b}
            if (naive - off).replace(tzinfo=UTC).astimezone(tz).replace(tzinfo=None) == naive
        )
        if candidates:
            out.add(candidates[0])  # the first occurrence of an ambiguous time
        else:
            # Nonexistent: shifted forward by the gap, i.e. read with the offset before it.
            before = min(off_a, off_b)
            out.add((naive - before).replace(tzinfo=UTC))
    return {s for s in out if s.astimezone(tz).date() == day}


# DST transition days of the zones above, so the generator often lands on them.
DST_DAYS = {
    "UTC": [date(2026, 3, 8)],
    "Asia/Seoul": [date(2026, 3, 8)],
    "America/New_York": [date(2026, 3, 8), date(2026, 11, 1)],
    "Europe/London": [date(2026, 3, 29), date(2026, 10, 25)],
    "Australia/Lord_Howe": [date(2026, 4, 5), date(2026, 10, 4)],
}

# Hours around the transitions (0-3 local) are drawn far more often than the rest.
wall_times = st.builds(
    time,
    st.one_of(st.integers(0, 3), st.integers(0, 23)),
    st.sampled_from([0, 10, 15, 30, 40, 45, 59]),
    st.just(0),
)


@st.composite
def zone_and_day(draw: st.DrawFn) -> tuple[str, date]:
    zone = draw(st.sampled_from(ZONES))
    day = draw(
        st.one_of(st.sampled_from(DST_DAYS[zone]), st.dates(date(2025, 12, 1), date(2027, 3, 31)))
    )
    return zone, day


@st.composite
def windows(draw: st.DrawFn, base: date) -> tuple[datetime, datetime]:
    offset_minutes = draw(st.integers(-36 * 60, 24 * 60))
    start = datetime.combine(base, time(0), tzinfo=UTC) + timedelta(minutes=offset_minutes)
    length = timedelta(minutes=draw(st.integers(0, 4 * 24 * 60)))
    return start, start + length


@settings(max_examples=300, deadline=None)
@given(zone_day=zone_and_day(), times=st.lists(wall_times, min_size=1, max_size=6), data=st.data())
def test_iter_slots_properties(
    zone_day: tuple[str, date], times: list[time], data: st.DataObject
) -> None:
    zone, base = zone_day
    tz = ZoneInfo(zone)
    start, end = data.draw(windows(base))
    got = list(iter_slots(start, end, times, tz))
    instants = [s for _, s in got]

    # Aware UTC, inside [start, end), strictly increasing (hence unique).
    for day, instant in got:
        assert instant.tzinfo is not None
        assert instant.utcoffset() == timedelta(0)
        assert start <= instant < end
        assert instant.astimezone(tz).date() == day
    assert all(a < b for a, b in itertools.pairwise(instants))

    # Every slot is a configured wall time, or a nonexistent configured time shifted forward.
    for day, instant in got:
        wall = instant.astimezone(tz).replace(tzinfo=None)
        if wall.time() in times:
            continue
        shifted = [
            t
            for t in times
            if ensure_aware(datetime.combine(day, t, tzinfo=tz)).astimezone(tz).replace(tzinfo=None)
            != datetime.combine(day, t)
        ]
        assert shifted, f"{instant} ({wall}) is neither configured nor a shifted gap time"
        assert wall > datetime.combine(day, min(shifted))

    # Exactly the oracle's slots within the window.
    expected: set[datetime] = set()
    day = start.astimezone(tz).date() - timedelta(days=1)
    while day <= end.astimezone(tz).date() + timedelta(days=1):
        expected |= {s for s in _oracle_day(day, times, tz) if start <= s < end}
        day += timedelta(days=1)
    assert set(instants) == expected


@settings(max_examples=200, deadline=None)
@given(zone_day=zone_and_day(), times=st.lists(wall_times, min_size=0, max_size=8))
def test_slots_on_day_properties(zone_day: tuple[str, date], times: list[time]) -> None:
    zone, day = zone_day
    tz = ZoneInfo(zone)
    got = slots_on_day(day, times, tz)
    assert got == sorted(set(got))
    assert len(got) <= len(set(times))
    assert all(s.utcoffset() == timedelta(0) and s.astimezone(tz).date() == day for s in got)
    assert set(got) == _oracle_day(day, times, tz)
