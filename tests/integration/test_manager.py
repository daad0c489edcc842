"""ScheduleManager against SQLite, PostgreSQL and MariaDB: slots, limits, quota days, changes.

Every test runs on all three engines (``db_url`` is parametrised). What was written is checked
with plain SQL (``raw_db``), not only through the library's own reads.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from langflix_scheduler.domain import UploadStatus, VideoMetadata, VideoType
from langflix_scheduler.errors import (
    InvalidScheduleError,
    InvalidTransitionError,
    QuotaExceededError,
    ScheduleNotFoundError,
    SchedulerError,
    SlotUnavailableError,
)
from langflix_scheduler.manager import ScheduleManager
from langflix_scheduler.quota import QuotaPolicy
from langflix_scheduler.testing.clock import FakeClock
from tests.integration.db_helpers import RawDB, as_utc

MakeManager = Callable[..., ScheduleManager]
VideoFile = Callable[..., Path]

SEOUL = ZoneInfo("Asia/Seoul")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def tiny_policy(*, uploads: int = 3, shared: int = 10_000) -> QuotaPolicy:
    return QuotaPolicy(
        name="tiny",
        buckets={"uploads": uploads, "shared": shared},
        costs={
            "videos.insert": ("uploads", 1),
            "thumbnails.set": ("shared", 50),
            "playlistItems.insert": ("shared", 50),
        },
    )


def invariants(raw: RawDB, mgr: ScheduleManager) -> list[Any]:
    return raw.check_invariants(
        daily_limits={vt.value: n for vt, n in mgr.config.daily_limits.items()},
        bucket_limits=dict(mgr.config.quota_policy.buckets),
    )


# -- automatic slots ------------------------------------------------------------------------------


def test_auto_slots_fill_days_in_order_and_respect_limits(
    make_manager: MakeManager, video_file: VideoFile, raw_db: RawDB
) -> None:
    mgr = make_manager(daily_limits={"final": 1, "short": 3})
    finals = [mgr.schedule_video(video_file(), "final") for _ in range(3)]
    shorts = [mgr.schedule_video(video_file(), VideoType.SHORT) for _ in range(5)]

    # One final a day: 10:00 each day, never the 18:00 slot.
    assert [s.scheduled_publish_time for s in finals] == [
        utc(2026, 5, 4, 10),
        utc(2026, 5, 5, 10),
        utc(2026, 5, 6, 10),
    ]
    # Three shorts a day, earliest slots first.
    assert [s.scheduled_publish_time for s in shorts] == [
        utc(2026, 5, 4, 8),
        utc(2026, 5, 4, 11),
        utc(2026, 5, 4, 14),
        utc(2026, 5, 5, 8),
        utc(2026, 5, 5, 11),
    ]
    assert all(s.status is UploadStatus.SCHEDULED for s in finals + shorts)
    assert raw_db.day_counts() == {
        ("default", date(2026, 5, 4)): {"final": 1, "short": 3},
        ("default", date(2026, 5, 5)): {"final": 1, "short": 2},
        ("default", date(2026, 5, 6)): {"final": 1, "short": 0},
    }
    rows = invariants(raw_db, mgr)
    assert len(rows) == 8


def test_auto_slot_respects_min_lead_time(
    make_manager: MakeManager, clock: FakeClock, video_file: VideoFile
) -> None:
    mgr = make_manager()
    clock.set(utc(2026, 5, 4, 9, 50))  # 10:00 is within the 15-minute lead time
    assert mgr.schedule_video(video_file(), "final").scheduled_publish_time == utc(2026, 5, 4, 18)
    clock.set(utc(2026, 5, 4, 17, 45))  # exactly now + min_lead_time is still allowed
    booked = mgr.schedule_video(video_file(), "final")
    assert booked.scheduled_publish_time == utc(2026, 5, 5, 10)  # 18:00 is taken


def test_channel_day_is_local_seoul(
    make_manager: MakeManager, video_file: VideoFile, raw_db: RawDB
) -> None:
    # T0 = 2026-05-04 00:00 UTC = 09:00 KST: 08:00 KST has passed, 10:00 KST has not.
    mgr = make_manager(timezone="Asia/Seoul", daily_limits={"final": 2, "short": 5})
    finals = [mgr.schedule_video(video_file(), "final") for _ in range(3)]
    assert [f.scheduled_publish_time for f in finals] == [
        utc(2026, 5, 4, 1),  # 10:00 KST
        utc(2026, 5, 4, 9),  # 18:00 KST
        utc(2026, 5, 5, 1),  # 10:00 KST next day
    ]
    assert [f.publish_date for f in finals] == [date(2026, 5, 4)] * 2 + [date(2026, 5, 5)]
    shorts = [mgr.schedule_video(video_file(), "short") for _ in range(5)]
    local = [s.scheduled_publish_time.astimezone(SEOUL) for s in shorts]
    assert [t.hour for t in local] == [11, 14, 17, 20, 8]
    # 08:00 KST on 05-05 is 23:00 UTC on 05-04, but its channel day is 05-05.
    assert shorts[-1].scheduled_publish_time == utc(2026, 5, 4, 23)
    assert shorts[-1].publish_date == date(2026, 5, 5)
    counts = raw_db.day_counts()
    assert counts[("default", date(2026, 5, 4))] == {"final": 2, "short": 4}
    assert counts[("default", date(2026, 5, 5))] == {"final": 1, "short": 1}
    stored = {r.id: r.publish_date for r in raw_db.schedules()}
    assert stored[shorts[-1].id] == date(2026, 5, 5)
    invariants(raw_db, mgr)


def test_dst_zone_new_york_spring_forward(
    make_manager: MakeManager, clock: FakeClock, video_file: VideoFile, raw_db: RawDB
) -> None:
    clock.set(utc(2026, 3, 6, 12))  # 07:00 EST on Friday 2026-03-06
    mgr = make_manager(
        timezone="America/New_York",
        daily_limits={"final": 1, "short": 1},
        publish_times={"final": [time(10)], "short": [time(2, 30)]},
    )
    finals = [mgr.schedule_video(video_file(), "final") for _ in range(4)]
    assert [f.scheduled_publish_time for f in finals] == [
        utc(2026, 3, 6, 15),  # 10:00 EST
        utc(2026, 3, 7, 15),  # 10:00 EST
        utc(2026, 3, 8, 14),  # 10:00 EDT: DST began at 02:00 that morning
        utc(2026, 3, 9, 14),
    ]
    assert all(f.scheduled_publish_time.astimezone(NEW_YORK).hour == 10 for f in finals)
    shorts = [mgr.schedule_video(video_file(), "short") for _ in range(3)]
    assert [s.scheduled_publish_time for s in shorts] == [
        utc(2026, 3, 7, 7, 30),  # 02:30 EST
        utc(2026, 3, 8, 7, 30),  # 02:30 does not exist on 03-08: 03:30 EDT
        utc(2026, 3, 9, 6, 30),  # 02:30 EDT
    ]
    assert [s.publish_date for s in shorts] == [
        date(2026, 3, 7),
        date(2026, 3, 8),
        date(2026, 3, 9),
    ]
    # A preferred local time in the zone is stored as the right UTC instant.
    pref = mgr.schedule_video(
        video_file(), "final", preferred_time=datetime(2026, 3, 10, 18, tzinfo=NEW_YORK)
    )
    assert pref.scheduled_publish_time == utc(2026, 3, 10, 22)
    assert pref.publish_date == date(2026, 3, 10)
    invariants(raw_db, mgr)


def test_dst_zone_new_york_fall_back(
    make_manager: MakeManager, clock: FakeClock, video_file: VideoFile
) -> None:
    clock.set(utc(2026, 10, 31, 12))
    mgr = make_manager(
        timezone="America/New_York",
        daily_limits={"short": 1},
        publish_times={"short": [time(1, 30)]},
    )
    shorts = [mgr.schedule_video(video_file(), "short") for _ in range(2)]
    # 01:30 happens twice on 11-01: the first (EDT) is booked, and only once.
    assert [s.scheduled_publish_time for s in shorts] == [
        utc(2026, 11, 1, 5, 30),
        utc(2026, 11, 2, 6, 30),
    ]


# -- preferred time -------------------------------------------------------------------------------


def test_preferred_time_books_exactly_that_instant(
    make_manager: MakeManager, video_file: VideoFile, raw_db: RawDB
) -> None:
    mgr = make_manager()
    seoul_time = datetime(2026, 5, 6, 3, 0, tzinfo=SEOUL)  # 2026-05-05 18:00 UTC
    a = mgr.schedule_video(video_file(), "final", preferred_time=seoul_time)
    assert a.scheduled_publish_time == utc(2026, 5, 5, 18)
    assert a.publish_date == date(2026, 5, 5)  # channel is UTC
    # Not a configured slot: still exactly that instant (to the second).
    odd = datetime(2026, 5, 7, 12, 34, 56, 789_000, tzinfo=UTC)
    b = mgr.schedule_video(video_file(), "short", preferred_time=odd)
    assert b.scheduled_publish_time == utc(2026, 5, 7, 12, 34, 56)
    stored = {r.id: r.scheduled_publish_time for r in raw_db.schedules()}
    assert stored == {a.id: utc(2026, 5, 5, 18), b.id: utc(2026, 5, 7, 12, 34, 56)}
    invariants(raw_db, mgr)


def test_preferred_time_taken_reports_next_available(
    make_manager: MakeManager, video_file: VideoFile, raw_db: RawDB
) -> None:
    mgr = make_manager()
    slot = utc(2026, 5, 4, 10)
    first = mgr.schedule_video(video_file(), "final", preferred_time=slot)
    before = raw_db.dump()
    with pytest.raises(SlotUnavailableError) as info:
        mgr.schedule_video(video_file(), "final", preferred_time=slot)
    assert info.value.requested == slot
    assert info.value.next_available == utc(2026, 5, 4, 18)
    assert info.value.next_available == mgr.get_next_available_slot("final")
    assert "already booked" in str(info.value)
    assert raw_db.dump() == before
    # A short at the same instant collides too: one slot per channel instant.
    with pytest.raises(SlotUnavailableError) as info:
        mgr.schedule_video(video_file(), "short", preferred_time=slot)
    assert info.value.next_available == utc(2026, 5, 4, 11)  # next short slot
    assert raw_db.dump() == before
    assert [r.id for r in raw_db.schedules()] == [first.id]


def test_preferred_day_full_raises_daily_quota(
    make_manager: MakeManager, video_file: VideoFile, raw_db: RawDB
) -> None:
    mgr = make_manager(timezone="Asia/Seoul")
    day = date(2026, 5, 5)
    for hour in (10, 18):
        mgr.schedule_video(
            video_file(), "final", preferred_time=datetime(2026, 5, 5, hour, tzinfo=SEOUL)
        )
    before = raw_db.dump()
    with pytest.raises(QuotaExceededError) as info:
        mgr.schedule_video(
            video_file(), "final", preferred_time=datetime(2026, 5, 5, 23, 30, tzinfo=SEOUL)
        )
    e = info.value
    assert (e.limit_name, e.day, e.used, e.limit, e.requested) == ("daily:final", day, 2, 2, 1)
    assert "daily:final" in str(e)
    assert "2026-05-05" in str(e)
    assert raw_db.dump() == before
    # The same UTC date but the next Seoul day still has room.
    nxt = mgr.schedule_video(
        video_file(), "final", preferred_time=datetime(2026, 5, 6, 0, 30, tzinfo=SEOUL)
    )
    assert nxt.publish_date == date(2026, 5, 6)
    # Shorts on the full-for-finals day are unaffected.
    assert (
        mgr.schedule_video(
            video_file(), "short", preferred_time=datetime(2026, 5, 5, 12, tzinfo=SEOUL)
        ).publish_date
        == day
    )


# -- API quota ------------------------------------------------------------------------------------


def test_quota_bucket_exhaustion_moves_to_next_quota_day(
    make_manager: MakeManager, video_file: VideoFile, raw_db: RawDB
) -> None:
    # Slots 09:00-21:00 UTC upload an hour earlier: 01:00-13:00 PDT, all on the same PT day.
    mgr = make_manager(
        quota_policy=tiny_policy(uploads=3),
        daily_limits={"short": 5},
        publish_times={"short": [time(h) for h in (9, 12, 15, 18, 21)]},
    )
    booked = [mgr.schedule_video(video_file(), "short") for _ in range(4)]
    assert [b.scheduled_publish_time for b in booked] == [
        utc(2026, 5, 4, 9),
        utc(2026, 5, 4, 12),
        utc(2026, 5, 4, 15),
        utc(2026, 5, 5, 9),  # channel day 05-04 has room, but quota day 05-04 is spent
    ]
    assert [b.quota_date for b in booked] == [date(2026, 5, 4)] * 3 + [date(2026, 5, 5)]
    assert raw_db.quota()[("default", date(2026, 5, 4), "uploads")]["reserved"] == 3
    assert mgr.get_next_available_slot("short") == utc(2026, 5, 5, 12)
    before = raw_db.dump()
    with pytest.raises(QuotaExceededError) as info:
        mgr.schedule_video(video_file(), "short", preferred_time=utc(2026, 5, 4, 21))
    e = info.value
    assert (e.limit_name, e.day, e.used, e.limit, e.requested) == (
        "quota:uploads",
        date(2026, 5, 4),
        3,
        3,
        1,
    )
    assert raw_db.dump() == before
    invariants(raw_db, mgr)


def test_quota_is_reserved_on_the_quota_day_of_the_upload_not_today(
    make_manager: MakeManager, video_file: VideoFile, raw_db: RawDB
) -> None:
    # The original bug: quota was counted against *today*. Today is 2026-05-04 UTC
    # (2026-05-03 in Los Angeles). Publishing 10 days ahead at 10:00 KST on 05-14 means
    # uploading at 00:00 UTC on 05-14, which is 17:00 PDT on 05-13: that PT date pays.
    mgr = make_manager(timezone="Asia/Seoul")
    publish = datetime(2026, 5, 14, 10, tzinfo=SEOUL)
    s = mgr.schedule_video(video_file(), "final", preferred_time=publish)
    assert s.publish_date == date(2026, 5, 14)
    assert s.quota_date == date(2026, 5, 13)
    assert s.reserved_quota == {"uploads": 1}
    assert raw_db.quota() == {
        ("default", date(2026, 5, 13), "uploads"): {"reserved": 1, "used": 0, "limit": 100}
    }
    assert [(r.publish_date, r.quota_date) for r in raw_db.schedules()] == [
        (date(2026, 5, 14), date(2026, 5, 13))
    ]
    status = mgr.check_daily_quota(date(2026, 5, 14))
    assert {(b.quota_date, b.bucket): b.reserved for b in status.quota}[
        (date(2026, 5, 13), "uploads")
    ] == 1


def test_quota_day_uses_upload_lead_time(
    make_manager: MakeManager, video_file: VideoFile, raw_db: RawDB
) -> None:
    mgr = make_manager(upload_lead_time=timedelta(hours=6))
    # Publish 05-14 10:00 UTC, upload 04:00 UTC = 21:00 PDT on 05-13.
    s = mgr.schedule_video(video_file(), "final", preferred_time=utc(2026, 5, 14, 10))
    assert s.quota_date == date(2026, 5, 13)
    # Publish 05-14 14:00 UTC, upload 08:00 UTC = 01:00 PDT on 05-14.
    t = mgr.schedule_video(video_file(), "final", preferred_time=utc(2026, 5, 14, 14))
    assert t.quota_date == date(2026, 5, 14)
    # Publishing sooner than the lead time: the upload happens now, on today's PT date.
    u = mgr.schedule_video(video_file(), "short", preferred_time=utc(2026, 5, 4, 1))
    assert u.quota_date == date(2026, 5, 3)
    keys = {(k[1], k[2]): v["reserved"] for k, v in raw_db.quota().items()}
    assert keys == {
        (date(2026, 5, 13), "uploads"): 1,
        (date(2026, 5, 14), "uploads"): 1,
        (date(2026, 5, 3), "uploads"): 1,
    }


def test_thumbnail_and_playlist_reserve_shared_units(
    make_manager: MakeManager, video_file: VideoFile, raw_db: RawDB, tmp_path: Path
) -> None:
    thumb = tmp_path / "thumb.jpg"
    thumb.write_bytes(b"\xff\xd8\xff" + os.urandom(256))
    mgr = make_manager(quota_policy=tiny_policy(uploads=100, shared=150))
    rich = VideoMetadata(title="Lesson", thumbnail_path=str(thumb), playlist_id="PL1")
    a = mgr.schedule_video(video_file(), "final", metadata=rich)
    assert a.reserved_quota == {"shared": 100, "uploads": 1}
    assert a.metadata == rich
    q = raw_db.quota()
    assert q[("default", date(2026, 5, 4), "shared")]["reserved"] == 100
    assert q[("default", date(2026, 5, 4), "uploads")]["reserved"] == 1
    # A second rich upload does not fit the shared bucket that day (200 > 150): next quota day.
    assert mgr.get_next_available_slot("final", metadata=rich) == utc(2026, 5, 5, 10)
    b = mgr.schedule_video(video_file(), "final", metadata=rich)
    assert b.scheduled_publish_time == utc(2026, 5, 5, 10)
    # A plain upload only needs the uploads bucket: the same quota day still has room.
    c = mgr.schedule_video(video_file(), "final", metadata={"title": "plain"})
    assert c.scheduled_publish_time == utc(2026, 5, 4, 18)
    assert c.reserved_quota == {"uploads": 1}
    # Only a thumbnail: 50 shared units fit beside the 100 reserved on 05-04.
    d = mgr.schedule_video(
        video_file(),
        "short",
        metadata=VideoMetadata(title="t", thumbnail_path=str(thumb)),
    )
    assert d.reserved_quota == {"shared": 50, "uploads": 1}
    assert d.quota_date == date(2026, 5, 4)
    q = raw_db.quota()
    assert q[("default", date(2026, 5, 4), "shared")]["reserved"] == 150
    assert q[("default", date(2026, 5, 5), "shared")]["reserved"] == 100
    invariants(raw_db, mgr)


# -- next available slot --------------------------------------------------------------------------


def test_next_available_slot_agrees_with_schedule_video(
    make_manager: MakeManager, video_file: VideoFile, clock: FakeClock, raw_db: RawDB
) -> None:
    mgr = make_manager(timezone="Europe/London", daily_limits={"final": 1, "short": 2})
    mgr.schedule_video(video_file(), "short", preferred_time=utc(2026, 5, 4, 10))  # 11:00 BST
    for i in range(12):
        vt = VideoType.FINAL if i % 3 == 0 else VideoType.SHORT
        predicted = mgr.get_next_available_slot(vt)
        booked = mgr.schedule_video(video_file(), vt)
        assert booked.scheduled_publish_time == predicted, i
        if i == 5:
            clock.advance(hours=30)
    invariants(raw_db, mgr)


def test_next_available_slot_after(make_manager: MakeManager, video_file: VideoFile) -> None:
    mgr = make_manager()
    assert mgr.get_next_available_slot("final", after=utc(2026, 5, 10, 10, 0, 1)) == utc(
        2026, 5, 10, 18
    )
    assert mgr.get_next_available_slot("final", after=utc(2026, 5, 10, 10)) == utc(2026, 5, 10, 10)
    with pytest.raises(InvalidScheduleError) as info:
        mgr.get_next_available_slot("final", after=datetime(2026, 5, 10))  # noqa: DTZ001
    assert info.value.field == "after"
    with pytest.raises(InvalidScheduleError) as info:
        mgr.get_next_available_slot("trailer")
    assert info.value.field == "video_type"


def test_horizon_full_raises_slot_unavailable(
    make_manager: MakeManager, video_file: VideoFile, raw_db: RawDB
) -> None:
    mgr = make_manager(horizon_days=1)
    booked = [mgr.schedule_video(video_file(), "final") for _ in range(2)]
    assert [b.scheduled_publish_time for b in booked] == [utc(2026, 5, 4, 10), utc(2026, 5, 4, 18)]
    with pytest.raises(SlotUnavailableError) as info:
        mgr.get_next_available_slot("final")
    assert info.value.next_available is None
    assert "1 days" in str(info.value)
    before = raw_db.dump()
    with pytest.raises(SlotUnavailableError) as info:
        mgr.schedule_video(video_file(), "final")
    assert info.value.next_available is None
    assert raw_db.dump() == before
    # Shorts still have room within the same horizon.
    assert mgr.get_next_available_slot("short") == utc(2026, 5, 4, 8)


# -- reports --------------------------------------------------------------------------------------


def test_check_daily_quota_numbers(
    make_manager: MakeManager, video_file: VideoFile, tmp_path: Path
) -> None:
    thumb = tmp_path / "t.png"
    thumb.write_bytes(b"\x89PNG" + os.urandom(64))
    mgr = make_manager(daily_limits={"final": 2, "short": 4})
    day = date(2026, 5, 5)
    mgr.schedule_video(video_file(), "final", preferred_time=utc(2026, 5, 5, 10))
    mgr.schedule_video(
        video_file(),
        "short",
        preferred_time=utc(2026, 5, 5, 8),
        metadata=VideoMetadata(title="t", thumbnail_path=str(thumb)),
    )
    mgr.schedule_video(video_file(), "short", preferred_time=utc(2026, 5, 5, 11))
    mgr.schedule_video(video_file(), "short", preferred_time=utc(2026, 5, 6, 11))  # other day
    status = mgr.check_daily_quota(day)
    assert status.channel_id == "default"
    assert status.publish_date == day
    final, short = status.types[VideoType.FINAL], status.types[VideoType.SHORT]
    assert (final.used, final.limit, final.remaining) == (1, 2, 1)
    assert (short.used, short.limit, short.remaining) == (2, 4, 2)
    # Slots on 05-05 (08:00-20:00 UTC) upload 07:00-19:00 UTC: all on PT day 05-05.
    got = {(b.quota_date, b.bucket): (b.reserved, b.used, b.limit) for b in status.quota}
    assert got == {
        (day, "shared"): (50, 0, 10_000),
        (day, "uploads"): (3, 0, 100),
    }
    shared = next(b for b in status.quota if b.bucket == "shared")
    assert shared.remaining == 9_950
    empty = mgr.check_daily_quota(date(2026, 6, 1))
    assert all(t.used == 0 for t in empty.types.values())
    assert all(b.reserved == 0 and b.used == 0 for b in empty.quota)
    with pytest.raises(InvalidScheduleError) as info:
        mgr.check_daily_quota(utc(2026, 5, 5))  # type: ignore[arg-type]
    assert info.value.field == "target_date"


# -- cancel and reschedule ------------------------------------------------------------------------


def test_cancel_frees_slot_count_and_quota(
    make_manager: MakeManager, video_file: VideoFile, raw_db: RawDB
) -> None:
    mgr = make_manager()
    slot = utc(2026, 5, 5, 10)
    s = mgr.schedule_video(video_file(), "final", preferred_time=slot)
    mgr.schedule_video(video_file(), "final", preferred_time=utc(2026, 5, 5, 18))
    assert raw_db.day_counts()[("default", date(2026, 5, 5))]["final"] == 2
    cancelled = mgr.cancel(s.id)
    assert cancelled.status is UploadStatus.CANCELLED
    assert cancelled.reserved_quota == {}
    row = next(r for r in raw_db.schedules() if r.id == s.id)
    assert row.upload_status == "cancelled"
    assert row.slot_key is None
    assert raw_db.day_counts()[("default", date(2026, 5, 5))]["final"] == 1
    assert raw_db.quota()[("default", date(2026, 5, 5), "uploads")]["reserved"] == 1
    assert mgr.get(s.id).status is UploadStatus.CANCELLED
    # The slot, the daily count and the quota are free again.
    again = mgr.schedule_video(video_file(), "final", preferred_time=slot)
    assert again.scheduled_publish_time == slot
    assert raw_db.day_counts()[("default", date(2026, 5, 5))]["final"] == 2
    with pytest.raises(InvalidTransitionError) as info:
        mgr.cancel(s.id)
    assert (info.value.schedule_id, info.value.status, info.value.operation) == (
        s.id,
        "cancelled",
        "cancel",
    )
    with pytest.raises(ScheduleNotFoundError):
        mgr.cancel(s.id + 1000)
    invariants(raw_db, mgr)


def test_reschedule_moves_counters_across_days_and_quota_days(
    make_manager: MakeManager, video_file: VideoFile, raw_db: RawDB
) -> None:
    mgr = make_manager()
    s = mgr.schedule_video(video_file(), "final", preferred_time=utc(2026, 5, 5, 10))
    assert s.quota_date == date(2026, 5, 5)
    moved = mgr.reschedule(s.id, datetime(2026, 5, 10, 18, tzinfo=UTC))
    assert moved.id == s.id
    assert moved.scheduled_publish_time == utc(2026, 5, 10, 18)
    assert moved.publish_date == date(2026, 5, 10)
    assert moved.quota_date == date(2026, 5, 10)
    assert moved.status is UploadStatus.SCHEDULED
    counts = raw_db.day_counts()
    assert counts[("default", date(2026, 5, 5))]["final"] == 0
    assert counts[("default", date(2026, 5, 10))]["final"] == 1
    q = raw_db.quota()
    assert q[("default", date(2026, 5, 5), "uploads")]["reserved"] == 0
    assert q[("default", date(2026, 5, 10), "uploads")]["reserved"] == 1
    # The old slot is free for someone else.
    other = mgr.schedule_video(video_file(), "final", preferred_time=utc(2026, 5, 5, 10))
    assert other.id != s.id
    # Moving within the same day keeps the count; to a quota day across PT midnight moves quota.
    late = mgr.reschedule(s.id, utc(2026, 5, 11, 7, 30))  # upload 06:30 UTC = 23:30 PDT 05-10
    assert (late.publish_date, late.quota_date) == (date(2026, 5, 11), date(2026, 5, 10))
    q = raw_db.quota()
    assert q[("default", date(2026, 5, 10), "uploads")]["reserved"] == 1
    invariants(raw_db, mgr)


def test_reschedule_to_taken_slot_changes_nothing(
    make_manager: MakeManager, video_file: VideoFile, raw_db: RawDB
) -> None:
    mgr = make_manager()
    s = mgr.schedule_video(video_file(), "final", preferred_time=utc(2026, 5, 5, 10))
    mgr.schedule_video(video_file(), "final", preferred_time=utc(2026, 5, 12, 10))
    before = raw_db.dump()
    with pytest.raises(SlotUnavailableError) as info:
        mgr.reschedule(s.id, utc(2026, 5, 12, 10))
    assert info.value.requested == utc(2026, 5, 12, 10)
    assert info.value.next_available == utc(2026, 5, 12, 18)
    assert raw_db.dump() == before
    # To a full day: QuotaExceededError, nothing changed either.
    mgr.schedule_video(video_file(), "final", preferred_time=utc(2026, 5, 12, 18))
    before = raw_db.dump()
    with pytest.raises(QuotaExceededError) as qinfo:
        mgr.reschedule(s.id, utc(2026, 5, 12, 12))
    assert (qinfo.value.limit_name, qinfo.value.day) == ("daily:final", date(2026, 5, 12))
    assert raw_db.dump() == before
    # Bad input, unknown id, cancelled schedule.
    with pytest.raises(InvalidScheduleError) as binfo:
        mgr.reschedule(s.id, datetime(2026, 5, 20, 10))  # noqa: DTZ001
    assert binfo.value.field == "new_time"
    with pytest.raises(ScheduleNotFoundError):
        mgr.reschedule(9_999_999, utc(2026, 5, 20, 10))
    mgr.cancel(s.id)
    with pytest.raises(InvalidTransitionError):
        mgr.reschedule(s.id, utc(2026, 5, 20, 10))
    invariants(raw_db, mgr)


def test_reschedule_into_full_quota_day(
    make_manager: MakeManager, video_file: VideoFile, raw_db: RawDB
) -> None:
    mgr = make_manager(quota_policy=tiny_policy(uploads=1))
    s = mgr.schedule_video(video_file(), "final", preferred_time=utc(2026, 5, 5, 10))
    mgr.schedule_video(video_file(), "final", preferred_time=utc(2026, 5, 6, 10))
    before = raw_db.dump()
    with pytest.raises(QuotaExceededError) as info:
        mgr.reschedule(s.id, utc(2026, 5, 6, 18))
    assert (info.value.limit_name, info.value.day) == ("quota:uploads", date(2026, 5, 6))
    assert raw_db.dump() == before


# -- reads ----------------------------------------------------------------------------------------


def test_list_schedules_filters(make_manager: MakeManager, video_file: VideoFile) -> None:
    mgr = make_manager()
    a = mgr.schedule_video(video_file(), "final", preferred_time=utc(2026, 5, 6, 10))
    b = mgr.schedule_video(video_file(), "short", preferred_time=utc(2026, 5, 5, 8))
    c = mgr.schedule_video(video_file(), "final", preferred_time=utc(2026, 5, 7, 10), channel="b")
    d = mgr.schedule_video(video_file(), "short", preferred_time=utc(2026, 5, 8, 8))
    mgr.cancel(d.id)

    def ids(**kw: Any) -> list[int]:
        return [s.id for s in mgr.list_schedules(**kw)]

    assert ids() == [b.id, a.id, c.id, d.id]  # by publish time
    assert ids(status="scheduled") == [b.id, a.id, c.id]
    assert ids(status=UploadStatus.CANCELLED) == [d.id]
    assert ids(status=["cancelled", "scheduled"]) == [b.id, a.id, c.id, d.id]
    assert ids(channel="b") == [c.id]
    assert ids(channel="default") == [b.id, a.id, d.id]
    assert ids(start=utc(2026, 5, 6, 10), end=utc(2026, 5, 7, 10)) == [a.id]  # [start, end)
    assert ids(start=datetime(2026, 5, 6, 19, tzinfo=SEOUL)) == [a.id, c.id, d.id]
    assert ids(limit=2) == [b.id, a.id]
    assert ids(status="completed") == []
    with pytest.raises(InvalidScheduleError) as info:
        mgr.list_schedules(status="done")
    assert info.value.field == "status"
    with pytest.raises(InvalidScheduleError) as info:
        mgr.list_schedules(start=datetime(2026, 5, 6))  # noqa: DTZ001
    assert info.value.field == "start"
    with pytest.raises(InvalidScheduleError):
        mgr.list_schedules(limit=0)


def test_get_returns_domain_object_and_unknown_raises(
    make_manager: MakeManager, video_file: VideoFile
) -> None:
    mgr = make_manager()
    path = video_file("lesson 1.mp4")
    s = mgr.schedule_video(path, "final", metadata={"title": "Lesson 1", "tags": ["ko"]})
    got = mgr.get(s.id)
    assert got == s
    assert got.video_path == str(path)
    assert got.video_type is VideoType.FINAL
    assert got.metadata.tags == ("ko",)
    assert got.channel_id == "default"
    assert got.api_project == "default"
    assert got.attempts == 0
    with pytest.raises(ScheduleNotFoundError) as info:
        mgr.get(s.id + 12345)
    assert info.value.schedule_id == s.id + 12345
    assert isinstance(info.value, LookupError)
    # Default title comes from the file name.
    assert mgr.schedule_video(video_file("My <Video>.mp4"), "short").metadata.title == "My Video"


# -- recalculation --------------------------------------------------------------------------------


def test_recalculate_quota_fixes_corrupted_counters(
    make_manager: MakeManager, video_file: VideoFile, raw_db: RawDB
) -> None:
    mgr = make_manager()
    mgr.schedule_video(video_file(), "final", preferred_time=utc(2026, 5, 5, 10))
    mgr.schedule_video(video_file(), "short", preferred_time=utc(2026, 5, 5, 8))
    s3 = mgr.schedule_video(video_file(), "short", preferred_time=utc(2026, 5, 6, 8))
    mgr.cancel(s3.id)
    assert mgr.recalculate_quota().corrections == ()

    raw_db.execute(
        "UPDATE youtube_daily_limits SET final_count = 7, short_count = 0"
        " WHERE channel_id = 'default' AND publish_date = :d",
        d=date(2026, 5, 5),
    )
    raw_db.execute(
        "UPDATE youtube_quota_usage SET reserved = 42 WHERE quota_date = :d AND bucket = 'uploads'",
        d=date(2026, 5, 5),
    )
    raw_db.execute(
        "INSERT INTO youtube_daily_limits (channel_id, publish_date, final_count, short_count)"
        " VALUES ('default', :d, 0, 3)",
        d=date(2026, 6, 1),
    )
    report = mgr.recalculate_quota()
    assert report.changed
    fixes = {(c.table, c.key, c.column): (c.old, c.new) for c in report.corrections}
    assert fixes == {
        ("youtube_daily_limits", ("default", "2026-05-05"), "final_count"): (7, 1),
        ("youtube_daily_limits", ("default", "2026-05-05"), "short_count"): (0, 1),
        ("youtube_daily_limits", ("default", "2026-06-01"), "short_count"): (3, 0),
        ("youtube_quota_usage", ("default", "2026-05-05", "uploads"), "reserved"): (42, 2),
    }
    assert report.rows_checked == 3
    assert raw_db.day_counts()[("default", date(2026, 5, 5))] == {"final": 1, "short": 1}
    assert raw_db.quota()[("default", date(2026, 5, 5), "uploads")]["reserved"] == 2
    invariants(raw_db, mgr)
    second = mgr.recalculate_quota()
    assert second.corrections == ()
    assert not second.changed


def test_recalculate_quota_recreates_missing_rows_and_honours_range(
    make_manager: MakeManager, video_file: VideoFile, raw_db: RawDB
) -> None:
    mgr = make_manager()
    mgr.schedule_video(video_file(), "final", preferred_time=utc(2026, 5, 5, 10))
    mgr.schedule_video(video_file(), "final", preferred_time=utc(2026, 5, 20, 10))
    raw_db.execute("DELETE FROM youtube_daily_limits")
    raw_db.execute("UPDATE youtube_quota_usage SET reserved = 0")
    # Only May 1-10: the 05-20 counters stay wrong.
    report = mgr.recalculate_quota(start=date(2026, 5, 1), end=date(2026, 5, 10))
    assert report.changed
    counts = raw_db.day_counts()
    assert counts[("default", date(2026, 5, 5))] == {"final": 1, "short": 0}
    assert ("default", date(2026, 5, 20)) not in counts
    q = raw_db.quota()
    assert q[("default", date(2026, 5, 5), "uploads")]["reserved"] == 1
    assert q[("default", date(2026, 5, 20), "uploads")]["reserved"] == 0
    assert mgr.recalculate_quota().changed  # the rest
    invariants(raw_db, mgr)
    assert not mgr.recalculate_quota().changed
    with pytest.raises(InvalidScheduleError) as info:
        mgr.recalculate_quota(start=date(2026, 5, 10), end=date(2026, 5, 1))
    assert info.value.field == "start"


# -- time storage ---------------------------------------------------------------------------------


def test_utc_round_trip_of_aware_datetimes(
    make_manager: MakeManager, video_file: VideoFile, raw_db: RawDB
) -> None:
    now = datetime(2026, 5, 4, 0, 0, 0, 123_456, tzinfo=UTC)
    mgr = make_manager(clock_=FakeClock(now), horizon_days=365)
    seoul = datetime(2026, 5, 6, 3, 0, 15, tzinfo=SEOUL)
    ny = datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=NEW_YORK)  # the second 01:30 (EST)
    a = mgr.schedule_video(video_file(), "final", preferred_time=seoul)
    b = mgr.schedule_video(video_file(), "short", preferred_time=ny)
    for booked, expected in ((a, utc(2026, 5, 5, 18, 0, 15)), (b, utc(2026, 11, 1, 6, 30))):
        got = mgr.get(booked.id)
        for value in (got.scheduled_publish_time, got.created_at, got.updated_at):
            assert value.tzinfo is not None
            assert value.utcoffset() == timedelta(0)
        assert got.scheduled_publish_time == expected
        assert got.created_at == now  # microseconds survive on every engine
        assert got.updated_at == now
    # Stored as UTC: naive storage (SQLite, MySQL) holds the UTC wall time, not the local one.
    with raw_db.connect() as conn:
        stored = dict(
            conn.execute(text("SELECT id, scheduled_publish_time FROM youtube_schedules")).all()
        )
    assert as_utc(stored[a.id]) == utc(2026, 5, 5, 18, 0, 15)
    assert as_utc(stored[b.id]) == utc(2026, 11, 1, 6, 30)
    # Range filters compare instants, whatever the offset of the bounds.
    assert [s.id for s in mgr.list_schedules(end=datetime(2026, 5, 6, 3, 0, 16, tzinfo=SEOUL))] == [
        a.id
    ]
    assert [
        s.id for s in mgr.list_schedules(end=datetime(2026, 5, 6, 3, 0, 15, tzinfo=SEOUL))
    ] == []


# -- bad input: typed error naming the field, and nothing written ----------------------------------


def _long_path(tmp_path: Path) -> str:
    return str(tmp_path / (("d" * 200 + "/") * 21) / "v.mp4")


BAD_INPUTS: list[tuple[str, Callable[[Path, VideoFile], dict[str, Any]], str, str]] = [
    (
        "naive preferred_time",
        lambda tmp, vf: {"preferred_time": datetime(2026, 5, 5, 10)},  # noqa: DTZ001
        "preferred_time",
        "naive",
    ),
    (
        "preferred_time not a datetime",
        lambda tmp, vf: {"preferred_time": "2026-05-05T10:00:00Z"},
        "preferred_time",
        "expected a datetime",
    ),
    ("past", lambda tmp, vf: {"preferred_time": utc(2026, 5, 3, 10)}, "preferred_time", "earlier"),
    (
        "inside min_lead_time",
        lambda tmp, vf: {"preferred_time": utc(2026, 5, 4, 0, 14, 59)},
        "preferred_time",
        "min_lead_time",
    ),
    (
        "beyond horizon",
        lambda tmp, vf: {"preferred_time": utc(2026, 7, 3, 0, 0, 1)},
        "preferred_time",
        "horizon",
    ),
    ("unknown video type", lambda tmp, vf: {"video_type": "trailer"}, "video_type", "trailer"),
    (
        "missing file",
        lambda tmp, vf: {"video_path": tmp / "nope.mp4"},
        "video_path",
        "does not exist",
    ),
    ("directory", lambda tmp, vf: {"video_path": tmp}, "video_path", "not a regular file"),
    ("empty file", lambda tmp, vf: {"video_path": vf(size=0)}, "video_path", "is empty"),
    ("empty path", lambda tmp, vf: {"video_path": ""}, "video_path", "non-empty"),
    ("NUL in path", lambda tmp, vf: {"video_path": "a\x00b.mp4"}, "video_path", "NUL"),
    (
        "non-UTF-8 path",
        lambda tmp, vf: {"video_path": os.fsdecode(b"/tmp/\xff.mp4")},
        "video_path",
        "UTF-8",
    ),
    (
        "very long path",
        lambda tmp, vf: {"video_path": _long_path(tmp)},
        "video_path",
        "at most 4096",
    ),
    (
        "title 101 chars",
        lambda tmp, vf: {"metadata": {"title": "t" * 101}},
        "metadata.title",
        "101",
    ),
    (
        "description 5001 bytes",
        lambda tmp, vf: {"metadata": {"title": "t", "description": "é" * 2500 + "x"}},
        "metadata.description",
        "5001 bytes",
    ),
    (
        "thumbnail missing",
        lambda tmp, vf: {"metadata": {"title": "t", "thumbnail_path": str(tmp / "none.jpg")}},
        "metadata.thumbnail_path",
        "none.jpg",
    ),
    (
        "unknown metadata key",
        lambda tmp, vf: {"metadata": {"title": "t", "visibility": "public"}},
        "metadata",
        "visibility",
    ),
    ("empty channel", lambda tmp, vf: {"channel": ""}, "channel", "non-empty"),
]


@pytest.mark.parametrize(
    ("case", "make_kwargs", "field", "fragment"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS]
)
def test_bad_input_is_refused_and_writes_nothing(
    make_manager: MakeManager,
    video_file: VideoFile,
    raw_db: RawDB,
    tmp_path: Path,
    case: str,
    make_kwargs: Callable[[Path, VideoFile], dict[str, Any]],
    field: str,
    fragment: str,
) -> None:
    mgr = make_manager()
    kwargs: dict[str, Any] = {"video_path": video_file(), "video_type": "final"}
    kwargs.update(make_kwargs(tmp_path, video_file))
    with pytest.raises(InvalidScheduleError) as info:
        mgr.schedule_video(kwargs.pop("video_path"), kwargs.pop("video_type"), **kwargs)
    err = info.value
    assert isinstance(err, SchedulerError)
    assert isinstance(err, ValueError)
    assert err.field == field, case
    assert field in str(err)
    assert fragment in str(err), str(err)
    assert raw_db.counts() == dict.fromkeys(raw_db.counts(), 0)


def test_non_utf8_path_of_an_existing_file_is_refused(
    make_manager: MakeManager, raw_db: RawDB, tmp_path: Path
) -> None:
    raw_name = os.fsencode(tmp_path) + b"/lesson-\xff\xfe.mp4"
    with open(raw_name, "wb") as f:
        f.write(b"\0" * 1024)
    path = os.fsdecode(raw_name)
    assert os.path.isfile(path)
    with pytest.raises(InvalidScheduleError) as info:
        make_manager().schedule_video(path, "short")
    assert info.value.field == "video_path"
    assert "UTF-8" in str(info.value)
    assert sum(raw_db.counts().values()) == 0


def test_long_path_limit_is_in_bytes(
    make_manager: MakeManager, raw_db: RawDB, tmp_path: Path
) -> None:
    # 2000 Hangul characters = 6000 UTF-8 bytes: over the limit although < 4096 characters.
    path = str(tmp_path / ("가" * 2000 + ".mp4"))
    assert len(path) < 4096
    with pytest.raises(InvalidScheduleError) as info:
        make_manager().schedule_video(path, "short")
    assert info.value.field == "video_path"
    assert "bytes long" in str(info.value)
    assert sum(raw_db.counts().values()) == 0


def test_bad_input_after_existing_bookings_changes_nothing(
    make_manager: MakeManager, video_file: VideoFile, raw_db: RawDB
) -> None:
    mgr = make_manager()
    mgr.schedule_video(video_file(), "final", preferred_time=utc(2026, 5, 5, 10))
    before = raw_db.dump()
    for kwargs in (
        {"preferred_time": datetime(2026, 5, 5, 18)},  # noqa: DTZ001
        {"preferred_time": utc(2026, 8, 1, 10)},
        {"metadata": {"title": "x" * 101}},
    ):
        with pytest.raises(InvalidScheduleError):
            mgr.schedule_video(video_file(), "final", **kwargs)
    assert raw_db.dump() == before
