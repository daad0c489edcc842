"""``ScheduleManager.dry_run_plan``: what the next run would take and send, read-only."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from langflix_scheduler import DryRunPlan, InvalidScheduleError
from langflix_scheduler.domain import UploadStatus, VideoType
from langflix_scheduler.manager import ScheduleManager
from langflix_scheduler.testing.clock import FakeClock
from langflix_scheduler.youtube.uploader import publication_status


def test_the_plan_holds_exactly_the_due_schedules_and_changes_nothing(
    manager: ScheduleManager,
    make_manager: Callable[..., ScheduleManager],
    video_file: Callable[..., Path],
    clock: FakeClock,
) -> None:
    first = manager.schedule_video(video_file(), VideoType.FINAL, metadata={"title": "one"})
    gone = video_file()
    second = manager.schedule_video(gone, VideoType.FINAL, metadata={"title": "two"})
    later = manager.schedule_video(video_file(), VideoType.FINAL, metadata={"title": "three"})
    other = make_manager(channel="other-channel")
    other.schedule_video(video_file(), VideoType.FINAL)
    gone.unlink()
    lead = manager.config.upload_lead_time
    now = second.scheduled_publish_time - lead
    assert later.scheduled_publish_time - lead > now

    plan = manager.dry_run_plan(now=now)

    assert isinstance(plan, DryRunPlan)
    assert (plan.now, plan.channel, plan.api_project) == (
        now,
        manager.config.channel,
        manager.config.api_project,
    )
    assert plan.looked_at == (
        f"channel {manager.config.channel}, API project {manager.config.api_project}"
    )
    assert [i.schedule.id for i in plan.items] == [first.id, second.id]
    ok, missing = plan.items
    assert ok.ok
    assert ok.error is None
    assert ok.operations == ("videos.insert",)
    # what a real upload at `now` would send (the uploader's one publication rule)
    expected = publication_status(first.metadata.privacy, first.scheduled_publish_time, now=now)
    assert (ok.privacy_status, ok.publish_at) == expected
    assert ok.bytes_sent == 2048
    assert not missing.ok
    assert missing.error
    assert missing.operations == ()
    # read-only: nothing claimed, nothing counted as an attempt
    for s in (first, second, later):
        again = manager.get(s.id)
        assert (again.status, again.attempts) == (UploadStatus.SCHEDULED, 0)
    # the same rule as due_schedules, and the clock by default
    due = manager.due_schedules(now, channel=manager.config.channel)
    assert [s.id for s in due] == [first.id, second.id]
    clock.set(now)
    assert [i.schedule.id for i in manager.dry_run_plan().items] == [first.id, second.id]


def test_the_plan_is_per_channel_and_project(
    manager: ScheduleManager,
    make_manager: Callable[..., ScheduleManager],
    video_file: Callable[..., Path],
) -> None:
    other = make_manager(channel="other-channel")
    booked = other.schedule_video(video_file(), VideoType.SHORT)
    now = booked.scheduled_publish_time
    assert manager.dry_run_plan(now=now).items == ()
    mine = manager.dry_run_plan(channel="other-channel", now=now)
    assert [i.schedule.id for i in mine.items] == [booked.id]
    assert mine.channel == "other-channel"
    assert manager.dry_run_plan(channel="other-channel", api_project="x", now=now).items == ()


def test_a_naive_now_is_refused(manager: ScheduleManager, clock: FakeClock) -> None:
    with pytest.raises(InvalidScheduleError, match="now"):
        manager.dry_run_plan(now=clock().replace(tzinfo=None) + timedelta(0))
