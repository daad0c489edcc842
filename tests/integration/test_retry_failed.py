"""``ScheduleManager.retry_failed``: a failed schedule takes its slot and quota again, or is
refused with a typed error; counters stay equal to a recount on every engine."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from langflix_scheduler.domain import UploadStatus, VideoType
from langflix_scheduler.errors import (
    DuplicateVideoError,
    InvalidScheduleError,
    InvalidTransitionError,
    ScheduleNotFoundError,
    SlotUnavailableError,
)
from langflix_scheduler.manager import ScheduleManager
from langflix_scheduler.testing.clock import FakeClock
from tests.integration.db_helpers import RawDB


def fail(manager: ScheduleManager, raw_db: RawDB, schedule_id: int) -> None:
    """Mark a schedule failed the way the processor leaves it, then let the library recount."""
    raw_db.execute(
        "UPDATE youtube_schedules SET upload_status = 'failed', slot_key = NULL, "
        "fingerprint_key = NULL, attempts = 5, last_error = 'invalidTitle: rejected' "
        "WHERE id = :i",
        i=schedule_id,
    )
    manager.recalculate_quota()


def _invariants(manager: ScheduleManager, raw_db: RawDB) -> None:
    cfg = manager.config
    raw_db.check_invariants(
        daily_limits={t.value: n for t, n in cfg.daily_limits.items()},
        bucket_limits=dict(cfg.quota_policy.buckets),
    )
    assert manager.recalculate_quota().corrections == ()


def test_retry_takes_slot_and_quota_again(
    manager: ScheduleManager, video_file: Callable[..., Path], raw_db: RawDB
) -> None:
    s = manager.schedule_video(str(video_file()), VideoType.FINAL)
    fail(manager, raw_db, s.id)
    before = {r.bucket: r for r in manager.quota_usage(s.quota_date, s.quota_date)}
    assert all(r.reserved == 0 for r in before.values())

    again = manager.retry_failed(s.id)

    assert again.status is UploadStatus.SCHEDULED
    assert again.scheduled_publish_time == s.scheduled_publish_time
    assert again.attempts == 0
    assert again.reserved_quota == s.reserved_quota
    after = {r.bucket: r for r in manager.quota_usage(s.quota_date, s.quota_date)}
    for bucket, amount in s.reserved_quota.items():
        assert after[bucket].reserved == amount
    assert manager.check_daily_quota(s.publish_date).types[VideoType.FINAL].used == 1
    _invariants(manager, raw_db)


def test_retry_refusals(
    manager: ScheduleManager,
    video_file: Callable[..., Path],
    raw_db: RawDB,
    clock: FakeClock,
) -> None:
    a = manager.schedule_video(str(video_file()), VideoType.FINAL)
    with pytest.raises(InvalidTransitionError):
        manager.retry_failed(a.id)  # not failed
    with pytest.raises(ScheduleNotFoundError):
        manager.retry_failed(987654)
    fail(manager, raw_db, a.id)
    # Someone else took the slot meanwhile.
    b = manager.schedule_video(
        str(video_file()), VideoType.FINAL, preferred_time=a.scheduled_publish_time
    )
    with pytest.raises(SlotUnavailableError) as taken:
        manager.retry_failed(a.id)
    assert taken.value.next_available is not None
    # The same content is active again on the channel.
    manager.cancel(b.id)
    dup = manager.schedule_video(a.video_path, VideoType.FINAL, allow_duplicate=False)
    assert dup.content_sha256 == a.content_sha256
    with pytest.raises(DuplicateVideoError):
        manager.retry_failed(a.id, new_time=a.scheduled_publish_time + timedelta(days=1))
    manager.cancel(dup.id)
    # The publish time passed: a new time is needed.
    clock.advance(timedelta(days=3))
    with pytest.raises(InvalidScheduleError):
        manager.retry_failed(a.id)
    new_time = clock() + timedelta(days=1)
    again = manager.retry_failed(a.id, new_time=new_time)
    assert again.scheduled_publish_time == new_time.replace(microsecond=0)
    assert again.status is UploadStatus.SCHEDULED
    _invariants(manager, raw_db)
