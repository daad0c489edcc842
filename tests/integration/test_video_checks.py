"""Verification after upload and the publish confirmation, driven by real processor runs on
SQLite, PostgreSQL and MariaDB with the in-memory ``MemoryVideoClient``: every state and
transition, batching, quota in the ledger (recount matches), quota refusals deferring to the
reset, errors, and two processors checking at once never checking a video twice.

Every test that changes counters ends with ``recalculate_quota()`` reporting no correction.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from google.oauth2.credentials import Credentials
from sqlalchemy import text

from langflix_scheduler.db import timeline
from langflix_scheduler.domain import VideoState
from langflix_scheduler.errors import (
    AuthorizationError,
    QuotaExhaustedError,
    TransientUploadError,
)
from langflix_scheduler.manager import ScheduleManager
from langflix_scheduler.overview import PROBLEM_KINDS, attention
from langflix_scheduler.processor import (
    ProcessorEvent,
    ProcessorEventKind,
    RunOutcome,
    UploadProcessor,
)
from langflix_scheduler.processor import verify as verify_module
from langflix_scheduler.processor.verdict import CHECK_BACKOFF, PROBLEM_RECHECK, PUBLISH_GRACE
from langflix_scheduler.quota import QuotaPolicy, next_quota_reset
from langflix_scheduler.testing import FakeYouTube, MemoryVideoClient
from langflix_scheduler.testing.clock import FakeClock
from langflix_scheduler.youtube.google import YouTubeUploader
from langflix_scheduler.youtube.uploader import (
    ProgressCallback,
    StepCallback,
    UploadRequest,
    UploadResult,
)
from langflix_scheduler.youtube.videos import RemoteVideo

from ..conftest import T0
from ._processor_support import StubUploader, assert_consistent, default_upload, schedule_many
from .db_helpers import RawDB

pytestmark = pytest.mark.timeout(120)

PUBLISH = T0 + timedelta(hours=3)
UPLOAD_AT = T0 + timedelta(hours=2)
#: Schedules publish a minute apart from PUBLISH on; with this lead time all of them are due at
#: UPLOAD_AT, and all publish times are far enough ahead for publishAt to be sent.
LEAD = timedelta(hours=3)
LIMITS = {"final": 200, "short": 200}
MY_KINDS = {s.value for s in VideoState}


def _policy(shared: int = 10_000) -> QuotaPolicy:
    default = QuotaPolicy.default()
    return QuotaPolicy(
        name="test",
        buckets={**default.buckets, "uploads": 1_000, "shared": shared},
        costs=default.costs,
    )


@pytest.fixture
def mgr(make_manager: Callable[..., ScheduleManager]) -> ScheduleManager:
    return make_manager(daily_limits=LIMITS, quota_policy=_policy())


@pytest.fixture
def memory() -> MemoryVideoClient:
    return MemoryVideoClient()


def onto(memory: MemoryVideoClient) -> StubUploader:
    """An uploader whose videos land in ``memory``, processing, private with publishAt."""

    def script(
        stub: StubUploader,
        request: UploadRequest,
        progress: ProgressCallback,
        on_step: StepCallback,
    ) -> UploadResult:
        result = default_upload(stub, request, progress, on_step)
        memory.add(
            result.video_id,
            upload_status="uploaded",
            processing_status="processing",
            privacy_status="private",
            publish_at=result.publish_at,
        )
        return result

    return StubUploader(script)


@pytest.fixture
def make_processor(memory: MemoryVideoClient) -> Iterator[Callable[..., UploadProcessor]]:
    made: list[UploadProcessor] = []

    def factory(manager: ScheduleManager, **kwargs: Any) -> UploadProcessor:
        kwargs.setdefault("videos", memory)
        kwargs.setdefault("max_concurrent_uploads", 4)
        kwargs.setdefault("upload_lead_time", LEAD)
        processor = UploadProcessor(manager, onto(memory), **kwargs)
        made.append(processor)
        return processor

    yield factory
    for p in made:
        p.close()


def uploaded(
    mgr: ScheduleManager, processor: UploadProcessor, video_file: Any, clock: FakeClock, n: int
) -> list[int]:
    """Book ``n`` videos publishing a minute apart from PUBLISH on and upload them (clock at
    UPLOAD_AT)."""
    ids = schedule_many(mgr, video_file, n, start=PUBLISH, channel="ch1")
    clock.set(UPLOAD_AT)
    report = processor.run_once()
    assert report.uploaded == n
    assert report.verified == 0  # first checks are a minute away
    return ids


def video_lists(raw: RawDB) -> list[tuple[Any, ...]]:
    with raw.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text(
                    "SELECT bucket, cost, channel_id, outcome FROM youtube_api_calls"
                    " WHERE operation = 'videos.list' ORDER BY id"
                )
            )
        ]


def kinds_of(mgr: ScheduleManager, sid: int) -> list[str]:
    entries = mgr.database.run_core(
        "read timeline", lambda c: timeline.entries_of(c, sid), read_only=True
    )
    return [e.kind for e in entries if e.kind in MY_KINDS]


def vid(peek: RawDB, sid: int) -> str:
    video_id = peek.row(sid)["youtube_video_id"]
    assert isinstance(video_id, str)
    return video_id


# -- the planned path ---------------------------------------------------------------------------


def test_uploaded_processing_ready_published(
    mgr: ScheduleManager,
    make_processor: Any,
    memory: MemoryVideoClient,
    video_file: Any,
    peek: RawDB,
    clock: FakeClock,
) -> None:
    events: list[ProcessorEvent] = []
    processor = make_processor(mgr, on_event=events.append)
    (sid,) = uploaded(mgr, processor, video_file, clock, 1)
    row = peek.row(sid)
    assert (row["video_state"], row["check_count"], row["checked_at"]) == ("uploaded", 0, None)
    assert row["next_check_at"] == UPLOAD_AT + CHECK_BACKOFF[0]
    assert kinds_of(mgr, sid) == ["uploaded"]
    events.clear()

    clock.advance(CHECK_BACKOFF[0])
    report = processor.run_once()
    assert (report.verified, report.claimed, report.outcome) == (1, 0, RunOutcome.OK)
    row = peek.row(sid)
    assert (row["video_state"], row["check_count"]) == ("processing", 1)
    assert row["next_check_at"] == clock() + CHECK_BACKOFF[1]
    assert row["checked_at"] == clock()
    assert [e.kind for e in events] == [ProcessorEventKind.PROCESSING]

    clock.advance(minutes=1)  # not due yet
    assert processor.run_once().verified == 0
    clock.advance(minutes=1)
    assert processor.run_once().verified == 1  # still processing: no event, no entry
    assert peek.row(sid)["next_check_at"] == clock() + CHECK_BACKOFF[2]
    assert len(events) == 1

    memory.set(vid(peek, sid), upload_status="processed", processing_status="succeeded")
    clock.advance(CHECK_BACKOFF[2])
    assert processor.run_once().verified == 1
    row = peek.row(sid)
    assert row["video_state"] == "ready"
    assert (row["youtube_privacy"], row["youtube_publish_at"]) == ("private", PUBLISH)
    assert row["next_check_at"] == PUBLISH + PUBLISH_GRACE  # the publish confirmation
    assert row["video_problem"] is None

    clock.set(PUBLISH)
    assert processor.run_once().verified == 0  # nothing until the confirmation
    memory.set(vid(peek, sid), privacy_status="public", publish_at=None)
    clock.set(PUBLISH + PUBLISH_GRACE)
    assert processor.run_once().verified == 1
    row = peek.row(sid)
    assert (row["video_state"], row["youtube_privacy"], row["next_check_at"]) == (
        "published",
        "public",
        None,
    )
    assert [e.kind for e in events] == [
        ProcessorEventKind.PROCESSING,
        ProcessorEventKind.READY,
        ProcessorEventKind.PUBLISHED,
    ]
    assert all(e.video_id == vid(peek, sid) and e.schedule_id == sid for e in events)
    assert kinds_of(mgr, sid) == ["uploaded", "processing", "ready", "published"]
    clock.advance(days=2)
    assert processor.run_once().verified == 0  # published is final
    assert video_lists(peek) == [("shared", 1, "ch1", "sent")] * 4
    assert peek.row(sid)["check_count"] == 4
    shown = mgr.get(sid, channel="ch1")
    assert shown.video_state is VideoState.PUBLISHED
    assert_consistent(mgr)


# -- problems -----------------------------------------------------------------------------------

PROBLEMS: dict[str, tuple[dict[str, Any] | None, VideoState, str]] = {
    "rejected": (
        {"upload_status": "rejected", "failure_reason": "duplicate"},
        VideoState.REJECTED,
        "duplicate",
    ),
    "processing_failed": (
        {
            "upload_status": "failed",
            "processing_status": "failed",
            "failure_reason": "uploadAborted",
        },
        VideoState.PROCESSING_FAILED,
        "uploadAborted",
    ),
    # Absent: not final at once (tests/integration/test_video_absence.py takes it further).
    "missing": (None, VideoState.MISSING, "another account"),
    "mismatch": (
        {
            "upload_status": "processed",
            "processing_status": "succeeded",
            "publish_at": PUBLISH + timedelta(days=1),
        },
        VideoState.MISMATCH,
        "planned privacy private",
    ),
    "processed": (
        {"upload_status": "processed", "processing_status": "succeeded"},
        VideoState.READY,
        "",
    ),
}


def test_problem_states_are_recorded_and_shown(
    mgr: ScheduleManager,
    make_processor: Any,
    memory: MemoryVideoClient,
    video_file: Any,
    peek: RawDB,
    clock: FakeClock,
) -> None:
    events: list[ProcessorEvent] = []
    processor = make_processor(mgr, on_event=events.append)
    ids = dict(
        zip(PROBLEMS, uploaded(mgr, processor, video_file, clock, len(PROBLEMS)), strict=True)
    )
    for name, (change, _, _) in PROBLEMS.items():
        if change is None:
            memory.remove(vid(peek, ids[name]))
        else:
            memory.set(vid(peek, ids[name]), **change)
    clock.advance(CHECK_BACKOFF[0])
    events.clear()
    assert processor.run_once().verified == len(PROBLEMS)
    assert memory.operations() == ["videos.list"]  # one call for all of them
    for name, (_, state, problem) in PROBLEMS.items():
        row = peek.row(ids[name])
        assert row["video_state"] == state.value, name
        assert problem in (row["video_problem"] or ""), name
        assert (row["next_check_at"] is None) is state.is_final, name
        assert kinds_of(mgr, ids[name]) == ["uploaded", state.value]
    by_id = {e.schedule_id: e for e in events}
    assert {by_id[ids[n]].kind.value for n in PROBLEMS} == {
        s.value for _, s, _ in PROBLEMS.values()
    }
    assert by_id[ids["rejected"]].error is not None

    # The "processed" one is ready; its publish time passes and it stays private: held back.
    clock.set(PUBLISH + timedelta(minutes=len(PROBLEMS)) + PUBLISH_GRACE)
    events.clear()
    # The mismatch is looked at again at its publish confirmation too (still a mismatch); the
    # missing video is looked at again (still absent: still missing, no event).
    assert processor.run_once().verified == 3
    assert peek.row(ids["missing"])["video_state"] == "missing"
    assert peek.row(ids["mismatch"])["video_state"] == "mismatch"
    held = peek.row(ids["processed"])
    assert held["video_state"] == "held_private"
    assert held["next_check_at"] == clock() + PROBLEM_RECHECK
    assert "YouTube Studio" in held["video_problem"]
    assert [e.kind for e in events] == [ProcessorEventKind.HELD_PRIVATE]

    att = attention(mgr)
    shown = {kind: [s.id for s in group] for kind in PROBLEM_KINDS if (group := getattr(att, kind))}
    assert shown.get("rejected") == [ids["rejected"]]
    assert shown.get("processing_failed") == [ids["processing_failed"]]
    assert shown.get("missing") == [ids["missing"]]
    assert shown.get("mismatch") == [ids["mismatch"]]
    assert shown.get("held_private") == [ids["processed"]]

    # Someone fixes the mismatch in Studio; the recheck sees the video published / ready.
    memory.set(vid(peek, ids["processed"]), privacy_status="public", publish_at=None)
    memory.set(vid(peek, ids["mismatch"]), privacy_status="public", publish_at=None)
    clock.advance(PROBLEM_RECHECK)
    events.clear()
    assert processor.run_once().verified == 3  # and the missing one again
    assert peek.row(ids["processed"])["video_state"] == "published"
    assert peek.row(ids["mismatch"])["video_state"] == "published"
    assert peek.row(ids["mismatch"])["video_problem"] is None
    assert {e.kind for e in events} == {ProcessorEventKind.PUBLISHED}
    assert_consistent(mgr)


# -- batching and the quota ledger ---------------------------------------------------------------


def test_120_videos_take_3_calls_counted_in_the_ledger(
    mgr: ScheduleManager,
    make_processor: Any,
    memory: MemoryVideoClient,
    video_file: Any,
    peek: RawDB,
    clock: FakeClock,
) -> None:
    processor = make_processor(mgr, max_concurrent_uploads=8)
    ids = uploaded(mgr, processor, video_file, clock, 120)
    used_before = {k: v for k, v in peek.quota_by_day().items() if k[1] == "shared"}
    clock.advance(CHECK_BACKOFF[0])
    report = processor.run_once()
    assert report.verified == 120
    calls = [c for c in memory.calls if c.operation == "videos.list"]
    assert sorted(len(c.argument) for c in calls) == [20, 50, 50]  # type: ignore[arg-type]
    assert Counter(v for c in calls for v in c.argument) == Counter(  # type: ignore[attr-defined]
        {vid(peek, i): 1 for i in ids}
    )
    assert video_lists(peek) == [("shared", 1, "ch1", "sent")] * 3
    shared = {k: v for k, v in peek.quota_by_day().items() if k[1] == "shared"}
    assert sum(v[1] for v in shared.values()) - sum(v[1] for v in used_before.values()) == 3
    assert peek.statuses(ids) == {"completed": 120}
    assert {peek.row(i)["video_state"] for i in ids} == {"processing"}
    assert_consistent(mgr)


def test_quota_full_defers_every_check_to_the_reset(
    make_manager: Callable[..., ScheduleManager],
    make_processor: Any,
    video_file: Any,
    peek: RawDB,
    clock: FakeClock,
) -> None:
    mgr = make_manager(daily_limits=LIMITS, quota_policy=_policy(shared=1))
    processor = make_processor(mgr)
    ids = uploaded(mgr, processor, video_file, clock, 60)  # two calls needed, room for one
    clock.advance(CHECK_BACKOFF[0])
    report = processor.run_once()
    assert report.verified == 50
    assert report.outcome is RunOutcome.OK
    reset = next_quota_reset(clock())
    states = Counter(peek.row(i)["video_state"] for i in ids)
    assert states == {"processing": 50, "uploaded": 10}
    waiting = [i for i in ids if peek.row(i)["video_state"] == "uploaded"]
    assert {peek.row(i)["next_check_at"] for i in waiting} == {reset}
    assert len(video_lists(peek)) == 1  # the refused call was never written nor sent
    assert_consistent(mgr)

    # The processing ones come due again before the reset: deferred as well, nothing sent.
    clock.advance(CHECK_BACKOFF[1])
    assert processor.run_once().verified == 0
    assert {peek.row(i)["next_check_at"] for i in ids} == {reset}
    clock.set(reset)
    assert processor.run_once().verified == 1 * 50  # one call's room on the new day too
    assert len(video_lists(peek)) == 2
    assert_consistent(mgr)


def test_youtube_quota_exhausted_defers_to_its_reset(
    mgr: ScheduleManager,
    make_processor: Any,
    memory: MemoryVideoClient,
    video_file: Any,
    peek: RawDB,
    clock: FakeClock,
) -> None:
    processor = make_processor(mgr)
    ids = uploaded(mgr, processor, video_file, clock, 3)
    clock.advance(CHECK_BACKOFF[0])
    reset = next_quota_reset(clock())
    memory.fail_next("videos.list", QuotaExhaustedError("quota", resume_at=reset))
    report = processor.run_once()
    assert (report.verified, report.outcome) == (0, RunOutcome.OK)
    assert {peek.row(i)["next_check_at"] for i in ids} == {reset}
    assert {peek.row(i)["video_state"] for i in ids} == {"uploaded"}
    assert {peek.row(i)["check_count"] for i in ids} == {0}
    assert len(video_lists(peek)) == 1  # it was sent: YouTube counts it
    assert_consistent(mgr)


def test_transient_error_backs_off_and_authorization_stops(
    mgr: ScheduleManager,
    make_processor: Any,
    memory: MemoryVideoClient,
    video_file: Any,
    peek: RawDB,
    clock: FakeClock,
) -> None:
    processor = make_processor(mgr)
    ids = uploaded(mgr, processor, video_file, clock, 2)
    clock.advance(CHECK_BACKOFF[0])
    due = peek.row(ids[0])["next_check_at"]
    memory.fail_next("videos.list", TransientUploadError("503 backend error"))
    assert processor.run_once().verified == 0
    assert {peek.row(i)["next_check_at"] for i in ids} == {clock() + timedelta(minutes=5)}

    clock.advance(minutes=5)
    memory.fail_next("videos.list", AuthorizationError("token revoked"))
    report = processor.run_once()
    assert (report.verified, report.outcome) == (0, RunOutcome.UNAUTHORIZED)
    assert {peek.row(i)["next_check_at"] for i in ids} == {clock()}  # given back, due
    assert {peek.row(i)["video_state"] for i in ids} == {"uploaded"}
    assert due is not None
    assert processor.run_once().verified == 2
    assert_consistent(mgr)


def test_no_video_client_no_checks(
    mgr: ScheduleManager, video_file: Any, peek: RawDB, clock: FakeClock
) -> None:
    memory = MemoryVideoClient()
    with UploadProcessor(mgr, onto(memory)) as processor:
        assert processor.videos is None
        (sid,) = uploaded(mgr, processor, video_file, clock, 1)
        clock.advance(hours=1)
        assert processor.run_once().verified == 0
    assert peek.row(sid)["video_state"] == "uploaded"
    assert memory.calls == []


# -- two processors at once ---------------------------------------------------------------------


class GatedVideos(MemoryVideoClient):
    """A MemoryVideoClient whose ``videos.list`` calls wait until two are in flight at once
    (or a timeout), so two processors really check at the same time."""

    def __init__(self) -> None:
        super().__init__()
        self.barrier = threading.Barrier(2, timeout=10)
        self.overlapped = threading.Event()

    def list_videos(self, video_ids: Any, *, on_call: Any = None) -> dict[str, RemoteVideo]:
        if not self.overlapped.is_set():
            try:
                self.barrier.wait()
                self.overlapped.set()
            except threading.BrokenBarrierError:
                pass
        return dict(super().list_videos(video_ids, on_call=on_call))


def test_two_processors_never_check_the_same_video(
    make_manager: Callable[..., ScheduleManager],
    video_file: Any,
    peek: RawDB,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(verify_module, "_CHECK_CLAIM", 20)
    gated = GatedVideos()
    first = make_manager(daily_limits=LIMITS, quota_policy=_policy())
    second = make_manager(daily_limits=LIMITS, quota_policy=_policy())  # its own connections
    a = UploadProcessor(
        first, onto(gated), videos=gated, max_concurrent_uploads=8, upload_lead_time=LEAD
    )
    b = UploadProcessor(second, onto(gated), videos=gated, upload_lead_time=LEAD)
    try:
        ids = uploaded(first, a, video_file, clock, 100)
        clock.advance(CHECK_BACKOFF[0])
        reports: dict[str, Any] = {}
        threads = [
            threading.Thread(target=lambda p=p, n=n: reports.__setitem__(n, p.run_once()))
            for p, n in ((a, "a"), (b, "b"))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert gated.overlapped.is_set()  # both were inside videos.list at the same moment
        assert reports["a"].verified > 0
        assert reports["b"].verified > 0
        assert reports["a"].verified + reports["b"].verified == 100
        listed = Counter(v for c in gated.calls for v in c.argument)  # type: ignore[attr-defined]
        assert listed == Counter({vid(peek, i): 1 for i in ids})
        assert {peek.row(i)["check_count"] for i in ids} == {1}
        assert len(video_lists(peek)) == len(gated.calls)
        assert_consistent(first)
    finally:
        a.close()
        b.close()


def test_uploads_recorded_before_the_migration_are_checked(
    mgr: ScheduleManager,
    make_processor: Any,
    memory: MemoryVideoClient,
    video_file: Any,
    peek: RawDB,
    clock: FakeClock,
) -> None:
    processor = make_processor(mgr)
    old, new = uploaded(mgr, processor, video_file, clock, 2)
    # What migration 0006 leaves on an upload completed before it: uploaded, no check time.
    peek.execute("UPDATE youtube_schedules SET next_check_at = NULL WHERE id = :i", i=old)
    memory.set(vid(peek, old), upload_status="processed", processing_status="succeeded")
    report = processor.run_once()
    assert report.verified == 1  # the other one is not due for a minute
    row = peek.row(old)
    assert (row["video_state"], row["next_check_at"]) == (
        "ready",
        row["scheduled_publish_time"] + PUBLISH_GRACE,
    )
    assert peek.row(new)["video_state"] == "uploaded"


# -- the real google client against FakeYouTube ---------------------------------------------------


@pytest.mark.parametrize("locked", [False, True], ids=["public", "locked-private"])
def test_real_client_on_the_fake_clock(
    mgr: ScheduleManager, video_file: Any, peek: RawDB, clock: FakeClock, locked: bool
) -> None:
    """uploaded -> processing -> ready -> published with YouTubeUploader against FakeYouTube
    (processing takes 10 minutes and publishAt turns the video public, on the fake's clock); a
    locked-private project instead drops publishAt (mismatch) and keeps the video private after
    the publish time (held_private)."""
    processing = timedelta(minutes=10)
    events: list[ProcessorEvent] = []
    with FakeYouTube(clock=clock, processing_time=processing, locked_private=locked) as fake:
        uploader = YouTubeUploader(
            Credentials(token="test"), api_endpoint=fake.api_endpoint, clock=clock
        )
        with UploadProcessor(mgr, uploader, on_event=events.append) as processor:
            assert processor.videos is uploader
            (sid,) = schedule_many(mgr, video_file, 1, start=PUBLISH, channel="ch1")
            clock.set(UPLOAD_AT)
            assert processor.run_once().uploaded == 1
            video_id = vid(peek, sid)
            states = []
            for wait in (CHECK_BACKOFF[0], CHECK_BACKOFF[1], CHECK_BACKOFF[2], CHECK_BACKOFF[3]):
                clock.advance(wait)
                assert processor.run_once().verified == 1
                states.append(peek.row(sid)["video_state"])
            ready = "mismatch" if locked else "ready"
            # Checked at 1, 3 and 8 minutes (processing), then at 18 (processed).
            assert states == ["processing", "processing", "processing", ready]
            row = peek.row(sid)
            assert row["next_check_at"] == PUBLISH + PUBLISH_GRACE
            clock.set(PUBLISH + PUBLISH_GRACE)
            assert processor.run_once().verified == 1
            uploader.close()
    row = peek.row(sid)
    final = "held_private" if locked else "published"
    assert row["video_state"] == final
    expected_events = ["processing", ready, final]
    checks = [e.kind.value for e in events if e.kind.value in MY_KINDS - {"uploaded"}]
    assert checks == expected_events
    assert kinds_of(mgr, sid) == ["uploaded", *expected_events]
    if locked:
        assert "locked private" in row["video_problem"]
        assert row["next_check_at"] == clock() + PROBLEM_RECHECK
    else:
        assert (row["youtube_privacy"], row["video_problem"], row["next_check_at"]) == (
            "public",
            None,
            None,
        )
    # Every videos.list the fake answered is in the ledger, 1 unit each, and the recount agrees.
    assert fake.calls_of("videos.list") == 5
    assert video_lists(peek) == [("shared", 1, "ch1", "sent")] * 5
    assert video_id in fake.videos
    assert_consistent(mgr)


def test_a_paused_channel_is_not_checked_until_resumed(
    mgr: ScheduleManager,
    make_processor: Any,
    memory: MemoryVideoClient,
    video_file: Any,
    peek: RawDB,
    clock: FakeClock,
) -> None:
    processor = make_processor(mgr)
    (sid,) = uploaded(mgr, processor, video_file, clock, 1)
    peek.execute(
        "UPDATE youtube_upload_channels SET paused_at = :t, pause_reason = 'invalid_grant'"
        " WHERE channel_id = 'ch1'",
        t=clock(),
    )
    clock.advance(CHECK_BACKOFF[0])
    assert processor.run_once().verified == 0
    assert memory.calls == []
    mgr.resume_channel("ch1")
    assert processor.run_once().verified == 1
    assert peek.row(sid)["video_state"] == "processing"


def test_real_client_records_rejection_failed_processing_and_deletion(
    mgr: ScheduleManager, video_file: Any, peek: RawDB, clock: FakeClock
) -> None:
    """The problem states with YouTubeUploader against FakeYouTube: a rejected upload, a
    failed processing, and a video deleted behind the library's back (missing, then deleted
    after three absent answers over more than an hour); every videos.list in the ledger."""
    titles = ("rejected one", "failing one", "deleted one")
    with FakeYouTube(clock=clock) as fake:
        fake.reject_uploads(title=titles[0], reason="duplicate")
        fake.fail_processing(title=titles[1], reason="codec")
        uploader = YouTubeUploader(
            Credentials(token="test"), api_endpoint=fake.api_endpoint, clock=clock
        )
        ids = [
            mgr.schedule_video(
                video_file(),
                "short",
                metadata={"title": title},
                preferred_time=PUBLISH + n * timedelta(minutes=1),
                channel="ch1",
            ).id
            for n, title in enumerate(titles)
        ]
        with UploadProcessor(
            mgr,
            uploader,
            channels=["ch1"],
            max_concurrent_uploads=3,
            per_channel_limit=3,
            upload_lead_time=LEAD,
        ) as processor:
            clock.set(UPLOAD_AT)
            assert processor.run_once().uploaded == 3
            rejected, failing, deleted = ids
            fake.remove_video(vid(peek, deleted))
            clock.advance(CHECK_BACKOFF[0])
            assert processor.run_once().verified == 3
            states = {sid: peek.row(sid)["video_state"] for sid in ids}
            assert states == {
                rejected: "rejected",
                failing: "processing_failed",
                deleted: "missing",
            }
            assert "duplicate" in peek.row(rejected)["video_problem"]
            assert "codec" in peek.row(failing)["video_problem"]
            for wait in (timedelta(minutes=10), timedelta(hours=1)):
                clock.advance(wait)
                assert processor.run_once().verified == 1  # only the missing one is checked
            uploader.close()
    assert peek.row(deleted)["video_state"] == "deleted"
    assert peek.row(deleted)["next_check_at"] is None
    assert kinds_of(mgr, deleted) == ["uploaded", "missing", "deleted"]  # one entry a change
    assert fake.calls_of("videos.list") == 3
    assert video_lists(peek) == [("shared", 1, "ch1", "sent")] * 3
    assert_consistent(mgr)
