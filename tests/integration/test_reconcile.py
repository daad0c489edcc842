"""``ScheduleManager.reconcile`` with a ``MemoryVideoClient`` (issue 12, item 4), every engine.

Schedules are made the way the processor leaves them (uploads by a stub uploader, a permanent
failure), except ``needs_review``, set directly: its counters are the same as ``scheduled``'s
(slot and reservation kept), so the recount stays exact.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from google.oauth2.credentials import Credentials

from langflix_scheduler.db.timeline import entries_of
from langflix_scheduler.errors import PermanentUploadError, QuotaExceededError
from langflix_scheduler.manager import ScheduleManager
from langflix_scheduler.processor import UploadProcessor
from langflix_scheduler.reconcile import MatchState, ReconcileProgress
from langflix_scheduler.testing import FakeYouTube
from langflix_scheduler.testing.clock import FakeClock
from langflix_scheduler.testing.memory_videos import MemoryVideoClient
from langflix_scheduler.youtube.google import YouTubeUploader
from langflix_scheduler.youtube.uploader import ApiCallReport, CallPhase

from ..conftest import T0
from ._processor_support import StubUploader, assert_consistent, schedule_many
from .db_helpers import RawDB

SOON = T0 + timedelta(minutes=20)
LIMITS = {"final": 30, "short": 30}
CH = "ch1"


@pytest.fixture
def mgr(make_manager: Callable[..., ScheduleManager]) -> ScheduleManager:
    return make_manager(daily_limits=LIMITS, channel=CH)


@pytest.fixture
def processors(mgr: ScheduleManager) -> Iterator[Callable[[Any], UploadProcessor]]:
    made: list[UploadProcessor] = []

    def factory(uploader: Any) -> UploadProcessor:
        p = UploadProcessor(mgr, uploader, progress_interval=timedelta(0))
        made.append(p)
        return p

    yield factory
    for p in made:
        p.close()


def _book(mgr: ScheduleManager, video_file: Any, title: str, at: Any = SOON) -> int:
    (sid,) = schedule_many(mgr, video_file, 1, start=at, channel=CH, metadata={"title": title})
    return sid


def _needs_review(mgr: ScheduleManager, peek: RawDB, sid: int) -> None:
    """An attempt that sent ``videos.insert`` and could not learn the outcome."""
    mgr.record_api_call(
        ApiCallReport(operation="videos.insert", phase=CallPhase.SENDING, call_id=0),
        channel=CH,
        schedule_id=sid,
    )
    peek.execute("UPDATE youtube_schedules SET upload_status = 'needs_review' WHERE id = :i", i=sid)


def _shared_used(mgr: ScheduleManager) -> int:
    return sum(int(c[1]) for c in _calls(mgr) if c[0] != "videos.insert")


def _calls(mgr: ScheduleManager) -> list[Any]:
    with mgr.database.connection("read") as conn:
        return list(conn.exec_driver_sql("SELECT operation, cost FROM youtube_api_calls").all())


def test_reconcile_reports_then_apply_attaches_and_marks(
    mgr: ScheduleManager,
    processors: Any,
    video_file: Any,
    peek: RawDB,
    clock: FakeClock,
) -> None:
    kept = _book(mgr, video_file, "Lesson 2", SOON + timedelta(minutes=1))
    gone = _book(mgr, video_file, "Lesson 3", SOON + timedelta(minutes=2))
    assert processors(StubUploader()).run_once().uploaded == 2
    kept_vid, gone_vid = peek.row(kept)["youtube_video_id"], peek.row(gone)["youtube_video_id"]
    # Schedule `lost` uploaded but its outcome was never recorded (slot and quota kept).
    lost = _book(mgr, video_file, "Lesson 1")
    _needs_review(mgr, peek, lost)
    assert peek.row(lost)["reserved_quota"] == {"uploads": 1}
    yt = MemoryVideoClient()
    yt.add(kept_vid, title="Lesson 2", publish_at=SOON + timedelta(minutes=1), uploaded_at=T0)
    yt.add("vidLOST", title="Lesson 1", publish_at=SOON, uploaded_at=T0 + timedelta(minutes=3))
    yt.add("studio1", title="made in Studio", uploaded_at=T0 - timedelta(days=30))
    clock.advance(minutes=5)
    progress: list[ReconcileProgress] = []

    report = mgr.reconcile(yt, on_progress=progress.append)

    assert (report.uploads_listed, report.videos_checked, report.api_calls) == (3, 2, 3)
    assert yt.operations() == ["channels.list", "playlistItems.list", "videos.list"]
    found = {v.video_id: v for v in report.unrecorded}
    assert found["vidLOST"].state is MatchState.MATCHED
    assert found["vidLOST"].schedule_id == lost
    assert found["studio1"].state is MatchState.UNMATCHED
    assert [(g.schedule_id, g.video_id, g.marked) for g in report.gone] == [(gone, gone_vid, False)]
    assert report.differences == ()
    assert report.unfixed == 2
    assert progress[-1] == ReconcileProgress(phase="videos", done=2, total=2)
    assert peek.row(lost)["upload_status"] == "needs_review"  # nothing applied

    applied = mgr.reconcile(yt, apply=True)

    assert {v.video_id: v.state for v in applied.unrecorded}["vidLOST"] is MatchState.ATTACHED
    assert [g.marked for g in applied.gone] == [True]
    assert applied.unfixed == 0
    row = peek.row(lost)
    assert (row["upload_status"], row["youtube_video_id"], row["video_state"]) == (
        "completed",
        "vidLOST",
        "uploaded",
    )
    assert row["next_check_at"] == clock()
    assert row["reserved_quota"] == {}
    assert row["consumed_quota"] == {"uploads": 1}  # the lost attempt's insert, from the ledger
    assert (peek.row(gone)["video_state"], peek.row(gone)["upload_status"]) == (
        "deleted",
        "completed",
    )
    with mgr.database.connection("read") as conn:
        assert [e.kind for e in entries_of(conn, lost)][-1] == "reconciled"
        assert [e.kind for e in entries_of(conn, gone)][-1] == "reconciled"
    # Every listing call is in the ledger, and the counters match the recount.
    assert _shared_used(mgr) == 6
    assert_consistent(mgr)
    again = mgr.reconcile(yt, apply=True)
    assert again.unfixed == 0
    assert [v.video_id for v in again.unrecorded] == ["studio1"]


def test_ambiguous_matches_are_reported_and_left_alone(
    mgr: ScheduleManager, video_file: Any, peek: RawDB, clock: FakeClock
) -> None:
    twins = [_book(mgr, video_file, "Same", SOON + timedelta(minutes=i)) for i in range(2)]
    single = _book(mgr, video_file, "Once", SOON + timedelta(minutes=5))
    for sid in [*twins, single]:
        _needs_review(mgr, peek, sid)
    yt = MemoryVideoClient()
    yt.add("v-same", title="Same", uploaded_at=T0 + timedelta(minutes=1))
    yt.add("v-once-1", title="Once", uploaded_at=T0 + timedelta(minutes=1))
    yt.add("v-once-2", title="Once", uploaded_at=T0 + timedelta(minutes=2))

    report = mgr.reconcile(yt, apply=True)

    states = {v.video_id: (v.state, v.candidates) for v in report.unrecorded}
    assert states == {
        "v-same": (MatchState.AMBIGUOUS, tuple(twins)),
        "v-once-1": (MatchState.AMBIGUOUS, (single,)),
        "v-once-2": (MatchState.AMBIGUOUS, (single,)),
    }
    assert report.unfixed == 3
    assert peek.statuses([*twins, single]) == {"needs_review": 3}
    assert all(peek.row(s)["youtube_video_id"] is None for s in [*twins, single])
    assert_consistent(mgr)


def test_a_failed_schedule_takes_its_slot_back_unless_it_was_booked_again(
    mgr: ScheduleManager, processors: Any, video_file: Any, peek: RawDB, clock: FakeClock
) -> None:
    back = _book(mgr, video_file, "Back")
    taken = _book(mgr, video_file, "Taken", SOON + timedelta(minutes=1))

    def refuse(*_a: Any) -> Any:
        raise PermanentUploadError("answer lost, then refused", reason="invalidTitle")

    processors(StubUploader(refuse)).run_once()
    assert peek.statuses([back, taken]) == {"failed": 2}
    slot = peek.row(taken)["scheduled_publish_time"]
    rebooked = mgr.schedule_video(video_file(), "short", preferred_time=slot, channel=CH)
    yt = MemoryVideoClient()
    yt.add("v-back", title="Back", uploaded_at=T0)
    yt.add("v-taken", title="Taken", uploaded_at=T0)

    report = mgr.reconcile(yt, apply=True)

    states = {v.video_id: v for v in report.unrecorded}
    assert states["v-back"].state is MatchState.ATTACHED
    assert states["v-taken"].state is MatchState.REFUSED
    assert "booked again" in (states["v-taken"].note or "")
    row = peek.row(back)
    assert (row["upload_status"], row["slot_key"]) == ("completed", row["scheduled_publish_time"])
    assert peek.row(taken)["upload_status"] == "failed"
    assert peek.row(rebooked.id)["upload_status"] == "scheduled"
    assert_consistent(mgr)


def test_differences_of_privacy_and_publish_time(
    mgr: ScheduleManager, processors: Any, video_file: Any, peek: RawDB, clock: FakeClock
) -> None:
    a = _book(mgr, video_file, "A")
    b = _book(mgr, video_file, "B", SOON + timedelta(minutes=1))
    processors(StubUploader()).run_once()
    va, vb = peek.row(a)["youtube_video_id"], peek.row(b)["youtube_video_id"]
    yt = MemoryVideoClient()
    yt.add(va, title="A", publish_at=SOON + timedelta(hours=1))  # moved in Studio
    yt.add(vb, title="B", privacy_status="public")  # published early

    report = mgr.reconcile(yt, apply=True)

    found = {(d.schedule_id, d.field): (d.planned, d.on_youtube) for d in report.differences}
    assert found == {
        (a, "publish_at"): (SOON.isoformat(), (SOON + timedelta(hours=1)).isoformat()),
        (b, "privacy"): ("private", "public"),
        (b, "publish_at"): ((SOON + timedelta(minutes=1)).isoformat(), "-"),
    }
    assert report.unfixed == 3
    # After the publish time, the plan is public: a video still private is a difference.
    clock.advance(hours=2)
    later = mgr.reconcile(yt)
    assert {(d.schedule_id, d.field) for d in later.differences} == {(a, "privacy")}


def test_listing_pages_are_counted_and_refused_without_room(
    make_manager: Callable[..., ScheduleManager], peek: RawDB
) -> None:
    mgr = make_manager(daily_limits=LIMITS, channel=CH)
    yt = MemoryVideoClient()
    for i in range(120):
        yt.add(f"old{i}", title=f"old {i}", uploaded_at=T0 - timedelta(days=1))
    report = mgr.reconcile(yt)
    assert report.uploads_listed == 120
    assert report.api_calls == 4  # channels.list + 3 pages of playlistItems.list
    assert _shared_used(mgr) == 4
    assert report.unfixed == 0  # videos made elsewhere are reported, not counted
    assert_consistent(mgr)

    policy = mgr.config.quota_policy
    tight = make_manager(
        daily_limits=LIMITS,
        channel=CH,
        quota_policy=dataclasses.replace(policy, buckets={**policy.buckets, "shared": 4}),
    )
    before = len(yt.calls)
    with pytest.raises(QuotaExceededError):
        tight.reconcile(yt)
    assert len(yt.calls) == before  # the call that did not fit was not sent
    assert_consistent(mgr)


def test_reconcile_with_the_real_client_against_fake_youtube(
    mgr: ScheduleManager, processors: Any, video_file: Any, peek: RawDB, clock: FakeClock
) -> None:
    with FakeYouTube(clock=clock) as fake:
        client = YouTubeUploader(
            Credentials(token="test"),
            api_endpoint=fake.api_endpoint,
            clock=clock,
            sleep=lambda _s: None,
        )
        with client:
            kept = _book(mgr, video_file, "Kept")
            gone = _book(mgr, video_file, "Gone", SOON + timedelta(minutes=1))
            assert processors(client).run_once().uploaded == 2
            lost = _book(mgr, video_file, "Lost", SOON + timedelta(minutes=2))
            _needs_review(mgr, peek, lost)
            found = fake.add_channel_video("Lost", privacy_status="private", publish_at=SOON)
            fake.add_channel_video("Made in Studio")
            fake.remove_video(peek.row(gone)["youtube_video_id"])
            clock.advance(minutes=1)

            report = mgr.reconcile(client, apply=True)

        states = {v.title: v.state for v in report.unrecorded}
        assert states == {"Lost": MatchState.ATTACHED, "Made in Studio": MatchState.UNMATCHED}
        assert [(g.schedule_id, g.marked) for g in report.gone] == [(gone, True)]
        assert report.differences == ()
        assert report.unfixed == 0
        assert peek.row(lost)["youtube_video_id"] == found.id
        assert peek.row(kept)["video_state"] in (None, "uploaded", "processing", "ready")
        assert peek.row(gone)["video_state"] == "deleted"
        # What YouTube charged for the listing is what the ledger holds.
        charged = fake.charged()
        listing = ("channels.list", "playlistItems.list", "videos.list")
        recorded = {op: 0 for op in listing}
        for op, cost in _calls(mgr):
            if op in recorded:
                recorded[op] += int(cost)
        assert recorded == {op: charged.get(op, 0) for op in listing}
        assert report.api_calls == 3  # channels.list, one page, one videos.list
        assert_consistent(mgr)
