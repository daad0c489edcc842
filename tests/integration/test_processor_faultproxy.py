"""UploadProcessor behind the TCP fault proxy (tests/faultproxy.py), on PostgreSQL and MariaDB:
real dropped connections and lost COMMIT replies while outcomes and run rows are recorded
(issue 9, cases 2, 4, 5, 6). The same cases on every engine, with faults injected at the
database seam: ``test_processor_edges.py``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update as sa_update

from langflix_scheduler.config import SchedulerConfig
from langflix_scheduler.db.models import Schedule
from langflix_scheduler.manager import ScheduleManager
from langflix_scheduler.processor import ProcessorEvent, ProcessorEventKind, UploadProcessor
from langflix_scheduler.testing import FakeYouTube
from langflix_scheduler.testing.clock import FakeClock
from langflix_scheduler.youtube.uploader import (
    ProgressCallback,
    SessionProbe,
    StepCallback,
    UploadRequest,
    UploadResult,
    UploadStep,
)
from tests.conftest import FaultServer

from ..conftest import T0
from ._processor_support import (
    WAIT,
    StubUploader,
    assert_consistent,
    default_upload,
    outcomes,
    schedule_many,
)
from ._youtube_fixtures import CHUNK, real_uploader
from .db_helpers import RawDB

pytestmark = pytest.mark.timeout(120)

SOON = T0 + timedelta(minutes=20)
LIMITS = {"final": 30, "short": 30}
#: The batched completion's UPDATE of the schedule rows, as every driver sends it.
COMPLETION = b"UPDATE youtube_schedules SET quota_date"


@pytest.fixture
def mgr(fault_server: FaultServer, clock: FakeClock) -> Iterator[ScheduleManager]:
    """A manager (and so the processors built on it) talking through the proxy."""
    config = SchedulerConfig(database_url=fault_server.url, daily_limits=LIMITS, lock_timeout=0.5)
    with ScheduleManager(config, clock=clock) as manager:
        yield manager


@pytest.fixture
def direct(fault_server: FaultServer, clock: FakeClock) -> Iterator[ScheduleManager]:
    """A manager that bypasses the proxy (checks, recounts)."""
    config = SchedulerConfig(database_url=fault_server.direct_url, daily_limits=LIMITS)
    with ScheduleManager(config, clock=clock) as manager:
        yield manager


@pytest.fixture
def peek(fault_server: FaultServer) -> Iterator[RawDB]:
    p = RawDB(fault_server.direct_url)
    yield p
    p.close()


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


def _outage(server: FaultServer, seconds: float) -> threading.Timer:
    """The database goes away for ``seconds``: every open connection is reset, new ones refused.

    Returns the timer that ends the outage (join it to wait until the database is back).
    """
    server.proxy.refuse_new(True)
    server.proxy.reset_all()
    timer = threading.Timer(seconds, server.proxy.refuse_new, args=(False,))
    timer.daemon = True
    timer.start()
    return timer


def test_case5_lost_commit_reply_of_the_batched_completion(
    mgr: ScheduleManager,
    direct: ScheduleManager,
    fault_server: FaultServer,
    make_processor: Any,
    video_file: Any,
    peek: RawDB,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ids = schedule_many(mgr, video_file, 2, start=SOON)
    barrier = threading.Barrier(2)

    def together(stub: StubUploader, request: UploadRequest, progress: Any, on_step: Any) -> Any:
        result = default_upload(stub, request, progress, on_step)
        barrier.wait(WAIT)  # both done at once: one batched completion
        return result

    events: list[ProcessorEvent] = []
    processor = make_processor(
        mgr,
        StubUploader(together),
        max_concurrent_uploads=2,
        per_channel_limit=2,
        on_event=outcomes(events),
    )
    fault_server.proxy.drop_commit_reply(COMPLETION)
    with caplog.at_level(logging.WARNING, logger="langflix_scheduler.processor"):
        report = processor.run_once()
    assert fault_server.proxy.commits_dropped == 1
    assert report.uploaded == 2
    assert sorted(e.schedule_id for e in events if e.kind is ProcessorEventKind.UPLOADED) == ids
    assert "taken over" not in caplog.text
    assert peek.statuses(ids) == {"completed": 2}
    assert_consistent(direct)


def test_case6_recording_survives_an_outage_of_several_connections(
    mgr: ScheduleManager,
    direct: ScheduleManager,
    fault_server: FaultServer,
    make_processor: Any,
    video_file: Any,
    peek: RawDB,
    caplog: pytest.LogCaptureFixture,
) -> None:
    (sid,) = schedule_many(mgr, video_file, 1, start=SOON)

    def then_outage(stub: StubUploader, request: UploadRequest, progress: Any, on_step: Any) -> Any:
        result = default_upload(stub, request, progress, on_step)
        _outage(fault_server, 1.0)  # the database is gone just when the outcome is recorded
        return result

    processor = make_processor(mgr, StubUploader(then_outage))
    with caplog.at_level(logging.WARNING):
        report = processor.run_once()
    assert "retry 3 in" in caplog.text  # at least three recording tries failed in a row
    assert report.uploaded == 1
    row = peek.row(sid)
    assert (row["upload_status"], row["attempts"], row["lease_owner"]) == ("completed", 0, None)
    assert_consistent(direct)


def test_case4_run_rows_survive_a_lost_start_reply_and_an_outage_at_the_end(
    mgr: ScheduleManager,
    fault_server: FaultServer,
    make_processor: Any,
    video_file: Any,
    peek: RawDB,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    schedule_many(mgr, video_file, 1, start=SOON)
    processor = make_processor(mgr, StubUploader())
    real_finish = processor._finish_run_row

    def finish(*args: Any, **kwargs: Any) -> None:
        _outage(fault_server, 0.7)
        real_finish(*args, **kwargs)

    monkeypatch.setattr(processor, "_finish_run_row", finish)
    fault_server.proxy.drop_commit_reply(b"INSERT INTO processor_runs")
    report = processor.run_once()
    assert fault_server.proxy.commits_dropped == 1
    assert report.uploaded == 1
    runs = peek.runs()
    assert [(r["outcome"], r["uploaded"]) for r in runs] == [("ok", 1)]


class OutageAfterInsert:
    """Wraps an uploader: the database goes away the moment ``videos.insert`` completes."""

    def __init__(self, inner: Any, server: FaultServer, seconds: float) -> None:
        self.inner, self.server, self.seconds = inner, server, seconds
        self.outages: list[threading.Timer] = []

    def wait_until_over(self, timeout: float) -> None:
        """Block until every outage this wrapper started has ended."""
        assert self.outages, "no outage was started (the insert step never completed)"
        for timer in self.outages:
            timer.join(timeout)
            assert not timer.is_alive(), f"the outage did not end within {timeout} s"

    def upload(
        self,
        request: UploadRequest,
        *,
        progress: ProgressCallback | None = None,
        on_step: StepCallback | None = None,
    ) -> UploadResult:
        def step(kind: UploadStep, video_id: str) -> None:
            if kind is UploadStep.INSERT:
                self.outages.append(_outage(self.server, self.seconds))
            if on_step is not None:
                on_step(kind, video_id)

        return self.inner.upload(request, progress=progress, on_step=step)

    def probe_session(self, session_uri: str, video_path: str) -> SessionProbe:
        answer: SessionProbe = self.inner.probe_session(session_uri, video_path)
        return answer


def test_case2_database_down_when_the_last_attempt_uploads(
    mgr: ScheduleManager,
    direct: ScheduleManager,
    fault_server: FaultServer,
    make_processor: Any,
    youtube_fake: FakeYouTube,
    youtube_video: Any,
    peek: RawDB,
    clock: FakeClock,
) -> None:
    video = youtube_video(size=3 * CHUNK + 1000)
    sid = mgr.schedule_video(video, "short", preferred_time=SOON, channel="ch1").id
    with peek.engine.begin() as conn:  # four attempts already spent
        conn.execute(sa_update(Schedule).where(Schedule.id == sid).values(attempts=4))
    lease = timedelta(seconds=3)  # recording is retried for a third of it, then given up
    uploader = OutageAfterInsert(real_uploader(youtube_fake), fault_server, seconds=2.5)
    events: list[ProcessorEvent] = []
    processor = make_processor(
        mgr,
        uploader,
        lease=lease,
        heartbeat_interval=timedelta(seconds=1),
        on_event=outcomes(events),
    )
    first = processor.run_once()
    assert (first.uploaded, first.failed) == (0, 0)
    assert peek.row(sid)["youtube_video_id"] is None  # nothing was recorded

    uploader.wait_until_over(timeout=30)  # the database is back (not a guess at timing)
    clock.advance(lease + timedelta(seconds=1))
    report = processor.run_once()
    (video_id,) = youtube_fake.videos
    row = peek.row(sid)
    assert (row["upload_status"], row["youtube_video_id"], row["attempts"]) == (
        "completed",
        video_id,
        5,
    )
    assert (report.rescued, report.uploaded) == (1, 1)
    assert [e.kind for e in events] == [ProcessorEventKind.UPLOADED]
    assert youtube_fake.insert_calls == 1
    assert_consistent(direct)
