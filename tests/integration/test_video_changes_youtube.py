"""Changes of plan after upload with the real google client (``YouTubeUploader`` as the
``VideoClient``) against ``FakeYouTube``, on SQLite, PostgreSQL and MariaDB: a real upload,
then reschedule (the whole ``status`` part sent back), update (the whole ``snippet``), and
cancel with delete; every call in the quota ledger, as much as the fake counted."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from google.oauth2.credentials import Credentials

from langflix_scheduler.changes import CHANGE_LEASE, ChangeState
from langflix_scheduler.domain import UploadStatus, VideoState
from langflix_scheduler.errors import ChangePendingError, QuotaExhaustedError
from langflix_scheduler.manager import ScheduleManager
from langflix_scheduler.processor import UploadProcessor
from langflix_scheduler.quota import quota_date_of
from langflix_scheduler.testing import FakeYouTube
from langflix_scheduler.testing.clock import FakeClock
from langflix_scheduler.youtube.google import YouTubeUploader

from ..conftest import T0
from ._processor_support import assert_consistent

pytestmark = pytest.mark.timeout(120)

OLD = T0 + timedelta(minutes=40)
NEW = T0 + timedelta(hours=3)


@pytest.fixture
def youtube(clock: FakeClock) -> Iterator[tuple[FakeYouTube, YouTubeUploader]]:
    with FakeYouTube(clock=clock) as fake:
        client = YouTubeUploader(
            Credentials(token="test-token"),
            api_endpoint=fake.api_endpoint,
            clock=clock,
            sleep=lambda _s: None,
            retry_initial_delay=0.001,
            retry_max_delay=0.01,
        )
        try:
            yield fake, client
        finally:
            client.close()


def test_changes_with_the_real_client(
    make_manager: Callable[..., ScheduleManager],
    video_file: Callable[..., Path],
    youtube: tuple[FakeYouTube, YouTubeUploader],
) -> None:
    fake, client = youtube
    m = make_manager(daily_limits={"final": 10, "short": 10})
    sid = m.book(video_file(), "final", preferred_time=OLD).schedule.id
    with UploadProcessor(m, client) as processor:  # the uploader is the after-upload client
        assert processor.videos is client
        assert processor.run_once().uploaded == 1
    vid = m.get(sid).youtube_video_id
    assert vid is not None
    assert fake.videos[vid].status["publishAt"].startswith(OLD.strftime("%Y-%m-%dT%H:%M"))

    s = m.reschedule(sid, NEW, videos=client)
    assert (s.scheduled_publish_time, s.youtube_publish_at) == (NEW, NEW)
    assert s.video_state is VideoState.READY
    status = fake.videos[vid].status
    assert status["privacyStatus"] == "private"
    assert status["publishAt"].startswith(NEW.strftime("%Y-%m-%dT%H:%M"))
    assert status["embeddable"] is True
    assert fake.video_updates[-1].part == "status"
    assert fake.video_updates[-1].reset == ()  # the whole part went back

    s = m.update_video(sid, title="Renamed", tags=["korean", "lesson two"], videos=client)
    snippet = fake.videos[vid].snippet
    assert (snippet["title"], snippet["tags"]) == ("Renamed", ["korean", "lesson two"])
    assert fake.video_updates[-1].part == "snippet"
    assert s.metadata.title == "Renamed"

    s = m.cancel(sid, videos=client, delete=True)
    assert s.status is UploadStatus.CANCELLED
    assert s.video_state is VideoState.DELETED
    assert vid in fake.deleted_videos
    assert vid not in fake.videos
    assert [c.state for c in m.video_changes_of(sid)] == [ChangeState.APPLIED] * 3

    # Every after-upload call is in the ledger, and the ledger agrees with what YouTube counted.
    after = [c.operation for c in m.api_calls(sid) if c.bucket == "shared"]
    assert after == [
        "videos.list",
        "videos.update",
        "videos.list",
        "videos.update",
        "videos.list",
        "videos.delete",
    ]
    day = quota_date_of(T0, m.config.quota_timezone)
    ledger_shared = sum(c.cost for c in m.api_calls(sid) if c.bucket == "shared")
    assert ledger_shared == fake.quota_used("shared", day) == 3 * (1 + 50)
    assert_consistent(m)


def _uploaded(
    m: ScheduleManager, video_file: Callable[..., Path], client: YouTubeUploader
) -> tuple[int, str]:
    sid = m.book(video_file(), "final", preferred_time=OLD).schedule.id
    with UploadProcessor(m, client) as processor:
        assert processor.run_once().uploaded == 1
    vid = m.get(sid).youtube_video_id
    assert vid is not None
    return sid, vid


def test_a_lost_answer_is_finished_by_a_processor_run_without_a_second_update(
    make_manager: Callable[..., ScheduleManager],
    video_file: Callable[..., Path],
    youtube: tuple[FakeYouTube, YouTubeUploader],
    clock: FakeClock,
) -> None:
    fake, client = youtube
    m = make_manager(daily_limits={"final": 10, "short": 10})
    sid, vid = _uploaded(m, video_file, client)
    fake.drop_reply_next(1, target="update")  # YouTube applies it; the answer is lost
    with pytest.raises(ChangePendingError):
        m.reschedule(sid, NEW, videos=client)
    assert fake.videos[vid].status["publishAt"].startswith(NEW.strftime("%Y-%m-%dT%H:%M"))
    updates = fake.calls_of("videos.update")

    clock.advance(CHANGE_LEASE + timedelta(seconds=1))
    with UploadProcessor(m, client) as processor:
        processor.run_once()
    assert fake.calls_of("videos.update") == updates  # not sent again
    s = m.get(sid)
    assert (s.youtube_publish_at, s.video_state) == (NEW, VideoState.READY)
    assert [c.state for c in m.video_changes_of(sid)] == [ChangeState.APPLIED]
    day = quota_date_of(T0, m.config.quota_timezone)
    assert sum(c.cost for c in m.api_calls(sid) if c.bucket == "shared") == fake.quota_used(
        "shared", day
    )
    assert_consistent(m)


def test_youtube_quota_exceeded_puts_the_change_back_and_is_not_charged(
    make_manager: Callable[..., ScheduleManager],
    video_file: Callable[..., Path],
    youtube: tuple[FakeYouTube, YouTubeUploader],
) -> None:
    fake, client = youtube
    m = make_manager(daily_limits={"final": 10, "short": 10})
    sid, vid = _uploaded(m, video_file, client)
    fake.quota_exceeded_next(1, target="update")
    with pytest.raises(QuotaExhaustedError):
        m.cancel(sid, videos=client)
    s = m.get(sid)
    assert (s.status, s.scheduled_publish_time) == (UploadStatus.COMPLETED, OLD)
    assert fake.videos[vid].status["privacyStatus"] == "private"
    assert "publishAt" in fake.videos[vid].status
    assert [c.state for c in m.video_changes_of(sid)] == [ChangeState.FAILED]
    calls = [(c.operation, c.outcome, c.cost) for c in m.api_calls(sid) if c.bucket == "shared"]
    assert calls == [("videos.list", "sent", 1), ("videos.update", "refused", 0)]
    day = quota_date_of(T0, m.config.quota_timezone)
    assert fake.quota_used("shared", day) == 1
    assert_consistent(m)


def test_a_change_that_never_reached_youtube_is_sent_by_a_processor_run(
    make_manager: Callable[..., ScheduleManager],
    video_file: Callable[..., Path],
    youtube: tuple[FakeYouTube, YouTubeUploader],
    clock: FakeClock,
) -> None:
    """The other order: the change was recorded but its videos.update never took effect (the
    request failed before YouTube applied it, as a crash before the call would leave it). The
    next processor run after the lease finds YouTube still holding the old time and sends it."""
    fake, client = youtube
    m = make_manager(daily_limits={"final": 10, "short": 10})
    sid, vid = _uploaded(m, video_file, client)
    old_publish_at = fake.videos[vid].status["publishAt"]
    fake.fail_next(1, 503, target="update")  # refused before any effect; outcome unknown to us
    with pytest.raises(ChangePendingError):
        m.reschedule(sid, NEW, videos=client)
    assert fake.videos[vid].status["publishAt"] == old_publish_at  # nothing applied
    assert [c.state for c in m.video_changes_of(sid)] == [ChangeState.PENDING]
    assert m.get(sid).scheduled_publish_time == NEW  # the slot moved with the recorded intent

    with UploadProcessor(m, client) as processor:
        processor.run_once()  # lease not expired: left alone
        assert [c.state for c in m.video_changes_of(sid)] == [ChangeState.PENDING]
        clock.advance(CHANGE_LEASE + timedelta(seconds=1))
        processor.run_once()
    assert fake.videos[vid].status["publishAt"].startswith(NEW.strftime("%Y-%m-%dT%H:%M"))
    s = m.get(sid)
    assert (s.youtube_publish_at, s.video_state) == (NEW, VideoState.READY)
    assert [c.state for c in m.video_changes_of(sid)] == [ChangeState.APPLIED]
    # The ledger counts the update answered 503 too (YouTube charges every request that
    # reached it; the fake's injected fault charges nothing): never less than the fake.
    day = quota_date_of(T0, m.config.quota_timezone)
    ledger = sum(c.cost for c in m.api_calls(sid) if c.bucket == "shared")
    assert ledger == fake.quota_used("shared", day) + 50
    assert fake.calls_of("videos.update") == 2
    assert_consistent(m)


def test_cancel_unpublishes_with_the_real_client_and_frees_the_slot(
    make_manager: Callable[..., ScheduleManager],
    video_file: Callable[..., Path],
    youtube: tuple[FakeYouTube, YouTubeUploader],
    clock: FakeClock,
) -> None:
    """cancel of an uploaded video: the whole status part goes back private without
    publishAt, the video stays on YouTube and never turns public, the slot is free again."""
    fake, client = youtube
    m = make_manager(daily_limits={"final": 10, "short": 10})
    sid, vid = _uploaded(m, video_file, client)
    s = m.cancel(sid, videos=client)
    assert (s.status, s.video_state) == (UploadStatus.CANCELLED, VideoState.UNPUBLISHED)
    status = fake.videos[vid].status
    assert status["privacyStatus"] == "private"
    assert "publishAt" not in status
    assert status["embeddable"] is True
    assert fake.video_updates[-1].part == "status"
    assert fake.video_updates[-1].reset == ()  # the whole part went back
    assert [c.state for c in m.video_changes_of(sid)] == [ChangeState.APPLIED]
    again = m.book(video_file(), "final", preferred_time=OLD)  # the slot is free again
    assert again.created

    clock.advance(timedelta(hours=2))  # past the old publish time: it stays private
    with UploadProcessor(m, client) as processor:
        processor.run_once()
    assert fake.videos[vid].status["privacyStatus"] == "private"
    assert m.get(sid).video_state is VideoState.UNPUBLISHED  # final: no more checks
    day = quota_date_of(T0, m.config.quota_timezone)
    assert sum(c.cost for c in m.api_calls(sid) if c.bucket == "shared") == fake.quota_used(
        "shared", day
    ) - sum(c.cost for c in m.api_calls(again.schedule.id) if c.bucket == "shared")
    assert_consistent(m)
