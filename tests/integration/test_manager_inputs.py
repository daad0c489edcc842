"""Inputs checked once, at booking, on every engine (issue 11, library side).

Metadata text (invalid Unicode, control characters), tags counted YouTube's way, ids that cannot
exist, the Shorts rule read from the file, time edges (a type with limit 0, the horizon's edge, a
naive clock) and channel-scoped show/cancel/reschedule. Each test runs on SQLite, PostgreSQL and
MariaDB; what was written is checked with plain SQL (``raw_db``).
"""

from __future__ import annotations

import logging
import stat
import uuid
import warnings
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import available_timezones

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from langflix_scheduler.config import SchedulerConfig
from langflix_scheduler.db.models import Schedule
from langflix_scheduler.domain import UploadStatus, VideoMetadata, VideoType
from langflix_scheduler.errors import (
    ConfigurationError,
    InvalidScheduleError,
    NotAShortError,
    ScheduleNotFoundError,
    SlotUnavailableError,
)
from langflix_scheduler.manager import ScheduleManager
from langflix_scheduler.slots import slots_on_day
from langflix_scheduler.testing.clock import FakeClock
from langflix_scheduler.testing.media import write_mp4
from tests.integration.db_helpers import RawDB

MakeManager = Callable[..., ScheduleManager]
VideoFile = Callable[..., Path]


def _nothing_written(raw: RawDB) -> None:
    counts = raw.counts()
    assert counts["youtube_schedules"] == 0
    assert counts["youtube_daily_limits"] == 0
    assert counts["youtube_quota_usage"] == 0


# -- item 4: metadata text ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        ({"title": "caf\udce9 bad"}, "metadata.title"),  # what a Latin-1 argv byte becomes
        ({"title": "ok", "description": "a\udce9"}, "metadata.description"),
        ({"title": "ok", "tags": ["fine", "caf\udce9"]}, "metadata.tags[1]"),
        ({"title": "nul\x00"}, "metadata.title"),
        ({"title": "ok", "description": "bell\x07"}, "metadata.description"),
        ({"title": "ok", "tags": ["a\nb"]}, "metadata.tags[0]"),
    ],
)
def test_invalid_text_is_refused_at_booking_with_the_field_named(
    manager: ScheduleManager,
    video_file: VideoFile,
    raw_db: RawDB,
    metadata: dict[str, Any],
    field: str,
) -> None:
    with pytest.raises(InvalidScheduleError) as info:
        manager.schedule_video(video_file(), "final", metadata=metadata)
    assert info.value.field == field
    _nothing_written(raw_db)  # MariaDB never sees the row


def test_description_line_breaks_and_tabs_are_booked(
    manager: ScheduleManager, video_file: VideoFile, raw_db: RawDB
) -> None:
    text = "line one\r\nline two\n\tindented"
    booked = manager.schedule_video(
        video_file(), "final", metadata={"title": "t", "description": text}
    )
    assert manager.get(booked.id).metadata.description == text


# -- item 6: tags counted YouTube's way -----------------------------------------------------------


def test_tags_counted_youtubes_way_at_booking(
    manager: ScheduleManager, video_file: VideoFile, raw_db: RawDB
) -> None:
    with pytest.raises(InvalidScheduleError) as info:
        manager.schedule_video(
            video_file(), "final", metadata={"title": "t", "tags": ["ab cd efgh"] * 46}
        )
    assert info.value.field == "metadata.tags"
    assert "597" in str(info.value)
    assert "500" in str(info.value)
    _nothing_written(raw_db)
    booked = manager.schedule_video(
        video_file(), "final", metadata={"title": "t", "tags": ["ab cd efgh"] * 38}
    )
    assert len(booked.metadata.tags) == 38


def test_rows_booked_under_older_rules_are_still_readable(
    manager: ScheduleManager, video_file: VideoFile, raw_db: RawDB
) -> None:
    booked = manager.schedule_video(video_file(), "final", metadata={"title": "t"})
    stored = VideoMetadata(title="t").to_json() | {"tags": ["ab cd efgh"] * 46}
    with raw_db.engine.begin() as conn:  # as an older version stored it
        conn.execute(update(Schedule).where(Schedule.id == booked.id).values(video_metadata=stored))
    assert len(manager.get(booked.id).metadata.tags) == 46
    assert [s.id for s in manager.list_schedules()] == [booked.id]
    assert manager.cancel(booked.id).status == UploadStatus.CANCELLED


# -- item 5: ids that cannot exist ----------------------------------------------------------------

_IMPOSSIBLE_IDS: list[Any] = [
    99999999999999999999999,
    3_000_000_000,
    2**31,
    -1,
    0,
    True,
    False,
    None,
    "12",
    1.0,
]


@pytest.mark.parametrize("bad_id", _IMPOSSIBLE_IDS, ids=repr)
def test_ids_that_cannot_exist_are_not_found(
    manager: ScheduleManager, video_file: VideoFile, raw_db: RawDB, bad_id: Any
) -> None:
    booked = manager.schedule_video(video_file(), "final")
    later = booked.scheduled_publish_time + timedelta(days=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a SAWarning would fail here
        with pytest.raises(ScheduleNotFoundError):
            manager.get(bad_id)
        with pytest.raises(ScheduleNotFoundError):
            manager.cancel(bad_id)
        with pytest.raises(ScheduleNotFoundError):
            manager.reschedule(bad_id, later)
    assert [r.upload_status for r in raw_db.schedules()] == ["scheduled"]


def test_largest_possible_id_is_simply_not_found(manager: ScheduleManager) -> None:
    with pytest.raises(ScheduleNotFoundError) as info:
        manager.get(2**31 - 1)
    assert info.value.schedule_id == 2**31 - 1


# -- item 9: an id of another channel -------------------------------------------------------------


def test_show_cancel_reschedule_refuse_an_id_of_another_channel(
    manager: ScheduleManager, video_file: VideoFile, raw_db: RawDB
) -> None:
    booked = manager.schedule_video(video_file(), "final", channel="korean")
    later = booked.scheduled_publish_time + timedelta(days=1)
    before = raw_db.dump()
    for call in (
        lambda: manager.get(booked.id, channel="spanish"),
        lambda: manager.cancel(booked.id, channel="spanish"),
        lambda: manager.reschedule(booked.id, later, channel="spanish"),
    ):
        with pytest.raises(ScheduleNotFoundError) as info:
            call()
        assert info.value.channel == "spanish"
        assert "spanish" in str(info.value)
    assert raw_db.dump() == before  # nothing changed
    assert manager.get(booked.id, channel="korean").id == booked.id
    assert manager.reschedule(booked.id, later, channel="korean").scheduled_publish_time == later
    assert manager.cancel(booked.id, channel="korean").status == UploadStatus.CANCELLED


# -- item 7: the Shorts rule, read from the file ------------------------------------------------


def test_a_vertical_short_of_at_most_180_s_is_booked(
    manager: ScheduleManager, tmp_path: Path
) -> None:
    vertical = write_mp4(tmp_path / "v.mp4", width=1080, height=1920, seconds=180)
    square = write_mp4(tmp_path / "s.mp4", width=720, height=720, seconds=15)
    # A phone video stored landscape with a 90-degree rotation flag is displayed vertical.
    phone = write_mp4(tmp_path / "p.mov", width=1920, height=1080, seconds=40, rotation=90)
    for path in (vertical, square, phone):
        assert manager.schedule_video(path, "short").video_type == VideoType.SHORT


@pytest.mark.parametrize(
    ("width", "height", "seconds", "rotation", "measured"),
    [
        (1920, 1080, 30, 0, "30.00 s, 1920x1080"),
        (1080, 1920, 181, 0, "181.00 s, 1080x1920"),
        (1080, 1920, 30, 90, "30.00 s, 1920x1080"),  # vertical stored, rotated to landscape
    ],
)
def test_a_short_youtube_would_not_treat_as_a_short_is_refused(
    manager: ScheduleManager,
    tmp_path: Path,
    raw_db: RawDB,
    width: int,
    height: int,
    seconds: float,
    rotation: int,
    measured: str,
) -> None:
    path = write_mp4(
        tmp_path / "x.mp4", width=width, height=height, seconds=seconds, rotation=rotation
    )
    with pytest.raises(NotAShortError) as info:
        manager.schedule_video(path, "short")
    assert isinstance(info.value, InvalidScheduleError)
    assert info.value.field == "video_type"
    assert measured in str(info.value)
    assert info.value.duration_seconds == pytest.approx(seconds)
    _nothing_written(raw_db)


def test_a_final_that_would_become_a_short_is_booked_with_a_warning(
    manager: ScheduleManager, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_mp4(tmp_path / "f.mp4", width=1080, height=1920, seconds=50)
    with caplog.at_level(logging.WARNING, logger="langflix_scheduler.media"):
        booked = manager.schedule_video(path, "final")
    assert booked.video_type == VideoType.FINAL
    assert "will publish it as a Short" in caplog.text
    assert "1080x1920" in caplog.text


def test_an_unreadable_container_is_booked_with_a_warning_saying_why(
    manager: ScheduleManager, video_file: VideoFile, caplog: pytest.LogCaptureFixture
) -> None:
    path = video_file()  # random bytes, as the demo and the examples' dummies used to be
    with caplog.at_level(logging.WARNING, logger="langflix_scheduler.media"):
        booked = manager.schedule_video(path, "short")
    assert booked.video_type == VideoType.SHORT
    assert "could not check whether YouTube will treat it as a Short" in caplog.text
    assert "not a video container" in caplog.text
    assert str(path) in caplog.text


# -- item 8: time edges ---------------------------------------------------------------------------


def test_a_type_with_daily_limit_zero_is_never_offered_nor_booked(
    make_manager: MakeManager, video_file: VideoFile, raw_db: RawDB, clock: FakeClock
) -> None:
    mgr = make_manager(daily_limits={"final": 2, "short": 0}, horizon_days=366)
    with pytest.raises(SlotUnavailableError) as info:
        mgr.get_next_available_slot("short")
    assert "daily limit of short videos is 0" in str(info.value)
    with pytest.raises(SlotUnavailableError) as info:
        mgr.schedule_video(video_file(), "short")
    assert "daily limit of short videos is 0" in str(info.value)
    with pytest.raises(SlotUnavailableError):
        mgr.schedule_video(video_file(), "short", preferred_time=clock() + timedelta(days=2))
    _nothing_written(raw_db)  # no 64 rounds, no empty counter rows


def test_a_slot_offered_at_the_horizon_edge_is_accepted(
    make_manager: MakeManager, video_file: VideoFile
) -> None:
    edge = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)  # a configured 'final' slot
    horizon = timedelta(days=5)
    clock = FakeClock(edge - horizon - timedelta(microseconds=500_000))
    mgr = make_manager(clock_=clock, horizon_days=5)
    offered = mgr.get_next_available_slot("final", after=edge - timedelta(minutes=1))
    assert offered == edge  # half a second past now + horizon
    assert mgr.schedule_video(video_file(), "final", preferred_time=offered).id > 0
    clock.set(edge - horizon - timedelta(seconds=1))  # a full second past is beyond it
    with pytest.raises(InvalidScheduleError) as info:
        mgr.schedule_video(video_file(), "final", preferred_time=edge + timedelta(hours=8))
    assert info.value.field == "preferred_time"


def test_a_naive_clock_is_a_configuration_error_naming_the_clock(
    make_manager: MakeManager, video_file: VideoFile
) -> None:
    def naive_clock() -> datetime:
        return datetime(2026, 5, 4, 12, 0)  # noqa: DTZ001 - the point of the test

    mgr = make_manager(clock_=naive_clock)
    for call in (
        mgr.now,
        lambda: mgr.get_next_available_slot("final"),
        lambda: mgr.schedule_video(video_file(), "final"),
    ):
        with pytest.raises(ConfigurationError) as info:
            call()
        assert info.value.field == "clock"
        assert "naive_clock" in str(info.value)


_ZONES = sorted(available_timezones() - {"Factory", "localtime"})


@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    zone=st.sampled_from(_ZONES),
    day=st.dates(min_value=date(2026, 1, 1), max_value=date(2027, 12, 31)),
    horizon_days=st.integers(min_value=1, max_value=4),
    video_type=st.sampled_from(list(VideoType)),
    slot_index=st.integers(min_value=0, max_value=4),
    past_edge=st.timedeltas(min_value=timedelta(0), max_value=timedelta(microseconds=999_999)),
    back=st.none() | st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=2)),
)
def test_offered_slot_is_accepted_in_every_zone(
    db_url: str,
    video_file: VideoFile,
    zone: str,
    day: date,
    horizon_days: int,
    video_type: VideoType,
    slot_index: int,
    past_edge: timedelta,
    back: timedelta | None,
) -> None:
    """Whatever the zone (DST, odd offsets), the slot offered is accepted when passed back as
    ``preferred_time``: a configured slot of channel day ``day`` lies up to a second past
    now + horizon (``back`` None), or slot search starts ``back`` before the horizon's end."""
    run = uuid.uuid4().hex[:12]
    config = SchedulerConfig(
        database_url=db_url,
        timezone=zone,
        horizon_days=horizon_days,
        channel=f"ch-{run}",
        api_project=f"p-{run}",
    )
    slots = slots_on_day(day, config.publish_times[video_type], config.zone)
    if not slots:
        return
    edge = slots[slot_index % len(slots)]
    now = edge - config.horizon - past_edge
    after = edge - timedelta(microseconds=1) if back is None else now + config.horizon - back
    with ScheduleManager(config, clock=FakeClock(now)) as mgr:
        try:
            offered = mgr.get_next_available_slot(video_type, after=after)
        except SlotUnavailableError:
            return  # no slot of the type between `after` and the edge
        if back is None:
            assert offered == edge
        booked = mgr.schedule_video(video_file(), video_type, preferred_time=offered)
    assert booked.scheduled_publish_time == offered
    assert booked.publish_date == offered.astimezone(config.zone).date()


# -- security: the SQLite file is private ---------------------------------------------------


def test_sqlite_database_created_by_the_library_is_private(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with ScheduleManager(SchedulerConfig(database_url=f"sqlite:///{path}")) as mgr:
        mgr.init_db()
        for p in (path, tmp_path / "new.db-wal", tmp_path / "new.db-shm"):
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, p.name


def test_sqlite_existing_database_mode_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    with ScheduleManager(SchedulerConfig(database_url=f"sqlite:///{path}")) as mgr:
        mgr.init_db()
    path.chmod(0o640)
    with ScheduleManager(SchedulerConfig(database_url=f"sqlite:///{path}")) as mgr:
        assert mgr.list_schedules() == []
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
