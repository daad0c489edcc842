"""A video absent from ``videos.list`` is not deleted at once (review F3), on SQLite, PostgreSQL
and MariaDB with ``MemoryVideoClient`` and real processor runs:

* absent -> ``missing`` (checked again after 10 minutes, then an hour) -> ``deleted`` at the
  third absent answer in a row (more than an hour after the first); found again, it takes its
  state back;
* a processor without a channel filter never makes a video ``deleted`` (its one client may hold
  another channel's token);
* an answer that finds none of two or more videos of a channel (a token of another account) is
  not trusted: nothing becomes ``missing``, the rows say so and are checked again later;
* reconcile refuses to mark gone videos when none of two or more recorded ones is found;
* reconcile matches a video that ``publishAt`` already made public on its upload time (F4).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from google.oauth2.credentials import Credentials

from langflix_scheduler.domain import VideoState
from langflix_scheduler.manager import ScheduleManager
from langflix_scheduler.overview import attention
from langflix_scheduler.processor import ProcessorEvent, ProcessorEventKind, UploadProcessor
from langflix_scheduler.processor.verdict import MISSING_RECHECK
from langflix_scheduler.processor.verify import SUSPECT_PROBLEM
from langflix_scheduler.reconcile import MatchState
from langflix_scheduler.testing import FakeYouTube
from langflix_scheduler.testing.clock import FakeClock
from langflix_scheduler.testing.memory_videos import MemoryVideoClient
from langflix_scheduler.youtube.google import YouTubeUploader

from ._processor_support import StubUploader, assert_consistent
from .db_helpers import RawDB
from .test_reconcile import _book, _needs_review
from .test_video_changes import LIMITS, OLD, processors  # noqa: F401
from .test_video_checks import (  # noqa: F401
    CHECK_BACKOFF,
    kinds_of,
    make_processor,
    memory,
    mgr,
    uploaded,
    vid,
    video_lists,
)

pytestmark = pytest.mark.timeout(120)


def test_processor_without_channel_filter_does_not_delete_other_channels_videos(
    make_manager: Any,
    video_file: Any,
    clock: FakeClock,
    processors: list,  # noqa: F811
) -> None:
    """The review's case: ``channels`` None, ``videos`` one channel's token. Channel b's video
    is absent from channel a's answers: ``missing``, never ``deleted``, however long it runs."""
    m = make_manager(daily_limits=LIMITS)
    a = m.book(video_file(), "final", preferred_time=OLD, channel="a").schedule
    b = m.book(video_file(), "final", preferred_time=OLD, channel="b").schedule
    token_a = MemoryVideoClient()  # what channel a's token can see
    p = UploadProcessor(m, StubUploader(), videos=token_a)
    processors.append(p)
    p.run_once()
    token_a.add(m.get(a.id).youtube_video_id, publish_at=OLD, title="a")
    for _ in range(3):
        clock.advance(timedelta(minutes=15))
        p.run_once()
    assert str(m.get(a.id).video_state) != "deleted"
    assert str(m.get(b.id).video_state) != "deleted", m.get(b.id).video_problem
    for _ in range(6):  # hours more: still not deleted without a channel filter
        clock.advance(timedelta(hours=7))
        p.run_once()
    shown = m.get(b.id)
    assert shown.video_state is VideoState.MISSING
    assert shown.video_problem is not None
    assert "channel filter" in shown.video_problem
    assert shown.next_check_at is not None
    assert_consistent(m)


def test_absent_video_is_missing_then_deleted_after_three_answers_over_an_hour(
    mgr: ScheduleManager,  # noqa: F811
    make_processor: Any,  # noqa: F811
    memory: MemoryVideoClient,  # noqa: F811
    video_file: Any,
    peek: RawDB,
    clock: FakeClock,
) -> None:
    events: list[ProcessorEvent] = []
    processor = make_processor(mgr, channels=["ch1"], on_event=events.append)
    kept, gone, back = uploaded(mgr, processor, video_file, clock, 3)
    memory.remove(vid(peek, gone))
    removed_back = memory.videos[vid(peek, back)]
    memory.remove(vid(peek, back))
    clock.advance(CHECK_BACKOFF[0])
    first = clock()
    events.clear()
    assert processor.run_once().verified == 3
    for sid in (gone, back):
        row = peek.row(sid)
        assert row["video_state"] == "missing"
        assert "another account" in row["video_problem"]
        assert row["next_check_at"] == first + MISSING_RECHECK[0]
        assert row["check_count"] == 1
    assert {e.schedule_id: e.kind for e in events if e.schedule_id in (gone, back)} == {
        gone: ProcessorEventKind.MISSING,
        back: ProcessorEventKind.MISSING,
    }
    assert [s.id for s in attention(mgr).missing] == [gone, back]

    memory.videos[removed_back.video_id] = removed_back  # it was only briefly not listed
    clock.advance(MISSING_RECHECK[0])
    assert processor.run_once().verified == 3  # `kept` is processing: checked again too
    assert peek.row(gone)["video_state"] == "missing"
    assert peek.row(gone)["next_check_at"] == clock() + MISSING_RECHECK[1]
    assert peek.row(back)["video_state"] == "processing"
    assert peek.row(back)["video_problem"] is None
    assert kinds_of(mgr, back) == ["uploaded", "missing", "processing"]

    clock.advance(MISSING_RECHECK[1] - timedelta(minutes=1))
    processor.run_once()
    assert peek.row(gone)["video_state"] == "missing"  # not due yet
    clock.advance(timedelta(minutes=1))
    events.clear()
    processor.run_once()
    row = peek.row(gone)
    assert row["video_state"] == "deleted"
    assert row["next_check_at"] is None
    assert clock() - first >= timedelta(hours=1)
    assert "no longer on YouTube" in row["video_problem"]
    assert [e.kind for e in events if e.schedule_id == gone] == [ProcessorEventKind.DELETED]
    assert kinds_of(mgr, gone) == ["uploaded", "missing", "deleted"]
    assert peek.row(kept)["video_state"] != "deleted"
    assert_consistent(mgr)


def test_an_answer_finding_none_of_the_channels_videos_is_not_trusted(
    mgr: ScheduleManager,  # noqa: F811
    make_processor: Any,  # noqa: F811
    memory: MemoryVideoClient,  # noqa: F811
    video_file: Any,
    peek: RawDB,
    clock: FakeClock,
) -> None:
    """A re-auth with the wrong Google account: its token sees none of the channel's private
    videos. Nothing becomes missing or deleted, however often it is asked."""
    processor = make_processor(mgr, channels=["ch1"])
    ids = uploaded(mgr, processor, video_file, clock, 3)
    processor.videos = MemoryVideoClient()  # another account's token
    for _ in range(4):
        clock.advance(timedelta(hours=1))
        assert processor.run_once().verified == 0
        for sid in ids:
            row = peek.row(sid)
            assert row["video_state"] == "uploaded"
            assert row["video_problem"] == SUSPECT_PROBLEM
            assert row["next_check_at"] == clock() + timedelta(hours=1)
            assert row["check_count"] == 0
            assert kinds_of(mgr, sid) == ["uploaded"]
    assert len(video_lists(peek)) == 4  # each answer was paid for and is in the ledger

    processor.videos = memory  # `auth` again with the right account
    clock.advance(timedelta(hours=1))
    assert processor.run_once().verified == 3
    for sid in ids:
        row = peek.row(sid)
        assert row["video_state"] == "processing"
        assert row["video_problem"] is None
    assert_consistent(mgr)


def test_one_video_of_a_channel_found_the_others_missing(
    mgr: ScheduleManager,  # noqa: F811
    make_processor: Any,  # noqa: F811
    memory: MemoryVideoClient,  # noqa: F811
    video_file: Any,
    peek: RawDB,
    clock: FakeClock,
) -> None:
    """The guard is for an answer with nothing in it: one video found makes the others'
    absence believable (they become missing)."""
    processor = make_processor(mgr, channels=["ch1"])
    found, *absent = uploaded(mgr, processor, video_file, clock, 3)
    for sid in absent:
        memory.remove(vid(peek, sid))
    clock.advance(CHECK_BACKOFF[0])
    assert processor.run_once().verified == 3
    assert [peek.row(s)["video_state"] for s in absent] == ["missing", "missing"]
    assert peek.row(found)["video_state"] == "processing"


# -- reconcile -----------------------------------------------------------------------------------


@pytest.fixture
def ch_mgr(make_manager: Callable[..., ScheduleManager]) -> ScheduleManager:
    return make_manager(daily_limits=LIMITS, channel="ch1")


def test_reconcile_refuses_to_mark_gone_when_none_is_found(
    ch_mgr: ScheduleManager,
    video_file: Any,
    peek: RawDB,
    clock: FakeClock,
    processors: list,  # noqa: F811
) -> None:
    m = ch_mgr
    ids = [_book(m, video_file, f"Lesson {n}", OLD + timedelta(minutes=n)) for n in range(2)]
    p = UploadProcessor(m, StubUploader())
    processors.append(p)
    assert p.run_once().uploaded == 2
    wrong = MemoryVideoClient()  # another account's token: sees none of them
    clock.advance(minutes=5)

    report = m.reconcile(wrong, apply=True)

    assert report.warning is not None
    assert "another account" in report.warning
    assert [g.marked for g in report.gone] == [False, False]
    assert not report.clean
    for sid in ids:
        assert peek.row(sid)["video_state"] != "deleted"

    # With one of them found, the other's absence is believed and marked.
    right = MemoryVideoClient()
    right.add(peek.row(ids[0])["youtube_video_id"], title="Lesson 0", publish_at=OLD)
    report = m.reconcile(right, apply=True)
    assert report.warning is None
    assert [(g.schedule_id, g.marked) for g in report.gone] == [(ids[1], True)]
    assert peek.row(ids[1])["video_state"] == "deleted"
    assert_consistent(m)


def test_reconcile_matches_a_video_published_by_publish_at_on_its_upload_time(
    ch_mgr: ScheduleManager,
    video_file: Any,
    peek: RawDB,
    clock: FakeClock,
) -> None:
    """F4: FakeYouTube reports ``videoPublishedAt`` = when ``publishAt`` made the video public
    (4 h after the upload here), ``snippet.publishedAt`` = the upload time."""
    m = ch_mgr
    publish = clock() + timedelta(hours=4)
    lost = _book(m, video_file, "Lost", publish)
    _needs_review(m, peek, lost)
    with FakeYouTube(clock=clock) as fake:
        client = YouTubeUploader(
            Credentials(token="test"),
            api_endpoint=fake.api_endpoint,
            clock=clock,
            sleep=lambda _s: None,
        )
        with client:
            video = fake.add_channel_video("Lost", privacy_status="private", publish_at=publish)
            clock.advance(timedelta(hours=5))  # publishAt made it public an hour ago
            report = m.reconcile(client, apply=True)
    states = {v.video_id: v.state for v in report.unrecorded}
    assert states == {video.id: MatchState.ATTACHED}
    assert peek.row(lost)["youtube_video_id"] == video.id
    assert_consistent(m)
