"""Step 5 of ``langflix-scheduler demo``: the video's life after upload, on FakeYouTube's clock.

The processor already checked each uploaded video on YouTube while it ran (``videos.list``,
batched). This step changes one plan after upload (``ScheduleManager.reschedule`` with the
real client: ``videos.list`` + ``videos.update`` of the whole ``status`` part, the slot moving
with it), then moves the clock past the publish times and runs the processor once more: the
publish confirmation finds the videos public (FakeYouTube publishes a ``publishAt`` when its
clock passes it), and the rescheduled one still ``ready`` at its new time.

Like the rest of ``cli/``, only the library's public API is used.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from rich.markup import escape

from ..domain import ScheduledVideo, UploadStatus, VideoState
from ..manager import ScheduleManager
from ..processor import ProcessorEvent, UploadProcessor
from ..testing import FakeClock, FakeYouTube
from ..youtube.google import YouTubeUploader
from ._render import localize_instants

__all__ = ["LifeReport", "after_upload"]

#: How long after the last publish time the clock jumps (beyond the publish confirmation's
#: grace of five minutes).
_PAST_PUBLISH = timedelta(minutes=10)


@dataclass
class LifeReport:
    """What step 5 did, for the JSON output and the checks."""

    states_before: dict[str, int] = field(default_factory=dict)
    states_after: dict[str, int] = field(default_factory=dict)
    rescheduled: dict[str, Any] | None = None
    checks: dict[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class _Stage:
    say: Callable[[str], None]
    local: Callable[[datetime], str]
    clock: FakeClock
    channel: str
    new_uploader: Callable[[], YouTubeUploader]
    on_event: Callable[[ProcessorEvent], None]


def _uploaded(manager: ScheduleManager, channel: str) -> list[ScheduledVideo]:
    return manager.list_schedules(status=UploadStatus.COMPLETED.value, channel=channel)


def _states(videos: list[ScheduledVideo]) -> dict[str, int]:
    return dict(sorted(Counter((s.video_state or "none") for s in videos).items()))


def _pick_change(
    videos: list[ScheduledVideo], now: datetime, lead: timedelta
) -> ScheduledVideo | None:
    """The last uploaded video still waiting for its publish time (the one to move)."""
    waiting = [
        s
        for s in videos
        if s.video_state in (VideoState.READY, VideoState.UPLOADED, VideoState.PROCESSING)
        and s.scheduled_publish_time > now + lead
    ]
    return max(waiting, key=lambda s: s.scheduled_publish_time, default=None)


def _tell_one_story(stage: _Stage, manager: ScheduleManager, videos: list[ScheduledVideo]) -> None:
    """The timeline of the video that needed a retry: its whole life in one table's worth."""
    story = max(videos, key=lambda s: (s.attempts, -s.id), default=None)
    if story is None:
        return
    stage.say(f"   The life of {story.metadata.title!r} (show {story.id}):")
    for event in manager.timeline(story.id):
        who = f" ({event.actor})" if event.actor else ""
        detail = f": {localize_instants(event.detail, stage.local)}" if event.detail else ""
        stage.say(escape(f"     {stage.local(event.at)}  {event.kind}{who}{detail}"))


def _reschedule(
    stage: _Stage, manager: ScheduleManager, fake: FakeYouTube, target: ScheduledVideo
) -> dict[str, Any]:
    new_time = manager.get_next_available_slot(
        target.video_type,
        after=target.scheduled_publish_time + timedelta(days=1),
        channel=stage.channel,
    )
    with stage.new_uploader() as client:
        moved = manager.reschedule(target.id, new_time, videos=client, requested_by="demo")
    assert target.youtube_video_id is not None
    remote = fake.videos[target.youtube_video_id]
    stage.say(
        f"   Change of plan: {target.metadata.title!r} is already on YouTube (private, "
        f"publishAt {stage.local(target.scheduled_publish_time)}); reschedule it to "
        f"{stage.local(new_time)}: videos.list + videos.update (the whole status part sent "
        "back, 51 units, in the quota ledger first); the slot and day count move with it."
    )
    return {
        "schedule_id": target.id,
        "title": target.metadata.title,
        "old_publish_time": target.scheduled_publish_time.isoformat(),
        "new_publish_time": moved.scheduled_publish_time.isoformat(),
        "youtube_publish_at": remote.status.get("publishAt"),
        "video_state": None if moved.video_state is None else moved.video_state.value,
    }


def _confirm(stage: _Stage, manager: ScheduleManager) -> int:
    """Jump past the publish times of the uploaded videos and run the processor once."""
    videos = _uploaded(manager, stage.channel)
    last = max(s.scheduled_publish_time for s in videos if s.video_state != VideoState.READY)
    when = max(stage.clock(), last + _PAST_PUBLISH)
    stage.clock.set(when)
    with (
        stage.new_uploader() as client,
        UploadProcessor(
            manager,
            client,
            worker_id="demo-processor",
            channels=[stage.channel],
            upload_lead_time=timedelta(0),  # confirm only: nothing more comes due
            on_event=stage.on_event,
        ) as processor,
    ):
        report = processor.run_once()
    return report.verified


def after_upload(
    manager: ScheduleManager,
    fake: FakeYouTube,
    *,
    say: Callable[[str], None],
    local: Callable[[datetime], str],
    clock: FakeClock,
    channel: str,
    new_uploader: Callable[[], YouTubeUploader],
    on_event: Callable[[ProcessorEvent], None],
) -> LifeReport:
    """Run step 5 and return what it found."""
    stage = _Stage(say, local, clock, channel, new_uploader, on_event)
    report = LifeReport()
    before = _uploaded(manager, channel)
    report.states_before = _states(before)
    say("")
    say(
        "[bold]5. After the upload[/bold]: each run also checked the uploaded videos on YouTube "
        "(videos.list, 1 unit per 50 videos): "
        + ", ".join(f"{n} {state}" for state, n in report.states_before.items())
    )
    _tell_one_story(stage, manager, before)
    target = _pick_change(before, clock(), manager.config.min_lead_time)
    if target is not None:
        report.rescheduled = _reschedule(stage, manager, fake, target)
    checked = _confirm(stage, manager)
    after = _uploaded(manager, channel)
    report.states_after = _states(after)
    say(
        f"   Clock moved to {local(clock())}, past the publish times: the publish confirmation "
        f"checked {checked} video{'' if checked == 1 else 's'}: "
        + ", ".join(f"{n} {state}" for state, n in report.states_after.items())
    )
    report.checks = _checks(report, after, fake)
    return report


def _checks(report: LifeReport, after: list[ScheduledVideo], fake: FakeYouTube) -> dict[str, bool]:
    moved_id = None if report.rescheduled is None else report.rescheduled["schedule_id"]
    others = [s for s in after if s.id != moved_id]
    moved = [s for s in after if s.id == moved_id]
    checks = {
        "uploaded videos confirmed published on YouTube": bool(others)
        and all(
            s.video_state is VideoState.PUBLISHED
            and s.youtube_video_id is not None
            and fake.videos[s.youtube_video_id].status.get("privacyStatus") == "public"
            for s in others
        ),
    }
    if moved:
        s = moved[0]
        remote = fake.videos[s.youtube_video_id or ""]
        held = remote.status.get("publishAt")
        checks["the change of plan moved publishAt on YouTube and the slot"] = (
            s.video_state is VideoState.READY
            and remote.status.get("privacyStatus") == "private"
            and isinstance(held, str)
            and datetime.fromisoformat(held.replace("Z", "+00:00")) == s.scheduled_publish_time
            and report.rescheduled is not None
            and report.rescheduled["new_publish_time"] == s.scheduled_publish_time.isoformat()
        )
    return checks
