"""UploadProcessor logic on SQLite, PostgreSQL and MariaDB, with a scripted uploader stub, and
end to end with the real ``YouTubeUploader`` against ``FakeYouTube`` (quota exhausted mid-run,
progress and heartbeats under faults). Multi-process tests: ``test_processor_processes.py``.

Every test that changes counters ends with ``recalculate_quota()`` reporting no correction.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from google.oauth2.credentials import Credentials

from langflix_scheduler.domain import UploadStatus
from langflix_scheduler.errors import (
    AuthorizationError,
    ConfigurationError,
    PermanentUploadError,
    QuotaExhaustedError,
    StorageError,
    TransientUploadError,
    UploadLimitExceededError,
)
from langflix_scheduler.manager import ScheduleManager
from langflix_scheduler.processor import (
    ProcessorEvent,
    ProcessorEventKind,
    RunOutcome,
    UploadProcessor,
)
from langflix_scheduler.quota import next_quota_reset, quota_date_of
from langflix_scheduler.testing import FakeYouTube
from langflix_scheduler.testing.clock import FakeClock
from langflix_scheduler.youtube.google import YouTubeUploader
from langflix_scheduler.youtube.uploader import (
    ProgressCallback,
    StepCallback,
    UploadRequest,
    UploadResult,
    UploadStep,
)

from ..conftest import T0
from ._processor_support import (
    WAIT,
    ProbingStubUploader,
    StubUploader,
    assert_consistent,
    default_upload,
    outcomes,
    schedule_many,
    wait_for,
)
from .db_helpers import RawDB

SOON = T0 + timedelta(minutes=20)  # due at once with the default 1 h upload lead time
LIMITS = {"final": 30, "short": 30}


@pytest.fixture
def mgr(make_manager: Callable[..., ScheduleManager]) -> ScheduleManager:
    return make_manager(daily_limits=LIMITS)


@pytest.fixture
def make_processor() -> Iterator[Callable[..., UploadProcessor]]:
    made: list[UploadProcessor] = []

    def factory(manager: ScheduleManager, uploader: Any, **kwargs: Any) -> UploadProcessor:
        kwargs.setdefault("retry_base", timedelta(seconds=10))
        kwargs.setdefault("progress_interval", timedelta(0))
        processor = UploadProcessor(manager, uploader, **kwargs)
        made.append(processor)
        return processor

    yield factory
    for p in made:
        p.close()


def _raise(exc: BaseException) -> Any:
    def script(*_args: Any) -> UploadResult:
        raise exc

    return script


# -- the happy path and quota accounting --------------------------------------------------------


def test_uploads_due_schedules_and_moves_quota_to_used(
    mgr: ScheduleManager, make_processor: Any, video_file: Any, peek: RawDB, clock: FakeClock
) -> None:
    due = schedule_many(mgr, video_file, 3, start=SOON)
    later = schedule_many(mgr, video_file, 1, start=T0 + timedelta(hours=5))
    stub = StubUploader()
    events: list[ProcessorEvent] = []
    report = make_processor(mgr, stub, on_event=outcomes(events)).run_once()

    assert (report.claimed, report.uploaded, report.failed, report.outcome) == (
        3,
        3,
        0,
        RunOutcome.OK,
    )
    assert not report.skipped
    assert sorted(e.schedule_id for e in events) == due
    assert {e.kind for e in events} == {ProcessorEventKind.UPLOADED}
    qday = quota_date_of(clock())
    for sid in due:
        row = peek.row(sid)
        assert row["upload_status"] == "completed"
        assert row["youtube_video_id"].startswith("vid-")
        assert row["uploaded_at"] == clock()
        assert row["reserved_quota"] == {}
        assert row["consumed_quota"] == {"uploads": 1}
        assert row["quota_date"] == qday
        assert row["lease_owner"] is None
        assert row["bytes_uploaded"] == row["bytes_total"] == 2048
    assert peek.row(later[0])["upload_status"] == "scheduled"
    assert peek.quota_by_day()[(qday, "uploads")] == (1, 3)
    runs = peek.runs()
    assert [(r["outcome"], r["claimed"], r["uploaded"], r["skipped_overlap"]) for r in runs] == [
        ("ok", 3, 3, 0)
    ]
    assert runs[0]["finished_at"] is not None
    assert_consistent(mgr)
    # Nothing left that is due: a second run claims nothing.
    assert make_processor(mgr, stub).run_once().claimed == 0


def test_used_quota_lands_on_the_day_the_upload_ran(
    mgr: ScheduleManager, make_processor: Any, video_file: Any, peek: RawDB, clock: FakeClock
) -> None:
    (sid,) = schedule_many(mgr, video_file, 1, start=T0 + timedelta(days=2))
    planned = peek.row(sid)["quota_date"]
    clock.advance(days=5)  # the processor was down: the upload runs days late
    report = make_processor(mgr, StubUploader()).run_once()
    assert report.uploaded == 1
    actual = quota_date_of(clock())
    assert actual != planned
    row = peek.row(sid)
    assert row["quota_date"] == actual
    quota = peek.quota_by_day()
    assert quota[(planned, "uploads")] == (0, 0)
    assert quota[(actual, "uploads")] == (0, 1)
    assert_consistent(mgr)


def test_follow_up_steps_are_recorded_and_consumed(
    mgr: ScheduleManager, make_processor: Any, video_file: Any, peek: RawDB, tmp_path: Path
) -> None:
    thumb = tmp_path / "t.jpg"
    thumb.write_bytes(b"\xff\xd8" + b"0" * 100)
    (sid,) = schedule_many(
        mgr,
        video_file,
        1,
        start=SOON,
        metadata={"title": "t", "thumbnail_path": str(thumb), "playlist_id": "PL1"},
    )
    assert make_processor(mgr, StubUploader()).run_once().uploaded == 1
    row = peek.row(sid)
    assert sorted(row["completed_steps"]) == ["playlistItems.insert", "thumbnails.set"]
    assert row["consumed_quota"] == {"shared": 100, "uploads": 1}
    assert_consistent(mgr)


def test_not_due_and_next_attempt_are_respected(
    mgr: ScheduleManager, make_processor: Any, video_file: Any, peek: RawDB, clock: FakeClock
) -> None:
    (sid,) = schedule_many(mgr, video_file, 1, start=T0 + timedelta(hours=3))
    stub = StubUploader()
    processor = make_processor(mgr, stub)
    assert processor.run_once().claimed == 0
    clock.advance(hours=2)  # publish - lead time reached
    assert processor.run_once().uploaded == 1
    assert peek.row(sid)["upload_status"] == "completed"


def test_channels_filter(
    mgr: ScheduleManager, make_processor: Any, video_file: Any, peek: RawDB
) -> None:
    a = schedule_many(mgr, video_file, 2, start=SOON, channel="a")
    b = schedule_many(mgr, video_file, 2, start=SOON, channel="b")
    report = make_processor(mgr, StubUploader(), channels=["b"]).run_once()
    assert report.uploaded == 2
    assert peek.statuses(a) == {"scheduled": 2}
    assert peek.statuses(b) == {"completed": 2}


# -- failures ----------------------------------------------------------------------------------


def test_transient_failures_back_off_then_fail(
    mgr: ScheduleManager, make_processor: Any, video_file: Any, peek: RawDB, clock: FakeClock
) -> None:
    (sid,) = schedule_many(mgr, video_file, 1, start=SOON)
    events: list[ProcessorEvent] = []
    processor = make_processor(
        mgr,
        StubUploader(_raise(TransientUploadError("HTTP 503", reason="backendError"))),
        max_attempts=3,
        on_event=outcomes(events),
    )
    report = processor.run_once()
    assert (report.retried, report.failed) == (1, 0)
    row = peek.row(sid)
    assert row["upload_status"] == "scheduled"
    assert row["attempts"] == 1
    assert "503" in row["last_error"]
    assert (
        clock() + timedelta(seconds=5) <= row["next_attempt_at"] <= clock() + timedelta(seconds=10)
    )
    assert processor.run_once().claimed == 0  # backing off

    clock.set(row["next_attempt_at"])
    assert processor.run_once().retried == 1
    row = peek.row(sid)
    assert row["attempts"] == 2
    # Exponential: the second delay is 10-20 s.
    assert (
        clock() + timedelta(seconds=10) <= row["next_attempt_at"] <= clock() + timedelta(seconds=20)
    )
    assert_consistent(mgr)

    clock.set(row["next_attempt_at"])
    report = processor.run_once()
    assert report.failed == 1
    row = peek.row(sid)
    assert (row["upload_status"], row["attempts"], row["slot_key"]) == ("failed", 3, None)
    assert "gave up after 3 attempts" in row["last_error"]
    assert row["reserved_quota"] == {}
    assert [e.kind for e in events] == [
        ProcessorEventKind.RETRIED,
        ProcessorEventKind.RETRIED,
        ProcessorEventKind.FAILED,
    ]
    assert peek.day_count_pairs()[("ch1", SOON.date())] == (0, 0)
    assert_consistent(mgr)


@pytest.mark.parametrize(
    "exc",
    [
        PermanentUploadError("YouTube answered HTTP 400 invalidTitle", reason="invalidTitle"),
        FileNotFoundError(2, "No such file or directory"),
    ],
    ids=["permanent", "oserror"],
)
def test_permanent_failure_frees_slot_count_and_quota(
    exc: BaseException,
    mgr: ScheduleManager,
    make_processor: Any,
    video_file: Any,
    peek: RawDB,
    clock: FakeClock,
) -> None:
    (sid,) = schedule_many(mgr, video_file, 1, start=SOON)
    report = make_processor(mgr, StubUploader(_raise(exc))).run_once()
    assert report.failed == 1
    row = peek.row(sid)
    assert row["upload_status"] == "failed"
    assert row["slot_key"] is None
    assert row["attempts"] == 1
    assert row["reserved_quota"] == {}
    assert ("invalidTitle" in row["last_error"]) or ("FileNotFoundError" in row["last_error"])
    assert peek.quota_by_day()[(quota_date_of(clock()), "uploads")] == (0, 0)
    assert peek.day_count_pairs()[("ch1", SOON.date())] == (0, 0)
    assert_consistent(mgr)
    # The slot is free again.
    again = mgr.schedule_video(video_file(), "short", preferred_time=SOON, channel="ch1")
    assert again.scheduled_publish_time == SOON
    assert_consistent(mgr)


def test_unexpected_uploader_exception_is_transient(
    mgr: ScheduleManager, make_processor: Any, video_file: Any, peek: RawDB
) -> None:
    (sid,) = schedule_many(mgr, video_file, 1, start=SOON)
    report = make_processor(mgr, StubUploader(_raise(RuntimeError("boom")))).run_once()
    assert report.retried == 1
    row = peek.row(sid)
    assert (row["upload_status"], row["attempts"]) == ("scheduled", 1)
    assert "RuntimeError: boom" in row["last_error"]


def test_no_byte_is_sent_into_a_session_whose_uri_could_not_be_stored(
    mgr: ScheduleManager,
    make_processor: Any,
    video_file: Any,
    peek: RawDB,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (sid,) = schedule_many(mgr, video_file, 1, start=SOON)
    sent: list[int] = []

    def script(
        stub: StubUploader, request: UploadRequest, progress: ProgressCallback, on_step: Any
    ) -> UploadResult:
        progress(0, 2048, "stub://unrecorded")  # raises: the URI could not be stored
        sent.append(2048)
        raise AssertionError("the upload must stop before sending bytes")

    processor = make_processor(mgr, StubUploader(script))
    real = processor._fenced_update

    def flaky(operation: str, attempt: Any, values: Any, *entry: Any) -> int:
        if operation == "record upload session":
            raise StorageError(operation, "database connection lost")
        return real(operation, attempt, values, *entry)

    monkeypatch.setattr(processor, "_fenced_update", flaky)
    report = processor.run_once()
    assert (report.retried, report.uploaded) == (1, 0)
    assert sent == []
    row = peek.row(sid)
    assert (row["upload_status"], row["attempts"], row["upload_session_uri"]) == (
        "scheduled",
        1,
        None,
    )
    assert "could not store the resumable session" in row["last_error"]
    assert_consistent(mgr)


def test_follow_up_failure_after_insert_never_fails_an_uploaded_video(
    mgr: ScheduleManager, make_processor: Any, video_file: Any, peek: RawDB, tmp_path: Path
) -> None:
    thumb = tmp_path / "t.jpg"
    thumb.write_bytes(b"\xff\xd8" + b"0" * 100)

    def script(
        stub: StubUploader, request: UploadRequest, progress: ProgressCallback, on_step: Any
    ) -> UploadResult:
        if request.video_id is None:
            progress(0, 10, "stub://s")
            on_step(UploadStep.INSERT, "vid-1")
        raise PermanentUploadError("thumbnail refused", reason="invalidImage")

    (sid,) = schedule_many(
        mgr, video_file, 1, start=SOON, metadata={"title": "t", "thumbnail_path": str(thumb)}
    )
    report = make_processor(mgr, StubUploader(script)).run_once()
    assert report.uploaded == 1
    row = peek.row(sid)
    assert row["upload_status"] == "completed"
    assert row["youtube_video_id"] == "vid-1"
    assert row["slot_key"] is not None
    assert "thumbnail refused" in row["last_error"]
    assert row["consumed_quota"] == {"uploads": 1}
    assert_consistent(mgr)


def test_transient_follow_up_failure_retries_only_the_follow_up(
    mgr: ScheduleManager, make_processor: Any, video_file: Any, peek: RawDB, clock: FakeClock
) -> None:
    calls: list[UploadRequest] = []

    def script(
        stub: StubUploader, request: UploadRequest, progress: ProgressCallback, on_step: Any
    ) -> UploadResult:
        calls.append(request)
        if len(calls) == 1:
            progress(0, 10, "stub://s")
            on_step(UploadStep.INSERT, "vid-1")
            raise TransientUploadError("playlist 503")
        return default_upload(stub, request, progress, on_step)

    (sid,) = schedule_many(
        mgr, video_file, 1, start=SOON, metadata={"title": "t", "playlist_id": "PL"}
    )
    processor = make_processor(mgr, StubUploader(script))
    assert processor.run_once().retried == 1
    assert peek.row(sid)["youtube_video_id"] == "vid-1"
    clock.advance(minutes=1)
    assert processor.run_once().uploaded == 1
    assert calls[1].video_id == "vid-1"  # the insert is never repeated
    row = peek.row(sid)
    assert row["completed_steps"] == ["playlistItems.insert"]
    assert row["consumed_quota"] == {"shared": 50, "uploads": 1}
    assert_consistent(mgr)


# -- deferrals ---------------------------------------------------------------------------------


def test_quota_exhausted_defers_the_project_to_next_pt_midnight(
    mgr: ScheduleManager, make_processor: Any, video_file: Any, peek: RawDB, clock: FakeClock
) -> None:
    due = schedule_many(mgr, video_file, 4, start=SOON)
    # Not yet due, but planned for the same quota day (17:00 PDT + 3 h < midnight PDT).
    later_today = schedule_many(mgr, video_file, 2, start=T0 + timedelta(hours=4))
    # Planned for a later quota day: untouched.
    tomorrow = schedule_many(mgr, video_file, 1, start=T0 + timedelta(days=1, hours=12))
    today = quota_date_of(clock())
    resume_at = next_quota_reset(clock())
    calls = {"n": 0}

    def script(stub: StubUploader, request: UploadRequest, *rest: Any) -> UploadResult:
        calls["n"] += 1
        raise QuotaExhaustedError("HTTP 403 quotaExceeded", resume_at=resume_at)

    events: list[ProcessorEvent] = []
    processor = make_processor(
        mgr, StubUploader(script), max_concurrent_uploads=1, on_event=outcomes(events)
    )
    report = processor.run_once()
    assert calls["n"] == 1
    assert (report.claimed, report.deferred, report.retried, report.failed) == (1, 6, 0, 0)
    assert {e.kind for e in events} == {ProcessorEventKind.DEFERRED}
    for sid in due + later_today:
        row = peek.row(sid)
        assert row["upload_status"] == "scheduled"
        assert row["attempts"] == 0
        assert row["next_attempt_at"] == resume_at
        assert row["quota_date"] == quota_date_of(resume_at)
    untouched = peek.row(tomorrow[0])
    assert untouched["next_attempt_at"] is None
    quota = peek.quota_by_day()
    assert quota[(today, "uploads")] == (0, 0)
    assert quota[(quota_date_of(resume_at), "uploads")] == (6, 0)
    assert untouched["quota_date"] == quota_date_of(T0 + timedelta(days=1, hours=11))
    assert_consistent(mgr)

    # Nothing is retried before the quota resets...
    clock.set(resume_at - timedelta(seconds=1))
    assert processor.run_once().claimed == 0
    # ...and everything due uploads once it has.
    clock.set(resume_at + timedelta(seconds=1))
    report = make_processor(mgr, StubUploader(), max_concurrent_uploads=2).run_once()
    assert report.uploaded == 6
    assert peek.statuses(due + later_today) == {"completed": 6}
    assert all(peek.row(s)["attempts"] == 0 for s in due + later_today)
    assert_consistent(mgr)


def test_upload_limit_defers_only_that_channel(
    mgr: ScheduleManager, make_processor: Any, video_file: Any, peek: RawDB, clock: FakeClock
) -> None:
    a = schedule_many(mgr, video_file, 3, start=SOON, channel="a")
    b = schedule_many(mgr, video_file, 2, start=SOON, channel="b")
    paths_a = {peek.row(s)["video_path"] for s in a}

    def script(
        stub: StubUploader, request: UploadRequest, progress: ProgressCallback, on_step: Any
    ) -> UploadResult:
        if request.video_path in paths_a:
            raise UploadLimitExceededError("uploadLimitExceeded", retry_after=timedelta(hours=24))
        return default_upload(stub, request, progress, on_step)

    report = make_processor(mgr, StubUploader(script), max_concurrent_uploads=1).run_once()
    assert report.uploaded == 2
    assert report.deferred == 3
    assert peek.statuses(b) == {"completed": 2}
    for sid in a:
        row = peek.row(sid)
        assert (row["upload_status"], row["attempts"]) == ("scheduled", 0)
        assert row["next_attempt_at"] == clock() + timedelta(hours=24)
    assert_consistent(mgr)


def test_authorization_error_stops_claiming_without_burning_attempts(
    mgr: ScheduleManager,
    make_processor: Any,
    video_file: Any,
    peek: RawDB,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ids = schedule_many(mgr, video_file, 3, start=SOON)
    stub = StubUploader(_raise(AuthorizationError("token revoked", reason="authError")))
    with caplog.at_level(logging.ERROR, logger="langflix_scheduler.processor"):
        report = make_processor(mgr, stub, max_concurrent_uploads=1).run_once()
    assert report.outcome is RunOutcome.UNAUTHORIZED
    assert report.claimed == 1
    assert len(stub.calls) == 1
    assert "AUTHORIZATION FAILED" in caplog.text
    rows = [peek.row(s) for s in ids]
    assert [r["upload_status"] for r in rows] == ["scheduled"] * 3
    assert [r["attempts"] for r in rows] == [0, 0, 0]
    assert all(r["lease_owner"] is None for r in rows)
    assert peek.runs()[-1]["outcome"] == "unauthorized"
    assert_consistent(mgr)


# -- leases, heartbeats, fencing ---------------------------------------------------------------


class Gate:
    """Lets a stub pause at a point the test controls."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.release = threading.Event()

    def pause(self) -> None:
        self.reached.set()
        assert self.release.wait(WAIT), "test never released the gate"


def test_heartbeats_and_progress_never_regress(
    mgr: ScheduleManager, make_processor: Any, video_file: Any, peek: RawDB, clock: FakeClock
) -> None:
    (sid,) = schedule_many(mgr, video_file, 1, start=SOON)
    first, second = Gate(), Gate()

    def script(
        stub: StubUploader, request: UploadRequest, progress: ProgressCallback, on_step: Any
    ) -> UploadResult:
        progress(0, 5000, "stub://one")
        progress(3000, 5000, "stub://one")
        progress(1000, 5000, "stub://one")  # out of order: ignored
        progress(2000, 5000, "stub://one")
        first.pause()
        progress(0, 5000, "stub://two")  # the old session expired: a new one legitimately at 0
        progress(800, 5000, "stub://two")
        progress(100, 5000, "stub://two")
        progress(700, 5000, "stub://one")  # a stale report of the old session: ignored
        second.pause()
        on_step(UploadStep.INSERT, "vid-x")
        return UploadResult(
            video_id="vid-x",
            operations=("videos.insert", "videos.insert"),
            privacy_status="private",
            publish_at=None,
            bytes_sent=5000,
        )

    processor = make_processor(
        mgr,
        StubUploader(script),
        lease=timedelta(minutes=2),
        heartbeat_interval=timedelta(milliseconds=20),
    )
    box: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: box.setdefault("r", processor.run_once()))
    runner.start()
    try:
        assert first.reached.wait(WAIT)
        clock.advance(seconds=30)
        wait_for(lambda: peek.row(sid)["lease_expires_at"] == clock() + timedelta(minutes=2))
        row = peek.row(sid)
        assert (row["upload_session_uri"], row["bytes_uploaded"], row["bytes_total"]) == (
            "stub://one",
            3000,
            5000,
        )
        assert row["heartbeat_at"] == clock()
        first.release.set()
        assert second.reached.wait(WAIT)
        row = peek.row(sid)
        assert (row["upload_session_uri"], row["bytes_uploaded"]) == ("stub://two", 800)
    finally:
        first.release.set()
        second.release.set()
        runner.join(WAIT)
    assert box["r"].uploaded == 1
    row = peek.row(sid)
    assert (row["upload_status"], row["bytes_uploaded"], row["youtube_video_id"]) == (
        "completed",
        5000,
        "vid-x",
    )
    assert row["consumed_quota"] == {"uploads": 2}  # a second session cost a second insert
    assert_consistent(mgr)


def test_a_worker_whose_lease_was_taken_over_writes_nothing(
    mgr: ScheduleManager, make_processor: Any, video_file: Any, peek: RawDB, clock: FakeClock
) -> None:
    (sid,) = schedule_many(mgr, video_file, 1, start=SOON)
    gate = Gate()
    slow_events: list[ProcessorEvent] = []

    def paused(
        stub: StubUploader, request: UploadRequest, progress: ProgressCallback, on_step: Any
    ) -> UploadResult:
        progress(0, 2048, "stub://slow")
        gate.pause()  # a long GC pause / a suspended VM
        progress(2048, 2048, "stub://slow")
        on_step(UploadStep.INSERT, "vid-slow")
        return default_upload(stub, request, progress, on_step)

    lease = timedelta(minutes=1)
    slow = make_processor(
        mgr,
        StubUploader(paused),
        worker_id="slow",
        lease=lease,
        heartbeat_interval=timedelta(seconds=50),  # it sends none while paused
        on_event=outcomes(slow_events),
    )
    box: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: box.setdefault("r", slow.run_once()))
    runner.start()
    try:
        assert gate.reached.wait(WAIT)
        clock.advance(lease + timedelta(seconds=1))
        fast_stub = StubUploader()
        fast = make_processor(mgr, fast_stub, worker_id="fast", retry_base=timedelta(0))
        report = fast.run_once()
        assert (report.rescued, report.uploaded) == (1, 1)
        assert fast_stub.calls[0].session_uri == "stub://slow"  # resumed, not restarted
        before = peek.row(sid)
        assert before["upload_status"] == "completed"
        assert before["attempts"] == 1  # the expired lease counted one attempt
    finally:
        gate.release.set()
        runner.join(WAIT)
    slow_report = box["r"]
    assert (slow_report.claimed, slow_report.uploaded, slow_report.failed) == (1, 0, 0)
    assert slow_events == []
    assert peek.row(sid) == before  # untouched: every fenced write matched no row
    assert_consistent(mgr)


def test_rescue_returns_expired_rows_or_fails_them_when_attempts_are_spent(
    mgr: ScheduleManager, make_processor: Any, video_file: Any, peek: RawDB, clock: FakeClock
) -> None:
    ids = schedule_many(mgr, video_file, 3, start=SOON)
    hung = Gate()
    arrived: list[str] = []

    def hang(stub: StubUploader, request: UploadRequest, progress: Any, on_step: Any) -> Any:
        progress(0, 2048, f"stub://{Path(request.video_path).name}")
        if request.video_path.endswith(Path(peek.row(ids[2])["video_path"]).name):
            on_step(UploadStep.INSERT, "vid-known")
        with stub.lock:
            arrived.append(request.video_path)
        hung.pause()
        raise TransientUploadError("never gets here in time")

    dead = make_processor(
        mgr,
        StubUploader(hang),
        max_concurrent_uploads=3,
        per_channel_limit=3,
        lease=timedelta(minutes=1),
        heartbeat_interval=timedelta(seconds=50),
    )
    runner = threading.Thread(target=dead.run_once)
    runner.start()
    try:
        # All three uploads stored their session and hang (none is still before its first
        # progress report, where a stop request would release it instead).
        wait_for(lambda: len(arrived) == 3)
        assert peek.statuses(ids) == {"uploading": 3}
        assert peek.row(ids[2])["youtube_video_id"] == "vid-known"
        # Two of them have spent their attempts already.
        with peek.engine.begin() as conn:
            from sqlalchemy import update

            from langflix_scheduler.db.models import Schedule

            conn.execute(update(Schedule).where(Schedule.id.in_(ids[1:])).values(attempts=2))
        # The dead worker must neither heartbeat past the clock jump nor claim the rescued rows
        # again when it wakes: stop it before time moves (its uploads stay hung until released).
        dead.request_stop()
        clock.advance(minutes=2)
        events: list[ProcessorEvent] = []
        # The sessions answer "incomplete": the server confirms the videos are not there.
        rescuer = make_processor(
            mgr, ProbingStubUploader(), max_attempts=3, on_event=outcomes(events), channels=["none"]
        )
        report = rescuer.run_once()
    finally:
        dead.request_stop()
        hung.release.set()
        runner.join(WAIT)
    assert (report.rescued, report.failed) == (3, 1)
    first, second, third = (peek.row(s) for s in ids)
    assert (first["upload_status"], first["attempts"], first["lease_owner"]) == (
        "scheduled",
        1,
        None,
    )
    assert first["upload_session_uri"].startswith("stub://")  # kept for resuming
    assert (second["upload_status"], second["attempts"], second["slot_key"]) == ("failed", 3, None)
    # The video exists: never "failed", completed with a note instead.
    assert (third["upload_status"], third["youtube_video_id"]) == ("completed", "vid-known")
    assert "lease" in third["last_error"]
    assert sorted(e.kind.value for e in events) == ["failed", "rescued", "uploaded"]
    assert_consistent(mgr)


def test_stop_request_releases_leases_and_the_next_run_resumes(
    mgr: ScheduleManager, make_processor: Any, video_file: Any, peek: RawDB
) -> None:
    (sid,) = schedule_many(mgr, video_file, 1, start=SOON)
    gate = Gate()

    def chunks(stub: StubUploader, request: UploadRequest, progress: Any, on_step: Any) -> Any:
        progress(0, 4000, "stub://resumable")
        progress(1000, 4000, "stub://resumable")
        gate.pause()
        progress(2000, 4000, "stub://resumable")  # the chunk boundary where it stops
        raise AssertionError("the processor should have stopped the upload")

    processor = make_processor(mgr, StubUploader(chunks))
    box: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: box.setdefault("r", processor.run_once()))
    runner.start()
    assert gate.reached.wait(WAIT)
    processor.request_stop()
    gate.release.set()
    runner.join(WAIT)
    assert box["r"].outcome is RunOutcome.STOPPED
    row = peek.row(sid)
    assert (row["upload_status"], row["attempts"], row["lease_owner"]) == ("scheduled", 0, None)
    assert (row["upload_session_uri"], row["bytes_uploaded"]) == ("stub://resumable", 2000)
    stub = StubUploader()
    assert make_processor(mgr, stub).run_once().uploaded == 1
    assert stub.calls[0].session_uri == "stub://resumable"
    assert_consistent(mgr)


# -- events ------------------------------------------------------------------------------------


def test_events_fire_after_commit_and_a_raising_callback_is_harmless(
    mgr: ScheduleManager, make_processor: Any, video_file: Any, db_url: str
) -> None:
    ids = schedule_many(mgr, video_file, 4, start=SOON)
    seen: list[tuple[int, str, str]] = []
    fresh = RawDB(db_url)

    def on_event(event: ProcessorEvent) -> None:
        # A new connection sees the transition: it was committed before the callback.
        if event.kind is ProcessorEventKind.CLAIMED:
            assert fresh.row(event.schedule_id)["upload_status"] == "uploading"
            return
        seen.append(
            (event.schedule_id, event.kind.value, fresh.row(event.schedule_id)["upload_status"])
        )
        if len(seen) == 1:
            raise RuntimeError("a buggy callback")

    try:
        report = make_processor(mgr, StubUploader(), on_event=on_event).run_once()
    finally:
        fresh.close()
    assert report.uploaded == 4
    assert sorted(seen) == [(i, "uploaded", "completed") for i in ids]


@pytest.mark.parametrize("path", ["batched", "one by one"])
def test_a_completed_upload_keeps_no_session_uri(
    mgr: ScheduleManager,
    make_processor: Any,
    video_file: Any,
    peek: RawDB,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
) -> None:
    """The session URI is a secret that resumes the upload; once the video exists it is cleared
    (the batched completion and the one-by-one fallback alike). The video id stays."""
    ids = schedule_many(mgr, video_file, 3, start=SOON)
    processor = make_processor(mgr, StubUploader(), max_concurrent_uploads=3)
    if path == "one by one":

        def batch_fails(*_: Any, **__: Any) -> Any:
            raise StorageError("record completed uploads", "database connection lost")

        monkeypatch.setattr(processor, "_batch_txn", batch_fails)
    assert processor.run_once().uploaded == 3
    for sid in ids:
        row = peek.row(sid)
        assert row["upload_status"] == "completed"
        assert row["youtube_video_id"] is not None
        assert row["upload_session_uri"] is None
    assert_consistent(mgr)


def test_on_claim_gets_each_claim_round_time_and_a_raising_callback_is_harmless(
    mgr: ScheduleManager, make_processor: Any, video_file: Any
) -> None:
    schedule_many(mgr, video_file, 3, start=SOON)
    timings: list[float] = []

    def on_claim(seconds: float) -> None:
        timings.append(seconds)
        if len(timings) == 1:
            raise RuntimeError("a buggy metrics callback")

    report = make_processor(
        mgr, StubUploader(), max_concurrent_uploads=1, on_claim=on_claim
    ).run_once()
    assert report.uploaded == 3  # the raising callback changed nothing
    # One claim round per free upload slot (1) and a last one that finds nothing.
    assert len(timings) >= 4
    assert all(0 <= t < WAIT for t in timings)


# -- concurrency -------------------------------------------------------------------------------


def test_per_channel_cap_holds_across_processors(
    mgr: ScheduleManager, make_processor: Any, video_file: Any, peek: RawDB
) -> None:
    channel_of: dict[str, str] = {}
    ids: list[int] = []
    for ch in ("a", "b"):
        new = schedule_many(mgr, video_file, 6, start=SOON, channel=ch)
        ids += new
        channel_of.update({peek.row(s)["video_path"]: ch for s in new})
    stub = StubUploader(channel_of=channel_of, delay=0.05)
    cap = 2
    processors = [
        make_processor(mgr, stub, max_concurrent_uploads=3, per_channel_limit=cap, worker_id=w)
        for w in ("p1", "p2")
    ]
    reports: list[Any] = []
    threads = [
        threading.Thread(target=lambda p=p: reports.append(p.run_once())) for p in processors
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert sum(r.uploaded for r in reports) == 12
    assert len(stub.calls) == 12
    assert max(stub.max_active.values()) <= cap
    assert peek.statuses(ids) == {"completed": 12}
    assert_consistent(mgr)


# -- exclusive mode and run records ------------------------------------------------------------


def test_exclusive_overlapping_run_is_skipped_and_recorded(
    mgr: ScheduleManager,
    make_processor: Any,
    video_file: Any,
    peek: RawDB,
    caplog: pytest.LogCaptureFixture,
) -> None:
    schedule_many(mgr, video_file, 1, start=SOON)
    gate = Gate()

    def slow(stub: StubUploader, request: UploadRequest, progress: Any, on_step: Any) -> Any:
        gate.pause()
        return default_upload(stub, request, progress, on_step)

    holder = make_processor(mgr, StubUploader(slow), exclusive=True, worker_id="holder")
    runner = threading.Thread(target=holder.run_once)
    runner.start()
    try:
        assert gate.reached.wait(WAIT)
        other = make_processor(mgr, StubUploader(), worker_id="other")
        with caplog.at_level(logging.WARNING, logger="langflix_scheduler.processor"):
            report = other.run_once(exclusive=True)
        assert report.skipped
        assert report.outcome is RunOutcome.SKIPPED
        assert report.claimed == 0
        assert "SKIPPED (previous run still in progress)" in caplog.text
    finally:
        gate.release.set()
        runner.join(WAIT)
    runs = {r["worker_id"]: r for r in peek.runs()}
    assert (runs["other"]["outcome"], runs["other"]["skipped_overlap"]) == ("skipped", 1)
    assert (runs["holder"]["outcome"], runs["holder"]["uploaded"]) == ("ok", 1)
    # Released on every path: the next exclusive run goes ahead.
    assert not make_processor(mgr, StubUploader()).run_once(exclusive=True).skipped


def test_exclusive_runs_of_different_channels_do_not_skip_each_other(
    mgr: ScheduleManager, make_processor: Any, video_file: Any, peek: RawDB
) -> None:
    schedule_many(mgr, video_file, 1, start=SOON, channel="a")
    schedule_many(mgr, video_file, 1, start=SOON, channel="b")
    gate = Gate()

    def slow(stub: StubUploader, request: UploadRequest, progress: Any, on_step: Any) -> Any:
        gate.pause()
        return default_upload(stub, request, progress, on_step)

    holder = make_processor(mgr, StubUploader(slow), exclusive=True, channels=["a"])
    runner = threading.Thread(target=holder.run_once)
    runner.start()
    try:
        assert gate.reached.wait(WAIT)
        same = make_processor(mgr, StubUploader(), exclusive=True, channels=["a"])
        other = make_processor(mgr, StubUploader(), exclusive=True, channels=["b"])
        assert same.lock_name == holder.lock_name != other.lock_name
        assert same.run_once().skipped
        report = other.run_once()
        assert (report.skipped, report.uploaded) == (False, 1)
    finally:
        gate.release.set()
        runner.join(WAIT)
    assert peek.statuses() == {"completed": 2}


def test_run_forever_stops_on_sigterm_and_logs_a_summary(
    mgr: ScheduleManager,
    make_processor: Any,
    video_file: Any,
    peek: RawDB,
    caplog: pytest.LogCaptureFixture,
) -> None:
    schedule_many(mgr, video_file, 2, start=SOON)
    processor = make_processor(mgr, StubUploader())
    before = signal.getsignal(signal.SIGTERM)
    done = threading.Event()

    def terminate_after_two_runs() -> None:
        # No timing assumption: wait (bounded) until a second run has been recorded.
        try:
            wait_for(lambda: done.is_set() or len(peek.runs()) >= 2)
        finally:
            if not done.is_set():  # never after run_forever returned (the default would kill us)
                os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=terminate_after_two_runs)
    killer.start()
    try:
        with caplog.at_level(logging.INFO, logger="langflix_scheduler.processor"):
            processor.run_forever(0.05)
    finally:
        done.set()
        killer.join(WAIT)
    assert signal.getsignal(signal.SIGTERM) is before
    assert "received SIGTERM" in caplog.text
    assert "stopped after" in caplog.text
    assert "2 uploaded" in caplog.text
    assert len(peek.runs()) >= 2


def test_run_forever_stops_on_event(
    mgr: ScheduleManager, make_processor: Any, video_file: Any, peek: RawDB
) -> None:
    schedule_many(mgr, video_file, 1, start=SOON)
    stop = threading.Event()
    processor = make_processor(
        mgr,
        StubUploader(),
        on_event=lambda e: e.kind is ProcessorEventKind.UPLOADED and stop.set(),
    )
    runner = threading.Thread(
        target=processor.run_forever, args=(0.05,), kwargs={"stop_event": stop}
    )
    runner.start()
    runner.join(WAIT)
    assert not runner.is_alive()
    assert peek.statuses() == {"completed": 1}


def test_configuration_is_validated(mgr: ScheduleManager) -> None:
    with pytest.raises(ConfigurationError):
        UploadProcessor(mgr, StubUploader(), heartbeat_interval=timedelta(minutes=10))
    with pytest.raises(ConfigurationError):
        UploadProcessor(mgr, StubUploader(), max_concurrent_uploads=0)
    with pytest.raises(ConfigurationError):
        UploadProcessor(mgr, StubUploader(), worker_id="x" * 101)
    processor = UploadProcessor(mgr, StubUploader())
    assert processor.lock_name == "langflix-scheduler:processor:default"
    assert processor.upload_lead_time == mgr.config.upload_lead_time
    processor.close()
    with pytest.raises(RuntimeError):
        processor.run_once()


# -- end to end with the real client against FakeYouTube -----------------------------------------


CHUNK = 256 * 1024


@pytest.fixture
def make_youtube(clock: FakeClock) -> Iterator[Callable[..., tuple[FakeYouTube, YouTubeUploader]]]:
    """``make_youtube(**fake_options)``: a started FakeYouTube and a real uploader talking to it,
    both on the test clock."""
    opened: list[tuple[FakeYouTube, YouTubeUploader]] = []

    def make(**options: Any) -> tuple[FakeYouTube, YouTubeUploader]:
        fake = FakeYouTube(clock=clock, **options).start()
        uploader = YouTubeUploader(
            Credentials(token="test"),
            api_endpoint=fake.api_endpoint,
            chunk_size=CHUNK,
            clock=clock,
            sleep=lambda _s: None,
        )
        opened.append((fake, uploader))
        return fake, uploader

    yield make
    for fake, uploader in opened:
        uploader.close()
        fake.close()


def _sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_quota_exhausted_mid_run_defers_the_rest_to_pt_midnight_end_to_end(
    mgr: ScheduleManager,
    make_processor: Any,
    make_youtube: Any,
    video_file: Any,
    peek: RawDB,
    clock: FakeClock,
) -> None:
    ids = schedule_many(mgr, video_file, 4, start=SOON, size=300_000)
    # The project's insert bucket allows two uploads a day: the third insert is answered 429
    # "Video Uploads per day" in the middle of the run.
    fake, uploader = make_youtube(insert_limit=2)
    events: list[ProcessorEvent] = []
    processor = make_processor(mgr, uploader, max_concurrent_uploads=1, on_event=outcomes(events))
    today = quota_date_of(clock())
    resume_at = next_quota_reset(clock())
    tomorrow = quota_date_of(resume_at)

    report = processor.run_once()
    assert (report.claimed, report.uploaded, report.deferred) == (3, 2, 2)
    assert (report.retried, report.failed) == (0, 0)
    assert sorted(e.kind.value for e in events) == ["deferred"] * 2 + ["uploaded"] * 2
    rows = [peek.row(s) for s in ids]
    waiting = [r for r in rows if r["upload_status"] == "scheduled"]
    assert len(waiting) == 2
    for row in waiting:
        assert row["attempts"] == 0  # no attempt burned
        assert row["next_attempt_at"] == resume_at  # midnight Pacific
        assert row["quota_date"] == tomorrow  # the reservation moved with it
        assert (row["lease_owner"], row["youtube_video_id"]) == (None, None)
    assert len(fake.videos) == 2
    assert fake.quota_used("uploads", today) == 2
    assert peek.quota_by_day()[(today, "uploads")] == (0, 2)
    assert peek.quota_by_day()[(tomorrow, "uploads")] == (2, 0)
    assert_consistent(mgr)

    clock.set(resume_at - timedelta(seconds=1))
    assert processor.run_once().claimed == 0  # nothing is tried before the quota resets
    clock.set(resume_at + timedelta(seconds=1))
    report = processor.run_once()
    assert (report.uploaded, report.deferred) == (2, 0)
    assert fake.quota_used("uploads", tomorrow) == 2
    videos = fake.videos
    assert len(videos) == 4
    for sid in ids:
        row = peek.row(sid)
        assert (row["upload_status"], row["attempts"]) == ("completed", 0)
        video = videos[row["youtube_video_id"]]
        assert (video.size, video.sha256) == (300_000, _sha256(row["video_path"]))
    assert peek.quota_by_day()[(tomorrow, "uploads")] == (0, 2)
    assert_consistent(mgr)


def test_progress_and_heartbeats_never_regress_end_to_end(
    mgr: ScheduleManager,
    make_processor: Any,
    make_youtube: Any,
    video_file: Any,
    peek: RawDB,
    db_url: str,
    clock: FakeClock,
) -> None:
    size = 12 * CHUNK
    ids = schedule_many(mgr, video_file, 2, start=SOON, size=size)
    fake, uploader = make_youtube(latency=0.03)
    fake.drop_next_chunk(1, after_bytes=CHUNK + 1000)  # the server keeps part of a chunk
    fake.fail_next(1, 503, target="chunk")
    committed = RawDB(db_url)
    seen: list[tuple[str, str, bool, Any]] = []

    def on_event(event: ProcessorEvent) -> None:
        # A separate connection already sees the transition: the callback runs after commit.
        row = committed.row(event.schedule_id)
        if event.kind is ProcessorEventKind.CLAIMED:
            assert row["upload_status"] == "uploading"
            return
        seen.append(
            (
                event.kind.value,
                row["upload_status"],
                row["youtube_video_id"] == event.video_id,
                row["lease_owner"],
            )
        )

    processor = make_processor(
        mgr,
        uploader,
        max_concurrent_uploads=2,
        per_channel_limit=2,
        lease=timedelta(minutes=5),
        heartbeat_interval=timedelta(milliseconds=30),
        on_event=on_event,
    )
    box: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: box.setdefault("r", processor.run_once()))
    samples: dict[int, list[dict[str, Any]]] = {sid: [] for sid in ids}
    runner.start()
    try:
        while runner.is_alive():
            clock.advance(seconds=0.1)  # time moves, so every heartbeat extends the lease
            for sid in ids:
                samples[sid].append(peek.row(sid))
        runner.join(WAIT)
    finally:
        runner.join(WAIT)
        committed.close()
    for sid in ids:
        samples[sid].append(peek.row(sid))

    assert box["r"].uploaded == 2
    for sid in ids:
        history = samples[sid]
        for before, after in itertools.pairwise(history):
            if before["upload_status"] == "completed":
                assert after == before  # a finished row is never touched again
                continue
            if after["upload_session_uri"] == before["upload_session_uri"]:
                assert after["bytes_uploaded"] >= before["bytes_uploaded"]
            for column in ("heartbeat_at", "lease_expires_at"):
                if before[column] is not None and after["upload_status"] == "uploading":
                    assert after[column] >= before[column], column
        final = history[-1]
        assert (final["upload_status"], final["bytes_uploaded"]) == ("completed", size)
        assert fake.videos[final["youtube_video_id"]].sha256 == _sha256(final["video_path"])
    assert fake.insert_calls == 2  # the faults were retried inside the sessions
    assert sorted(seen) == [("uploaded", "completed", True, None)] * 2
    assert_consistent(mgr)


def test_report_is_frozen(mgr: ScheduleManager, make_processor: Any) -> None:
    report = make_processor(mgr, StubUploader()).run_once()
    with pytest.raises(AttributeError):
        report.claimed = 3  # type: ignore[misc]
    assert report.duration >= timedelta(0)
    assert report.outcome is RunOutcome.OK
    _ = UploadStatus.COMPLETED, UTC, datetime, StepCallback
