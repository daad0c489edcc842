"""UploadProcessor at the edges where the database misbehaves (issue 9, cases 2, 4, 5, 6), on
SQLite, PostgreSQL and MariaDB.

Faults are injected at the library's database seam (:class:`DbFaults`: a call fails before it
commits, or commits and then loses its answer, exactly what ``Database`` raises for a connection
that died before or after COMMIT), by holding real locks from another connection, and (on the
servers) through the TCP fault proxy in ``test_processor_faultproxy.py``.

Every test that changes counters ends with ``recalculate_quota()`` reporting no correction.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy import update as sa_update

from langflix_scheduler.db.engine import create_engine
from langflix_scheduler.db.models import Schedule
from langflix_scheduler.errors import (
    AuthorizationError,
    InvalidTransitionError,
    OutcomeUnknownError,
    PermanentUploadError,
    QuotaExhaustedError,
    StorageError,
    TransientUploadError,
)
from langflix_scheduler.manager import ScheduleManager
from langflix_scheduler.processor import ProcessorEvent, ProcessorEventKind, UploadProcessor
from langflix_scheduler.quota import next_quota_reset
from langflix_scheduler.testing import FakeYouTube
from langflix_scheduler.testing.clock import FakeClock
from langflix_scheduler.youtube.uploader import (
    ProgressCallback,
    SessionProbe,
    SessionState,
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
from ._youtube_fixtures import CHUNK, real_uploader
from .db_helpers import RawDB

SOON = T0 + timedelta(minutes=20)
LIMITS = {"final": 30, "short": 30}
FOUND = SessionProbe(state=SessionState.COMPLETED, video_id="vid-found")
#: The writes that record an attempt's outcome (names as the processor passes them).
OUTCOME_WRITES = frozenset(
    {
        "record completed uploads",
        "record completed upload",
        "record upload retry",
        "record failed upload",
        "record upload for review",
        "release upload lease",
        "defer upload",
    }
)


@pytest.fixture
def mgr(make_manager: Callable[..., ScheduleManager]) -> ScheduleManager:
    return make_manager(daily_limits=LIMITS, lock_timeout=0.3)


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


class DbFaults:
    """Make a processor's database calls fail like a dropped connection would.

    ``fail(names, times)``: the next ``times`` write transactions named in ``names`` raise
    ``StorageError`` before anything is sent (nothing committed). ``lose_answer(names, times)``:
    they run and COMMIT, then raise ``OutcomeUnknownError`` (the reply to COMMIT was lost).
    """

    def __init__(self, processor: UploadProcessor, monkeypatch: pytest.MonkeyPatch) -> None:
        self.lock = threading.Lock()
        self.rules: list[list[Any]] = []
        self.hits: list[tuple[str, str]] = []
        db = processor._db
        for method in ("run", "run_core"):
            real = getattr(db, method)
            monkeypatch.setattr(db, method, self._wrap(real))

    def fail(self, names: frozenset[str] | set[str], times: int) -> None:
        with self.lock:
            self.rules.append([set(names), times, "before"])

    def lose_answer(self, names: frozenset[str] | set[str], times: int) -> None:
        with self.lock:
            self.rules.append([set(names), times, "after"])

    def _take(self, operation: str) -> str | None:
        with self.lock:
            for rule in self.rules:
                if operation in rule[0] and rule[1] > 0:
                    rule[1] -= 1
                    self.hits.append((operation, rule[2]))
                    return str(rule[2])
        return None

    def _wrap(self, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(operation: str, fn: Callable[[Any], Any], *, read_only: bool = False) -> Any:
            when = None if read_only else self._take(operation)
            if when == "before":
                raise StorageError(operation, "database connection lost (injected)")
            result = real(operation, fn, read_only=read_only)
            if when == "after":
                raise OutcomeUnknownError(operation, "server closed the connection (injected)")
            return result

        return call


def _session_then(exc: BaseException | None) -> Any:
    """A stub script: open a session (stored by the processor), then raise ``exc``."""

    def script(
        stub: StubUploader, request: UploadRequest, progress: ProgressCallback, on_step: Any
    ) -> UploadResult:
        progress(0, 2048, request.session_uri or f"stub://{Path(request.video_path).name}")
        if exc is None:
            return default_upload(stub, request, progress, on_step)
        raise exc

    return script


# -- case 2: never give up on a video that may be on YouTube -------------------------------------


class RowBlocker:
    """Blocks every write to one schedule row from another connection: ``BEGIN EXCLUSIVE`` on
    SQLite (the whole database), ``SELECT ... FOR UPDATE`` of the row on the servers."""

    def __init__(self, url: str, engine_name: str, schedule_id: int) -> None:
        self.url, self.engine_name, self.schedule_id = url, engine_name, schedule_id
        self.held = threading.Event()
        self._release: Callable[[], None] | None = None

    def hold(self) -> None:
        if self.engine_name == "sqlite":
            conn = sqlite3.connect(
                self.url.removeprefix("sqlite:///"), isolation_level=None, check_same_thread=False
            )
            conn.execute("BEGIN EXCLUSIVE")

            def release_sqlite() -> None:
                conn.execute("ROLLBACK")
                conn.close()

            self._release = release_sqlite
        else:
            engine = create_engine(self.url)
            sa_conn = engine.connect()
            tx = sa_conn.begin()
            sa_conn.execute(
                text("SELECT id FROM youtube_schedules WHERE id = :i FOR UPDATE"),
                {"i": self.schedule_id},
            )

            def release_server() -> None:
                tx.rollback()
                sa_conn.close()
                engine.dispose()

            self._release = release_server
        self.held.set()

    def release(self) -> None:
        if self._release is not None:
            self._release()
            self._release = None


class BlockAfterInsert:
    """Wraps an uploader: the moment ``videos.insert`` completes, the database is blocked."""

    def __init__(self, inner: Any, blocker: RowBlocker) -> None:
        self.inner, self.blocker = inner, blocker

    def upload(
        self,
        request: UploadRequest,
        *,
        progress: ProgressCallback | None = None,
        on_step: StepCallback | None = None,
    ) -> UploadResult:
        def step(kind: UploadStep, video_id: str) -> None:
            if kind is UploadStep.INSERT and not self.blocker.held.is_set():
                self.blocker.hold()
            if on_step is not None:
                on_step(kind, video_id)

        return self.inner.upload(request, progress=progress, on_step=step)

    def probe_session(self, session_uri: str, video_path: str) -> SessionProbe:
        result: SessionProbe = self.inner.probe_session(session_uri, video_path)
        return result


def test_case2_insert_finished_while_db_unavailable_on_last_attempt_completes_from_session(
    mgr: ScheduleManager,
    make_processor: Any,
    youtube_fake: FakeYouTube,
    youtube_video: Any,
    peek: RawDB,
    clock: FakeClock,
    db_url: str,
    engine_name: str,
) -> None:
    video = youtube_video(size=3 * CHUNK + 1000)
    sid = mgr.schedule_video(video, "short", preferred_time=SOON, channel="ch1").id
    with peek.engine.begin() as conn:  # four attempts already spent
        conn.execute(sa_update(Schedule).where(Schedule.id == sid).values(attempts=4))
    blocker = RowBlocker(db_url, engine_name, sid)
    uploader = BlockAfterInsert(real_uploader(youtube_fake), blocker)
    lease = timedelta(seconds=3)
    events: list[ProcessorEvent] = []
    processor = make_processor(
        mgr,
        uploader,
        lease=lease,
        heartbeat_interval=timedelta(seconds=1),
        on_event=outcomes(events),
    )
    try:
        first = processor.run_once()  # the 5th attempt: uploaded, but nothing recorded
    finally:
        blocker.release()
    assert (first.claimed, first.uploaded, first.failed) == (1, 0, 0)
    assert len(youtube_fake.videos) == 1
    row = peek.row(sid)
    assert (row["upload_status"], row["youtube_video_id"]) == ("uploading", None)
    assert row["upload_session_uri"] is not None

    clock.advance(lease + timedelta(seconds=1))
    report = processor.run_once()
    (video_id,) = youtube_fake.videos
    row = peek.row(sid)
    assert (row["upload_status"], row["youtube_video_id"]) == ("completed", video_id)
    assert row["attempts"] == 5
    assert row["slot_key"] is not None
    assert "found through its upload session" in row["last_error"]
    assert (report.rescued, report.uploaded, report.failed) == (1, 1, 0)
    assert [e.kind for e in events] == [ProcessorEventKind.UPLOADED]
    assert len(youtube_fake.videos) == 1
    assert youtube_fake.insert_calls == 1
    assert_consistent(mgr)


@pytest.mark.parametrize(
    ("failure", "answer", "status"),
    [
        ("attempts", SessionProbe(state=SessionState.COMPLETED, video_id="vid-found"), "completed"),
        (
            "permanent",
            SessionProbe(state=SessionState.COMPLETED, video_id="vid-found"),
            "completed",
        ),
        ("attempts", SessionProbe(state=SessionState.INCOMPLETE, offset=1024), "failed"),
        ("attempts", SessionProbe(state=SessionState.GONE), "needs_review"),
        ("permanent", TransientUploadError("unreachable", reason="connection"), "needs_review"),
        ("attempts", None, "needs_review"),
    ],
    ids=["completed", "completed-permanent", "incomplete", "gone", "unreachable", "no-prober"],
)
def test_giving_up_asks_the_stored_session_first(
    failure: str,
    answer: SessionProbe | Exception | None,
    status: str,
    mgr: ScheduleManager,
    make_processor: Any,
    video_file: Any,
    peek: RawDB,
) -> None:
    (sid,) = schedule_many(mgr, video_file, 1, start=SOON)
    exc: Exception = (
        PermanentUploadError("HTTP 400 on the last chunk", reason="badRequest")
        if failure == "permanent"
        else TransientUploadError("HTTP 503", reason="backendError")
    )
    uri = "stub://session"

    def script(stub: StubUploader, request: UploadRequest, progress: Any, on_step: Any) -> Any:
        progress(0, 2048, uri)
        raise exc

    if answer is None:
        stub: StubUploader = StubUploader(script)
    else:
        stub = ProbingStubUploader(script, answers={uri: answer})
    before = peek.row(sid)
    events: list[ProcessorEvent] = []
    report = make_processor(mgr, stub, max_attempts=1, on_event=outcomes(events)).run_once()
    row = peek.row(sid)
    assert row["upload_status"] == status
    assert row["lease_owner"] is None
    assert row["attempts"] == 1
    if isinstance(stub, ProbingStubUploader):
        assert stub.probes == [(uri, row["video_path"])]
    if status == "completed":
        assert row["youtube_video_id"] == "vid-found"
        assert row["reserved_quota"] == {}
        assert row["consumed_quota"] == {"uploads": 1}
        assert report.uploaded == 1
        assert events[0].video_id == "vid-found"
    elif status == "failed":
        assert row["slot_key"] is None
        assert "not on YouTube" in row["last_error"]
        assert report.failed == 1
    else:
        # Slot, day count and quota reservation kept; never claimed again; shown for review.
        assert (row["slot_key"], row["reserved_quota"]) == (before["slot_key"], {"uploads": 1})
        assert peek.day_count_pairs()[("ch1", SOON.date())] == (0, 1)
        assert "unknown" in row["last_error"]
        assert "HTTP" in row["last_error"]
        assert (report.failed, report.uploaded) == (0, 0)
        assert [e.kind for e in events] == [ProcessorEventKind.NEEDS_REVIEW]
        assert [s.id for s in mgr.list_schedules(status="needs_review")] == [sid]
        assert make_processor(mgr, ProbingStubUploader()).run_once().claimed == 0
        with pytest.raises(InvalidTransitionError, match="look for it on the channel"):
            mgr.cancel(sid)
    assert_consistent(mgr)


def test_rescue_of_an_exhausted_session_without_answer_needs_review(
    mgr: ScheduleManager, make_processor: Any, video_file: Any, peek: RawDB, clock: FakeClock
) -> None:
    (sid,) = schedule_many(mgr, video_file, 1, start=SOON)
    with peek.engine.begin() as conn:  # a worker died mid-upload on its last attempt
        conn.execute(
            sa_update(Schedule)
            .where(Schedule.id == sid)
            .values(
                upload_status="uploading",
                attempts=4,
                lease_owner="dead#1",
                lease_expires_at=T0,
                upload_session_uri="stub://dead",
            )
        )
    clock.advance(minutes=1)
    answers: dict[str, SessionProbe | Exception] = {
        "stub://dead": SessionProbe(state=SessionState.GONE)
    }
    report = make_processor(mgr, ProbingStubUploader(answers=answers)).run_once()
    assert (report.rescued, report.failed, report.claimed) == (1, 0, 0)
    row = peek.row(sid)
    assert (row["upload_status"], row["attempts"], row["lease_owner"]) == ("needs_review", 5, None)
    assert "expired or is unknown" in row["last_error"]
    assert_consistent(mgr)


# -- cases 5 and 6: recording outcomes --------------------------------------------------------


@pytest.mark.parametrize(
    ("raised", "status", "attempts", "counted"),
    [
        (None, "completed", 0, "uploaded"),
        (TransientUploadError("HTTP 503", reason="backendError"), "scheduled", 1, "retried"),
        (PermanentUploadError("invalidTitle", reason="invalidTitle"), "failed", 1, "failed"),
        (AuthorizationError("revoked", reason="unauthorized"), "scheduled", 0, None),
        ("quota", "scheduled", 0, "deferred"),
    ],
    ids=["success", "retry", "failure", "release", "deferral"],
)
def test_case6_recording_survives_three_dropped_connections(
    raised: Any,
    status: str,
    attempts: int,
    counted: str | None,
    mgr: ScheduleManager,
    make_processor: Any,
    video_file: Any,
    peek: RawDB,
    monkeypatch: pytest.MonkeyPatch,
    clock: FakeClock,
) -> None:
    (sid,) = schedule_many(mgr, video_file, 1, start=SOON)
    box: dict[str, DbFaults] = {}

    def script(stub: StubUploader, request: UploadRequest, progress: Any, on_step: Any) -> Any:
        box["faults"].fail(OUTCOME_WRITES, 3)  # from here on: three drops in a row
        if raised is None:
            return default_upload(stub, request, progress, on_step)
        if raised == "quota":
            raise QuotaExhaustedError(
                "quotaExceeded", resume_at=next_quota_reset(clock()), reason="quotaExceeded"
            )
        raise raised

    processor = make_processor(mgr, StubUploader(script))
    box["faults"] = DbFaults(processor, monkeypatch)
    report = processor.run_once()
    assert len(box["faults"].hits) == 3
    row = peek.row(sid)
    assert (row["upload_status"], row["attempts"], row["lease_owner"]) == (status, attempts, None)
    if counted is not None:
        assert getattr(report, counted) == 1
    assert_consistent(mgr)


def test_case5_lost_reply_to_the_batched_completion_still_reports_uploaded(
    mgr: ScheduleManager,
    make_processor: Any,
    video_file: Any,
    peek: RawDB,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ids = schedule_many(mgr, video_file, 2, start=SOON)
    events: list[ProcessorEvent] = []
    gate = threading.Barrier(2)

    def together(stub: StubUploader, request: UploadRequest, progress: Any, on_step: Any) -> Any:
        gate.wait(WAIT)  # both finish at once: one batched completion
        return default_upload(stub, request, progress, on_step)

    processor = make_processor(
        mgr,
        StubUploader(together),
        max_concurrent_uploads=2,
        per_channel_limit=2,
        on_event=outcomes(events),
    )
    faults = DbFaults(processor, monkeypatch)
    faults.lose_answer({"record completed uploads"}, 1)
    with caplog.at_level(logging.WARNING, logger="langflix_scheduler.processor"):
        report = processor.run_once()
    assert faults.hits == [("record completed uploads", "after")]
    assert report.uploaded == 2
    assert sorted(e.schedule_id for e in events if e.kind is ProcessorEventKind.UPLOADED) == ids
    assert "taken over" not in caplog.text
    assert peek.statuses(ids) == {"completed": 2}
    assert_consistent(mgr)


@pytest.mark.parametrize(
    ("raised", "lost", "status", "attempts", "counted"),
    [
        (None, "record completed upload", "completed", 0, "uploaded"),
        ("transient", "record upload retry", "scheduled", 1, "retried"),
        ("permanent", "record failed upload", "failed", 1, "failed"),
        ("auth", "release upload lease", "scheduled", 0, None),
    ],
    ids=["success-alone", "retry", "failure", "release"],
)
def test_lost_answer_to_an_outcome_write_is_read_back(
    raised: str | None,
    lost: str,
    status: str,
    attempts: int,
    counted: str | None,
    mgr: ScheduleManager,
    make_processor: Any,
    video_file: Any,
    peek: RawDB,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    (sid,) = schedule_many(mgr, video_file, 1, start=SOON)
    errors: dict[str, Exception] = {
        "transient": TransientUploadError("HTTP 503", reason="backendError"),
        "permanent": PermanentUploadError("invalidTitle", reason="invalidTitle"),
        "auth": AuthorizationError("revoked", reason="unauthorized"),
    }
    events: list[ProcessorEvent] = []
    stub = StubUploader(_raise_or_upload(errors.get(raised or "")))
    processor = make_processor(mgr, stub, on_event=outcomes(events))
    faults = DbFaults(processor, monkeypatch)
    if raised is None:
        faults.fail({"record completed uploads"}, 1)  # the batch fails: recorded alone
    faults.lose_answer({lost}, 1)
    with caplog.at_level(logging.WARNING, logger="langflix_scheduler.processor"):
        report = processor.run_once()
    assert (lost, "after") in faults.hits
    assert "could not record the outcome" not in caplog.text
    assert "taken over" not in caplog.text
    row = peek.row(sid)
    assert (row["upload_status"], row["attempts"], row["lease_owner"]) == (status, attempts, None)
    if counted is not None:
        assert getattr(report, counted) == 1
        assert len(events) == 1
    assert_consistent(mgr)


def _raise_or_upload(exc: Exception | None) -> Any:
    def script(stub: StubUploader, request: UploadRequest, progress: Any, on_step: Any) -> Any:
        if exc is None:
            return default_upload(stub, request, progress, on_step)
        raise exc

    return script


# -- case 4: processor_runs rows ----------------------------------------------------------------


def test_case4_a_run_whose_heartbeat_stopped_is_reported_lost(
    mgr: ScheduleManager, make_processor: Any, video_file: Any, peek: RawDB, clock: FakeClock
) -> None:
    schedule_many(mgr, video_file, 1, start=SOON)
    hung = threading.Event()
    go = threading.Event()

    def hang(stub: StubUploader, request: UploadRequest, progress: Any, on_step: Any) -> Any:
        hung.set()
        assert go.wait(WAIT)
        return default_upload(stub, request, progress, on_step)

    lease = timedelta(minutes=5)
    processor = make_processor(
        mgr, StubUploader(hang), lease=lease, heartbeat_interval=timedelta(minutes=4)
    )
    runner = threading.Thread(target=processor.run_once)
    runner.start()
    try:
        assert hung.wait(WAIT)
        (run,) = peek.runs()
        assert (run["outcome"], run["heartbeat_at"], run["lease_expires_at"]) == (
            "running",
            T0,
            T0 + lease,
        )
        assert mgr.processor_runs()[0].outcome == "running"
        clock.advance(lease + timedelta(seconds=1))  # no heartbeat came (the process hangs)
        (record,) = mgr.processor_runs()
        assert (record.outcome, record.lease_expires_at) == ("lost", T0 + lease)
    finally:
        go.set()
        runner.join(WAIT)
    assert mgr.processor_runs()[0].outcome == "ok"


def test_case4_the_run_thread_raises_the_run_heartbeat(
    mgr: ScheduleManager, make_processor: Any, video_file: Any, peek: RawDB, clock: FakeClock
) -> None:
    schedule_many(mgr, video_file, 1, start=SOON)
    go = threading.Event()

    def hang(stub: StubUploader, request: UploadRequest, progress: Any, on_step: Any) -> Any:
        assert go.wait(WAIT)
        return default_upload(stub, request, progress, on_step)

    lease = timedelta(minutes=5)
    processor = make_processor(
        mgr, StubUploader(hang), lease=lease, heartbeat_interval=timedelta(seconds=0.05)
    )
    runner = threading.Thread(target=processor.run_once)
    runner.start()
    try:
        wait_for(lambda: len(peek.runs()) == 1)
        clock.advance(minutes=10)
        wait_for(lambda: peek.runs()[0]["lease_expires_at"] == clock() + lease)
        assert peek.runs()[0]["heartbeat_at"] == clock()
        assert mgr.processor_runs()[0].outcome == "running"
    finally:
        go.set()
        runner.join(WAIT)


@pytest.mark.parametrize("fault", ["drops", "lost-start", "end-drops"])
def test_case4_run_rows_survive_dropped_and_lost_writes(
    fault: str,
    mgr: ScheduleManager,
    make_processor: Any,
    video_file: Any,
    peek: RawDB,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    schedule_many(mgr, video_file, 1, start=SOON)
    processor = make_processor(mgr, StubUploader())
    faults = DbFaults(processor, monkeypatch)
    if fault == "drops":
        faults.fail({"record processor run"}, 4)  # two at the start, two at the end
    elif fault == "lost-start":
        faults.lose_answer({"record processor run"}, 1)
    else:
        real_finish = processor._finish_run_row

        def finish(*args: Any, **kwargs: Any) -> None:
            faults.fail({"record processor run"}, 2)
            real_finish(*args, **kwargs)

        monkeypatch.setattr(processor, "_finish_run_row", finish)
    report = processor.run_once()
    assert report.uploaded == 1
    runs = peek.runs()
    assert [(r["outcome"], r["uploaded"]) for r in runs] == [("ok", 1)]
    assert faults.hits
    assert all(r.outcome == "ok" for r in mgr.processor_runs())
