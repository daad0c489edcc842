"""The schedule timeline (issue 12, item 6) on SQLite, PostgreSQL and MariaDB: each transition
before upload leaves its entry, written in the transition's own transaction (nothing for a
refused or rolled-back change), and :meth:`ScheduleManager.timeline` merges older rows."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from langflix_scheduler.errors import (
    InvalidScheduleError,
    QuotaExceededError,
    QuotaExhaustedError,
    TransientUploadError,
)
from langflix_scheduler.manager import ScheduleManager
from langflix_scheduler.processor import ProcessorEvent, ProcessorEventKind, UploadProcessor
from langflix_scheduler.quota import next_quota_reset
from langflix_scheduler.testing.clock import FakeClock
from langflix_scheduler.youtube.uploader import UploadRequest, UploadResult

from ..conftest import T0
from ._processor_support import ProbingStubUploader, StubUploader, schedule_many
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


def _kinds(m: ScheduleManager, sid: int) -> list[str]:
    return [e.kind for e in m.timeline(sid)]


def _event_rows(raw: RawDB) -> int:
    return int(raw.scalar("SELECT COUNT(*) FROM youtube_schedule_events"))


def _fail_with(exc: BaseException) -> Any:
    def script(*_args: Any) -> UploadResult:
        raise exc

    return script


def test_booking_writes_booked_with_actor_and_publish_time(
    mgr: ScheduleManager, video_file: Any, clock: FakeClock
) -> None:
    mine = mgr.schedule_video(video_file(), "short", preferred_time=SOON)
    theirs = mgr.schedule_video(video_file(), "short", requested_by="editor-bot")  # next free slot
    (booked,) = mgr.timeline(mine.id)
    assert (booked.kind, booked.actor, booked.at) == ("booked", "library", clock())
    assert booked.detail == f"publish at {SOON:%Y-%m-%d %H:%M:%S} UTC"
    (other,) = mgr.timeline(theirs.id)
    assert (other.kind, other.actor) == ("booked", "editor-bot")
    assert f"{theirs.scheduled_publish_time:%Y-%m-%d %H:%M:%S}" in (other.detail or "")
    with pytest.raises(InvalidScheduleError):
        mgr.schedule_video(video_file(), "short", requested_by="")


def test_a_refused_booking_leaves_no_entry(
    make_manager: Callable[..., ScheduleManager], video_file: Any, raw_db: RawDB
) -> None:
    m = make_manager(daily_limits={"final": 1, "short": 1})
    m.schedule_video(video_file(), "short", preferred_time=SOON)
    assert _event_rows(raw_db) == 1
    # The day's limit is reached: the transaction locked and counted, then rolled back.
    with pytest.raises(QuotaExceededError):
        m.schedule_video(video_file(), "short", preferred_time=SOON + timedelta(minutes=5))
    assert _event_rows(raw_db) == 1
    assert raw_db.scalar("SELECT COUNT(*) FROM youtube_schedules") == 1


def test_reschedule_and_cancel_say_who_and_when(
    mgr: ScheduleManager, video_file: Any, clock: FakeClock
) -> None:
    s = mgr.schedule_video(video_file(), "short", preferred_time=SOON)
    later = SOON + timedelta(hours=3)
    clock.advance(minutes=1)
    mgr.reschedule(s.id, later, requested_by="alice")
    mgr.reschedule(s.id, later)  # the same time: nothing moves, nothing is written
    clock.advance(minutes=1)
    mgr.cancel(s.id, requested_by="cli")
    booked, moved, cancelled = mgr.timeline(s.id)
    assert booked.kind == "booked"
    assert (moved.kind, moved.actor, moved.at) == (
        "rescheduled",
        "alice",
        T0 + timedelta(minutes=1),
    )
    assert moved.detail == f"{SOON:%Y-%m-%d %H:%M:%S} UTC -> {later:%Y-%m-%d %H:%M:%S} UTC"
    assert (cancelled.kind, cancelled.actor) == ("cancelled", "cli")
    assert cancelled.at == T0 + timedelta(minutes=2)
    assert f"{later:%Y-%m-%d %H:%M:%S}" in (cancelled.detail or "")


def test_claim_retry_failure_and_rebooking(
    mgr: ScheduleManager, make_processor: Any, video_file: Any, clock: FakeClock, peek: RawDB
) -> None:
    (sid,) = schedule_many(mgr, video_file, 1, start=SOON)
    events: list[ProcessorEvent] = []
    processor = make_processor(
        mgr,
        StubUploader(_fail_with(TransientUploadError("HTTP 503", reason="backendError"))),
        max_attempts=2,
        worker_id="w1",
        on_event=events.append,
    )
    assert processor.run_once().retried == 1
    retry_at = peek.row(sid)["next_attempt_at"]
    clock.set(retry_at)
    assert processor.run_once().failed == 1

    timeline = mgr.timeline(sid)
    assert [e.kind for e in timeline] == ["booked", "attempt", "retry", "attempt", "failed"]
    _, first, retry, second, failed = timeline
    assert (first.actor, first.detail, first.at) == ("w1", "attempt 1", T0)
    assert (second.actor, second.detail, second.at) == ("w1", "attempt 2", retry_at)
    assert retry.actor == "w1"
    assert "503" in (retry.detail or "")
    assert f"next attempt at {retry_at:%Y-%m-%d %H:%M:%S} UTC" in (retry.detail or "")
    assert failed.actor == "w1"
    assert "gave up after 2 attempts" in (failed.detail or "")
    # Every transition the processor made reached on_event, the claims included.
    assert [e.kind for e in events] == [
        ProcessorEventKind.CLAIMED,
        ProcessorEventKind.RETRIED,
        ProcessorEventKind.CLAIMED,
        ProcessorEventKind.FAILED,
    ]
    assert [e.attempts for e in events if e.kind is ProcessorEventKind.CLAIMED] == [0, 1]

    clock.advance(minutes=1)
    mgr.retry_failed(sid, requested_by="ops")
    rebooked = mgr.timeline(sid)[-1]
    assert (rebooked.kind, rebooked.actor) == ("booked", "ops")
    assert "booked again after failing" in (rebooked.detail or "")


def test_one_claim_writes_one_attempt_per_schedule(
    mgr: ScheduleManager, make_processor: Any, video_file: Any
) -> None:
    ids = schedule_many(mgr, video_file, 3, start=SOON)
    report = make_processor(mgr, StubUploader(), batch_size=3, worker_id="w2").run_once()
    assert report.uploaded == 3
    for sid in ids:
        attempts = [e for e in mgr.timeline(sid) if e.kind == "attempt"]
        assert [(e.actor, e.detail) for e in attempts] == [("w2", "attempt 1")]


def test_deferral_writes_deferred_for_every_deferred_schedule(
    mgr: ScheduleManager, make_processor: Any, video_file: Any, clock: FakeClock
) -> None:
    due = schedule_many(mgr, video_file, 2, start=SOON)
    waiting = schedule_many(mgr, video_file, 1, start=T0 + timedelta(hours=4))
    resume_at = next_quota_reset(clock())

    def script(stub: StubUploader, request: UploadRequest, *rest: Any) -> UploadResult:
        raise QuotaExhaustedError("HTTP 403 quotaExceeded", resume_at=resume_at)

    processor = make_processor(mgr, StubUploader(script), max_concurrent_uploads=1)
    assert processor.run_once().deferred == 3
    for sid in due + waiting:
        deferred = [e for e in mgr.timeline(sid) if e.kind == "deferred"]
        assert len(deferred) == 1, mgr.timeline(sid)
        assert f"next attempt at {resume_at:%Y-%m-%d %H:%M:%S} UTC" in (deferred[0].detail or "")
    claimed = [sid for sid in due if "attempt" in _kinds(mgr, sid)]
    assert len(claimed) == 1  # one was claimed and hit the limit; the others waited


def _expire_lease(raw: RawDB, sid: int, clock: FakeClock, **values: Any) -> None:
    sets = ", ".join(f"{k} = :{k}" for k in values)
    raw.execute(
        "UPDATE youtube_schedules SET upload_status = 'uploading', lease_owner = 'dead#1', "
        f"lease_expires_at = :expired{', ' + sets if sets else ''} WHERE id = :i",
        expired=clock() - timedelta(minutes=1),
        i=sid,
        **values,
    )


def test_rescue_of_an_expired_lease_and_needs_review(
    mgr: ScheduleManager, make_processor: Any, video_file: Any, clock: FakeClock, raw_db: RawDB
) -> None:
    rescued, unknown = schedule_many(mgr, video_file, 2, start=SOON)
    _expire_lease(raw_db, rescued, clock)
    _expire_lease(raw_db, unknown, clock, attempts=2, upload_session_uri="stub://lost")
    uploader = ProbingStubUploader(
        answers={"stub://lost": TransientUploadError("unreachable", reason="connection")}
    )
    report = make_processor(
        mgr, uploader, max_attempts=3, worker_id="w3", channels=["none"]
    ).run_once()
    assert report.rescued == 2
    last = mgr.timeline(rescued)[-1]
    assert (last.kind, last.actor) == ("rescued", "w3")
    assert "lease of dead#1 expired" in (last.detail or "")
    last = mgr.timeline(unknown)[-1]
    assert (last.kind, last.actor) == ("needs_review", "w3")
    assert "unknown" in (last.detail or "")


def test_an_old_row_without_events_still_has_a_timeline(
    mgr: ScheduleManager,
    make_processor: Any,
    video_file: Any,
    clock: FakeClock,
    raw_db: RawDB,
) -> None:
    (sid,) = schedule_many(mgr, video_file, 1, start=SOON)
    clock.advance(minutes=2)
    assert make_processor(mgr, StubUploader()).run_once().uploaded == 1
    # As if booked and uploaded before this version: no events at all.
    raw_db.execute("DELETE FROM youtube_schedule_events")
    booked, uploaded = mgr.timeline(sid)
    assert (booked.kind, booked.actor, booked.at) == ("booked", None, T0)
    assert "from the schedule row" in (booked.detail or "")
    assert (uploaded.kind, uploaded.at) == ("uploaded", T0 + timedelta(minutes=2))
    with_calls = mgr.timeline(sid, api_calls=True)
    calls = [e for e in with_calls if e.kind == "api_call"]
    assert calls
    assert "videos.insert" in (calls[0].detail or "")


def test_timeline_of_an_unknown_or_foreign_schedule(mgr: ScheduleManager, video_file: Any) -> None:
    from langflix_scheduler.errors import ScheduleNotFoundError

    s = mgr.schedule_video(video_file(), "short", preferred_time=SOON)
    with pytest.raises(ScheduleNotFoundError):
        mgr.timeline(s.id + 100)
    with pytest.raises(ScheduleNotFoundError):
        mgr.timeline(s.id, channel="someone-else")
    assert _kinds(mgr, s.id) == ["booked"]


def test_an_attempt_that_resumes_a_stored_session_says_so(
    mgr: ScheduleManager, make_processor: Any, video_file: Any, raw_db: RawDB
) -> None:
    fresh, resumed = schedule_many(mgr, video_file, 2, start=SOON)
    raw_db.execute(
        "UPDATE youtube_schedules SET upload_session_uri = 'stub://kept', attempts = 1 "
        "WHERE id = :i",
        i=resumed,
    )
    make_processor(mgr, StubUploader(), batch_size=2, worker_id="w4").run_once()
    (first,) = [e for e in mgr.timeline(fresh) if e.kind == "attempt"]
    (second,) = [e for e in mgr.timeline(resumed) if e.kind == "attempt"]
    assert first.detail == "attempt 1"
    assert second.detail == "attempt 2 (resuming the stored upload session)"
