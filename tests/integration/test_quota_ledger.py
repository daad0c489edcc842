"""The quota ledger counts every call YouTube counts, and follow-up steps are idempotent
(issue 9, cases 7 and 8), on SQLite, PostgreSQL and MariaDB, with the real ``YouTubeUploader``
against ``FakeYouTube``.

Under each fault the ledger (``youtube_api_calls``) per quota day and bucket equals what the fake
charged (or exceeds it by at most one call per attempt that died between recording a call and
sending it, never less); ``used`` equals the ledger (``recalculate_quota`` corrects nothing); a
lost answer to ``playlistItems.insert`` never puts the video in the playlist twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from google.oauth2.credentials import Credentials
from sqlalchemy import create_engine, text

from langflix_scheduler.manager import ScheduleManager
from langflix_scheduler.processor import UploadProcessor
from langflix_scheduler.testing import FakeYouTube
from langflix_scheduler.testing.clock import FakeClock
from langflix_scheduler.youtube.google import YouTubeUploader
from langflix_scheduler.youtube.uploader import (
    ApiCallReport,
    CallCallback,
    CallPhase,
    ProgressCallback,
    StepCallback,
    UploadRequest,
    UploadResult,
)

from ..conftest import T0
from ._processor_support import assert_consistent, schedule_many

SOON = T0 + timedelta(minutes=20)
CHUNK = 256 * 1024
SIZE = 600_000  # three chunks
PLAYLIST = "PLledger"


class Ledger:
    """Plain-SQL reads of the ledger and the quota counters."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)

    def close(self) -> None:
        self.engine.dispose()

    def by_bucket(self) -> dict[tuple[date, str], int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT quota_date, bucket, SUM(cost) FROM youtube_api_calls"
                    " GROUP BY quota_date, bucket"
                )
            ).all()
        return {(_day(r[0]), r[1]): int(r[2]) for r in rows if int(r[2])}

    def by_operation(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT operation, COUNT(*) FROM youtube_api_calls GROUP BY operation")
            ).all()
        return {r[0]: int(r[1]) for r in rows}

    def refused(self) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    text("SELECT COUNT(*) FROM youtube_api_calls WHERE outcome = 'refused'")
                ).scalar_one()
            )

    def used(self) -> dict[tuple[date, str], int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT quota_date, bucket, used FROM youtube_quota_usage")
            ).all()
        return {(_day(r[0]), r[1]): int(r[2]) for r in rows if int(r[2])}

    def statuses(self) -> list[str]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT upload_status FROM youtube_schedules ORDER BY id")
            ).all()
        return [r[0] for r in rows]


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


@pytest.fixture
def ledger(db_url: str) -> Iterator[Ledger]:
    reader = Ledger(db_url)
    yield reader
    reader.close()


@pytest.fixture
def mgr(make_manager: Callable[..., ScheduleManager]) -> ScheduleManager:
    return make_manager(daily_limits={"final": 30, "short": 30})


@pytest.fixture
def youtube(clock: FakeClock) -> Iterator[Callable[..., tuple[FakeYouTube, YouTubeUploader]]]:
    opened: list[tuple[FakeYouTube, YouTubeUploader]] = []

    def make(max_retries: int = 5, **options: Any) -> tuple[FakeYouTube, YouTubeUploader]:
        fake = FakeYouTube(clock=clock, **options).start()
        uploader = YouTubeUploader(
            Credentials(token="test"),
            api_endpoint=fake.api_endpoint,
            chunk_size=CHUNK,
            clock=clock,
            sleep=lambda _s: None,
            max_retries=max_retries,
        )
        opened.append((fake, uploader))
        return fake, uploader

    yield make
    for fake, uploader in opened:
        uploader.close()
        fake.close()


@pytest.fixture
def processors() -> Iterator[Callable[..., UploadProcessor]]:
    made: list[UploadProcessor] = []

    def make(manager: ScheduleManager, uploader: Any, **kwargs: Any) -> UploadProcessor:
        kwargs.setdefault("retry_base", timedelta(seconds=10))
        kwargs.setdefault("max_concurrent_uploads", 1)
        p = UploadProcessor(manager, uploader, **kwargs)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def assert_ledger_matches(
    ledger: Ledger, fake: FakeYouTube, manager: ScheduleManager, *, extra: int = 0
) -> None:
    """Ledger == fake charged per (day, bucket), up to ``extra`` units more in total; never less
    anywhere. ``used`` == ledger, and the recount changes nothing."""
    mine, charged = ledger.by_bucket(), fake.charged_by_bucket()
    for key, units in charged.items():
        assert mine.get(key, 0) >= units, (key, mine, charged)
    assert sum(mine.values()) - sum(charged.values()) <= extra, (mine, charged)
    if extra == 0:
        assert mine == charged
    assert ledger.used() == mine
    assert_consistent(manager)


# -- case 7: the ledger counts every call YouTube counts ------------------------------------------


def test_dropped_initiation_answers_are_counted(
    mgr: ScheduleManager, youtube: Any, processors: Any, video_file: Any, ledger: Ledger
) -> None:
    schedule_many(mgr, video_file, 3, start=SOON, size=SIZE)
    fake, uploader = youtube()
    # Two initiations open a session and are charged, but their answers never arrive: the
    # client re-sends them, and YouTube charges each re-send too.
    fake.drop_reply_next(2, target="insert")
    report = processors(mgr, uploader).run_once()
    assert report.uploaded == 3
    assert fake.insert_calls == 5
    assert fake.charged() == {"videos.insert": 5}
    assert ledger.by_operation() == {"videos.insert": 5}
    assert_ledger_matches(ledger, fake, mgr)


def test_sessions_of_attempts_that_died_are_counted(
    mgr: ScheduleManager,
    youtube: Any,
    processors: Any,
    video_file: Any,
    ledger: Ledger,
    clock: FakeClock,
) -> None:
    (sid,) = schedule_many(mgr, video_file, 1, start=SOON, size=SIZE)
    fake, uploader = youtube(max_retries=1)
    processor = processors(mgr, uploader)
    fake.fail_next(2, target="chunk")  # the first attempt opens a session, then fails
    assert processor.run_once().retried == 1
    fake.expire_sessions()  # its session is gone: the next attempt opens (and pays) another
    clock.advance(timedelta(minutes=1))
    assert processor.run_once().uploaded == 1
    assert fake.charged() == {"videos.insert": 2}
    assert ledger.statuses() == ["completed"]
    assert_ledger_matches(ledger, fake, mgr)
    with ledger.engine.connect() as conn:
        consumed = conn.execute(
            text("SELECT consumed_quota FROM youtube_schedules WHERE id = :i"), {"i": sid}
        ).scalar_one()
    assert "2" in str(consumed)  # the schedule's own cost says both sessions


class _DiesAfterRecording:
    """A ``YouTubeUploader`` whose process "dies" right after the ledger recorded the
    ``nth_call`` quota-bearing call and before it was sent (the upload ends there)."""

    def __init__(self, inner: YouTubeUploader, nth_call: int) -> None:
        self.inner = inner
        self.countdown = nth_call

    def upload(
        self,
        request: UploadRequest,
        *,
        progress: ProgressCallback | None = None,
        on_step: StepCallback | None = None,
        on_call: CallCallback | None = None,
    ) -> UploadResult:
        def reporting(report: ApiCallReport) -> None:
            assert on_call is not None
            on_call(report)
            if report.phase is CallPhase.SENDING:
                self.countdown -= 1
                if self.countdown == 0:
                    raise RuntimeError("killed between the ledger commit and the send")

        return self.inner.upload(request, progress=progress, on_step=on_step, on_call=reporting)


def test_an_attempt_dying_between_record_and_send_over_counts_by_one(
    mgr: ScheduleManager,
    youtube: Any,
    processors: Any,
    video_file: Any,
    ledger: Ledger,
    clock: FakeClock,
) -> None:
    schedule_many(
        mgr, video_file, 1, start=SOON, size=SIZE, metadata={"title": "t", "playlist_id": PLAYLIST}
    )
    fake, uploader = youtube()
    dying = _DiesAfterRecording(uploader, nth_call=2)  # the playlist insert
    assert processors(mgr, dying).run_once().retried == 1
    assert fake.charged() == {"videos.insert": 1}
    assert_ledger_matches(ledger, fake, mgr, extra=50)  # one playlistItems.insert, never sent
    clock.advance(timedelta(minutes=1))
    # The next attempt sees the recorded (maybe sent) insert and asks the playlist first.
    assert processors(mgr, uploader).run_once().uploaded == 1
    assert fake.charged() == {
        "playlistItems.insert": 50,
        "playlistItems.list": 1,
        "videos.insert": 1,
    }
    (video,) = fake.videos.values()
    assert video.playlist_ids == (PLAYLIST,)
    assert_ledger_matches(ledger, fake, mgr, extra=50)


def test_quota_refusals_are_not_charged(
    mgr: ScheduleManager, youtube: Any, processors: Any, video_file: Any, ledger: Ledger
) -> None:
    schedule_many(mgr, video_file, 3, start=SOON, size=SIZE)
    fake, uploader = youtube(insert_limit=2)
    report = processors(mgr, uploader).run_once()
    assert (report.uploaded, report.deferred) == (2, 1)
    assert ledger.refused() == 1  # the third initiation, answered 429 "Video Uploads per day"
    assert ledger.by_operation() == {"videos.insert": 3}
    assert fake.charged() == {"videos.insert": 2}
    assert_ledger_matches(ledger, fake, mgr)


def test_the_recount_of_used_is_the_ledger(
    mgr: ScheduleManager,
    youtube: Any,
    processors: Any,
    video_file: Any,
    ledger: Ledger,
    clock: FakeClock,
) -> None:
    schedule_many(mgr, video_file, 2, start=SOON, size=SIZE)
    fake, uploader = youtube()
    fake.drop_reply_next(1, target="insert")
    processors(mgr, uploader).run_once()
    with ledger.engine.begin() as conn:
        conn.execute(text("UPDATE youtube_quota_usage SET used = 0"))
    report = mgr.recalculate_quota()
    assert [(c.column, c.old, c.new) for c in report.corrections] == [("used", 0, 3)]
    assert ledger.used() == ledger.by_bucket() == fake.charged_by_bucket()


# -- case 8: follow-up steps are idempotent -------------------------------------------------------


def test_a_lost_playlist_insert_answer_adds_the_video_once(
    mgr: ScheduleManager, youtube: Any, processors: Any, video_file: Any, ledger: Ledger
) -> None:
    ids = schedule_many(
        mgr, video_file, 2, start=SOON, size=SIZE, metadata={"title": "t", "playlist_id": PLAYLIST}
    )
    fake, uploader = youtube()
    fake.drop_reply_next(2, target="playlistItems")  # both inserts land; both answers are lost
    assert processors(mgr, uploader).run_once().uploaded == 2
    videos = fake.videos
    assert len(videos) == 2
    for video in videos.values():
        assert video.playlist_ids == (PLAYLIST,)  # once each, not twice
    assert ledger.statuses() == ["completed"] * len(ids)
    assert fake.charged() == {
        "playlistItems.insert": 100,
        "playlistItems.list": 2,
        "videos.insert": 2,
    }
    assert_ledger_matches(ledger, fake, mgr)


def test_a_lost_playlist_answer_then_a_failed_attempt_checks_before_resending(
    mgr: ScheduleManager,
    youtube: Any,
    processors: Any,
    video_file: Any,
    ledger: Ledger,
    clock: FakeClock,
) -> None:
    schedule_many(
        mgr, video_file, 1, start=SOON, size=SIZE, metadata={"title": "t", "playlist_id": PLAYLIST}
    )
    fake, uploader = youtube(max_retries=0)  # the lost answer ends the attempt
    processor = processors(mgr, uploader)
    fake.drop_reply_next(1, target="playlistItems")
    assert processor.run_once().retried == 1
    clock.advance(timedelta(minutes=1))
    assert processor.run_once().uploaded == 1
    (video,) = fake.videos.values()
    assert video.playlist_ids == (PLAYLIST,)
    assert fake.charged()["playlistItems.list"] == 1
    assert fake.charged()["playlistItems.insert"] == 50
    assert_ledger_matches(ledger, fake, mgr)


def test_a_call_the_ledger_cannot_record_is_not_sent(
    mgr: ScheduleManager,
    youtube: Any,
    processors: Any,
    video_file: Any,
    ledger: Ledger,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from langflix_scheduler.db import api_calls
    from langflix_scheduler.errors import StorageError

    (sid,) = schedule_many(
        mgr, video_file, 1, start=SOON, size=SIZE, metadata={"title": "t", "playlist_id": PLAYLIST}
    )
    fake, uploader = youtube()
    real = api_calls.record_call

    def failing(conn: Any, dialect: str, call: Any, limits: Any) -> None:
        if call.operation == "playlistItems.insert":
            raise StorageError("record an API call", "the database is unreachable")
        real(conn, dialect, call, limits)

    monkeypatch.setattr(api_calls, "record_call", failing)
    processor = processors(
        mgr, uploader, lease=timedelta(seconds=3), heartbeat_interval=timedelta(seconds=1)
    )
    assert processor.run_once().retried == 1
    assert fake.charged() == {"videos.insert": 1}  # the playlist insert was never sent
    with ledger.engine.connect() as conn:
        error = conn.execute(
            text("SELECT last_error FROM youtube_schedules WHERE id = :i"), {"i": sid}
        ).scalar_one()
    assert "quota ledger" in error
    assert_ledger_matches(ledger, fake, mgr)
    monkeypatch.setattr(api_calls, "record_call", real)
    clock.advance(timedelta(minutes=1))
    assert processor.run_once().uploaded == 1
    (video,) = fake.videos.values()
    assert video.playlist_ids == (PLAYLIST,)
    assert "playlistItems.list" not in fake.charged()  # never recorded, so never sent: no check
    assert_ledger_matches(ledger, fake, mgr)
