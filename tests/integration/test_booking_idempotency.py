"""Idempotent booking and duplicate refusal (issue 9), one body per engine.

A retried booking of the same request returns the schedule it made; the same content live on
the channel as another request raises ``DuplicateVideoError``; ``allow_duplicate`` books anyway;
a cancelled or failed schedule frees its fingerprint; an idempotency key identifies a request;
several OS processes booking one file make exactly one row; a file replaced after booking is
never uploaded. Tables are checked with plain SQL.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from langflix_scheduler import (
    DuplicateVideoError,
    InvalidScheduleError,
    ScheduleManager,
    UploadProcessor,
)
from langflix_scheduler.testing.clock import FakeClock
from tests.conftest import T0, unique_bytes
from tests.integration._processor_support import StubUploader
from tests.integration.db_helpers import RawDB
from tests.integration.test_concurrency import Attempt, Outcome, Task, spawn_racers
from tests.procpool import RacerPool, lazy_pools

VideoFile = Callable[..., Path]
LIMITS = {"daily_limits": {"final": 5, "short": 5}}
POOL_SIZE = 6


def _rows(raw: RawDB) -> list[dict[str, Any]]:
    with raw.connect() as conn:
        from sqlalchemy import text

        result = conn.execute(
            text(
                "SELECT id, channel_id, upload_status, content_sha256, fingerprint_key,"
                " idempotency_key, file_size FROM youtube_schedules ORDER BY id"
            )
        )
        return [dict(r._mapping) for r in result]


def _assert_counters_match(manager: ScheduleManager) -> None:
    assert manager.recalculate_quota().corrections == ()


@pytest.fixture
def mgr(make_manager: Callable[..., ScheduleManager]) -> ScheduleManager:
    return make_manager(**LIMITS)


def test_a_retry_returns_the_schedule_it_made(
    mgr: ScheduleManager, video_file: VideoFile, raw_db: RawDB
) -> None:
    path = video_file()
    first = mgr.book(path, "final", metadata={"title": "Ep 1"})
    again = mgr.book(path, "final", metadata={"title": "Ep 1"})
    assert (first.created, again.created) == (True, False)
    assert again.schedule.id == first.schedule.id
    assert again.schedule.scheduled_publish_time == first.schedule.scheduled_publish_time
    assert mgr.schedule_video(path, "final", metadata={"title": "Ep 1"}).id == first.schedule.id

    at = T0 + timedelta(days=2, hours=10)
    exact = mgr.book(video_file(), "short", preferred_time=at)
    assert exact.created
    replay = mgr.book(Path(exact.schedule.video_path), "short", preferred_time=at)
    assert (replay.created, replay.schedule.id) == (False, exact.schedule.id)

    rows = _rows(raw_db)
    assert [r["id"] for r in rows] == [first.schedule.id, exact.schedule.id]
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert rows[0]["content_sha256"] == rows[0]["fingerprint_key"] == sha
    assert rows[0]["file_size"] == path.stat().st_size
    _assert_counters_match(mgr)


def test_a_retry_is_recognised_even_when_its_time_is_no_longer_bookable(
    mgr: ScheduleManager, video_file: VideoFile, clock: FakeClock
) -> None:
    at = T0 + timedelta(hours=1)  # just past the 15 min minimum lead time
    first = mgr.book(video_file(), "final", preferred_time=at)
    clock.advance(timedelta(minutes=50))  # now inside the lead time: a new booking is refused
    replay = mgr.book(Path(first.schedule.video_path), "final", preferred_time=at)
    assert (replay.created, replay.schedule.id) == (False, first.schedule.id)


def test_same_file_as_another_request_is_a_duplicate(
    mgr: ScheduleManager, video_file: VideoFile, raw_db: RawDB
) -> None:
    path = video_file()
    first = mgr.schedule_video(path, "final", metadata={"title": "Ep 1"})
    before = raw_db.dump()
    for kwargs in (
        {"metadata": {"title": "Ep 1 (new title)"}},
        {"metadata": {"title": "Ep 1"}, "preferred_time": T0 + timedelta(days=3, hours=10)},
    ):
        with pytest.raises(DuplicateVideoError) as err:
            mgr.schedule_video(path, "final", **kwargs)
        assert err.value.existing_id == first.id
        assert err.value.channel_id == "default"
        assert err.value.status == "scheduled"
        assert err.value.same_request is False
        assert err.value.content_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    # A copy under another name is the same content.
    copy = path.with_name("copy.mp4")
    copy.write_bytes(path.read_bytes())
    with pytest.raises(DuplicateVideoError):
        mgr.schedule_video(copy, "short")
    assert raw_db.dump() == before  # nothing written, not even a counter
    # Another channel is another channel.
    assert mgr.schedule_video(path, "final", channel="other").id != first.id


def test_an_uploaded_video_is_a_duplicate_too(
    mgr: ScheduleManager, video_file: VideoFile, raw_db: RawDB
) -> None:
    path = video_file()
    first = mgr.schedule_video(path, "final")
    raw_db.execute(
        "UPDATE youtube_schedules SET upload_status = 'completed' WHERE id = :i", i=first.id
    )
    with pytest.raises(DuplicateVideoError) as err:
        mgr.schedule_video(path, "final", metadata={"title": "again"})
    assert (err.value.existing_id, err.value.status) == (first.id, "completed")


def test_allow_duplicate_books_a_second_schedule(
    mgr: ScheduleManager, video_file: VideoFile, raw_db: RawDB
) -> None:
    path = video_file()
    first = mgr.schedule_video(path, "final")
    second = mgr.book(path, "final", allow_duplicate=True)
    third = mgr.book(path, "final", allow_duplicate=True)
    assert second.created
    assert third.created
    assert len({first.id, second.schedule.id, third.schedule.id}) == 3
    rows = _rows(raw_db)
    assert [r["fingerprint_key"] is None for r in rows] == [False, True, True]
    assert len({r["content_sha256"] for r in rows}) == 1
    _assert_counters_match(mgr)


def test_cancel_frees_the_fingerprint(
    mgr: ScheduleManager, video_file: VideoFile, raw_db: RawDB
) -> None:
    path = video_file()
    first = mgr.schedule_video(path, "final")
    later = mgr.reschedule(first.id, T0 + timedelta(days=4, hours=10))
    assert _rows(raw_db)[0]["fingerprint_key"] is not None  # rescheduling keeps it
    with pytest.raises(DuplicateVideoError):
        mgr.schedule_video(path, "final", metadata={"title": "other"})
    mgr.cancel(later.id)
    assert _rows(raw_db)[0]["fingerprint_key"] is None
    again = mgr.book(path, "final")  # the same request as the cancelled one: booked anew
    assert again.created
    assert again.schedule.id != first.id
    _assert_counters_match(mgr)


def test_idempotency_key_replay_and_misuse(
    mgr: ScheduleManager, video_file: VideoFile, raw_db: RawDB
) -> None:
    path = video_file()
    first = mgr.book(path, "short", idempotency_key="req-1", metadata={"title": "A"})
    replay = mgr.book(path, "short", idempotency_key="req-1", metadata={"title": "A"})
    assert (replay.created, replay.schedule.id) == (False, first.schedule.id)
    assert replay.schedule.idempotency_key == "req-1"

    with pytest.raises(InvalidScheduleError) as err:
        mgr.book(video_file(), "short", idempotency_key="req-1")  # same key, other request
    assert err.value.field == "idempotency_key"
    assert f"#{first.schedule.id}" in str(err.value)
    # The same content under a new key is another request for the same video.
    with pytest.raises(DuplicateVideoError) as dup:
        mgr.book(path, "short", idempotency_key="req-2", metadata={"title": "A"})
    assert (dup.value.existing_id, dup.value.same_request) == (first.schedule.id, True)

    # The key names its request for ever: after a cancel, a replay returns the cancelled one.
    mgr.cancel(first.schedule.id)
    after = mgr.book(path, "short", idempotency_key="req-1", metadata={"title": "A"})
    assert (after.created, after.schedule.id, after.schedule.status) == (
        False,
        first.schedule.id,
        "cancelled",
    )
    # Keys are per channel.
    other = mgr.book(path, "short", idempotency_key="req-1", metadata={"title": "A"}, channel="b")
    assert other.created
    assert len(_rows(raw_db)) == 2
    with pytest.raises(InvalidScheduleError):
        mgr.book(path, "short", idempotency_key="x" * 129)
    _assert_counters_match(mgr)


def test_a_file_replaced_after_booking_is_not_uploaded(
    mgr: ScheduleManager, video_file: VideoFile, raw_db: RawDB
) -> None:
    path = video_file()
    booked = mgr.schedule_video(path, "short", preferred_time=T0 + timedelta(minutes=20))
    st = path.stat()
    path.write_bytes(unique_bytes(st.st_size))  # same size, new content
    os.utime(path, ns=(st.st_mtime_ns + 10**9, st.st_mtime_ns + 10**9))
    stub = StubUploader()
    with UploadProcessor(mgr, stub) as processor:
        report = processor.run_once()
    assert (report.claimed, report.failed, report.uploaded) == (1, 1, 0)
    assert stub.calls == []
    row = mgr.get(booked.id)
    assert row.status == "failed"
    assert row.last_error is not None
    assert row.last_error.startswith("the file changed after it was booked (sha256 expected ")
    assert row.last_error.endswith("book it again")
    assert _rows(raw_db)[0]["fingerprint_key"] is None  # failed frees the fingerprint
    again = mgr.book(path, "short")
    assert again.created
    _assert_counters_match(mgr)


# -- several OS processes book one file ------------------------------------------------------------


@pytest.fixture(scope="module")
def racers() -> Iterator[Callable[[], RacerPool]]:
    """A small pool of the concurrency tests' racers (spawned once for this module)."""
    yield from lazy_pools(lambda: spawn_racers(POOL_SIZE))


def _race(pool: RacerPool, db_url: str, path: Path, titles: list[str | None]) -> list[Outcome]:
    tasks = [
        Task(
            worker=i,
            url=db_url,
            video_path=str(path),
            attempts=(Attempt("final", title=titles[i]),),
            daily_limits={"final": 10, "short": 10},
            buckets={"uploads": 100, "shared": 10_000},
            costs={"videos.insert": ("uploads", 1)},
            horizon_days=7,
        )
        for i in range(POOL_SIZE)
    ]
    return pool.run(tasks)


def test_processes_booking_one_file_make_one_row(
    db_url: str, raw_db: RawDB, video_file: VideoFile, racers: Callable[[], RacerPool]
) -> None:
    # The same request from every process: one row, and every caller gets it.
    same = _race(racers(), db_url, video_file(), [None] * POOL_SIZE)
    assert [o.error for o in same] == [None] * POOL_SIZE, [o.detail for o in same]
    rows = _rows(raw_db)
    assert len(rows) == 1
    assert {o.schedule_id for o in same} == {rows[0]["id"]}

    # A different request each (other titles): one row, the others name it.
    titles: list[str | None] = [f"title {i}" for i in range(POOL_SIZE)]
    other = _race(racers(), db_url, video_file(), titles)
    rows = _rows(raw_db)
    assert len(rows) == 2
    winner = rows[1]["id"]
    assert [o.schedule_id for o in other if o.error is None] == [winner]
    refused = [o for o in other if o.error is not None]
    assert {o.error for o in refused} == {"DuplicateVideoError"}, [o.detail for o in refused]
    assert {o.existing_id for o in refused} == {winner}
    assert len(refused) == POOL_SIZE - 1
    raw_db.check_invariants(
        daily_limits={"final": 10, "short": 10}, bucket_limits={"uploads": 100, "shared": 10_000}
    )
