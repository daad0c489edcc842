"""UploadProcessor across OS processes, with the real ``YouTubeUploader`` against ``FakeYouTube``.

Every processor under test is a separate process (``multiprocessing`` spawn context) with its own
engine and uploader; the fake runs in the test process and records exactly what it received.
Each test is bounded: processes are joined with timeouts and killed if they overrun, and the
module has a pytest-timeout. Runs on SQLite, PostgreSQL and MariaDB.

Sizes (closing-note figures): the exactly-once test drains 60 schedules (6 channels x 10,
300 kB each, 5 % of chunk PUTs answered 503) with 3 processes of 3 upload threads each; the kill
and pause tests upload one 4 MiB video (16 chunks of 256 KiB) with one process, which is killed
(SIGKILL) or frozen (SIGSTOP) after at least one chunk was confirmed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator
from datetime import timedelta
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import pytest
from google.oauth2.credentials import Credentials

from langflix_scheduler.db.locking import named_lock
from langflix_scheduler.manager import ScheduleManager
from langflix_scheduler.processor import RunOutcome, UploadProcessor
from langflix_scheduler.testing import FakeYouTube
from langflix_scheduler.testing.clock import FakeClock
from langflix_scheduler.youtube.google import YouTubeUploader

from ..conftest import T0
from ._processor_procs import CHUNK, processor_main
from ._processor_support import RecordingUploader, assert_consistent, schedule_many, wait_for
from .db_helpers import RawDB

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SPAWN = multiprocessing.get_context("spawn")
#: Longest a processor process may run before the test kills it and fails.
JOIN_TIMEOUT = 150.0
#: How long a test waits for a process to reach a point (spawning imports take a while).
REACH_TIMEOUT = 90.0
SOON = T0 + timedelta(minutes=20)  # due at once with the default 1 h upload lead time
LEASE_S = 30
#: Slow enough that the single-video processes are surely mid-upload when stopped: one video
#: of VIDEO_CHUNKS chunks takes at least (VIDEO_CHUNKS + 1) * SLOW_LATENCY seconds.
SLOW_LATENCY = 0.3
VIDEO_CHUNKS = 16
#: Options of the single-video processes: every confirmed chunk is recorded at once.
SINGLE = {"lease": LEASE_S, "heartbeat": 10, "progress_interval": 0}


@pytest.fixture
def processes() -> Iterator[list[BaseProcess]]:
    """Processes a test started; any still alive at the end are killed."""
    started: list[BaseProcess] = []
    yield started
    for proc in started:
        if proc.is_alive():
            with_signal(proc, signal.SIGCONT)
            proc.kill()
            proc.join(10)


@pytest.fixture
def closing() -> Iterator[Callable[[UploadProcessor], UploadProcessor]]:
    """``closing(processor)``: closed at the end of the test, whatever happens."""
    made: list[UploadProcessor] = []

    def register(processor: UploadProcessor) -> UploadProcessor:
        made.append(processor)
        return processor

    yield register
    for p in made:
        p.close()


@pytest.fixture
def uploaders() -> Iterator[Callable[[FakeYouTube, FakeClock], YouTubeUploader]]:
    made: list[YouTubeUploader] = []

    def make(fake: FakeYouTube, clock: FakeClock) -> YouTubeUploader:
        uploader = YouTubeUploader(
            Credentials(token="test-process"),
            api_endpoint=fake.api_endpoint,
            chunk_size=CHUNK,
            clock=clock,
            sleep=lambda _s: None,
        )
        made.append(uploader)
        return uploader

    yield make
    for u in made:
        u.close()


def with_signal(proc: BaseProcess, signum: int) -> None:
    if proc.pid is not None and proc.is_alive():
        os.kill(proc.pid, signum)


def start(processes: list[BaseProcess], **spec: Any) -> BaseProcess:
    proc = SPAWN.Process(target=processor_main, args=(spec,), name=spec["worker_id"])
    proc.start()
    processes.append(proc)
    return proc


def join(proc: BaseProcess) -> None:
    proc.join(JOIN_TIMEOUT)
    if proc.is_alive():
        proc.kill()
        proc.join(10)
        pytest.fail(f"processor process {proc.name} overran {JOIN_TIMEOUT} s and was killed")


def spec(db_url: str, fake: FakeYouTube, tmp_path: Path, worker_id: str, **extra: Any) -> Any:
    return {
        "db_url": db_url,
        "endpoint": fake.api_endpoint,
        "now": T0.isoformat(),
        "worker_id": worker_id,
        "out": str(tmp_path / f"{worker_id}.json"),
        "mode": "once",
        **extra,
    }


def result_of(tmp_path: Path, worker_id: str) -> dict[str, Any]:
    return dict(json.loads((tmp_path / f"{worker_id}.json").read_text()))


def mid_upload(peek: RawDB, sid: int) -> bool:
    """A chunk is sent and recorded, and the upload is not finished."""
    row = peek.row(sid)
    assert row["upload_status"] in ("scheduled", "uploading"), "the upload ended too early"
    return row["upload_status"] == "uploading" and row["bytes_uploaded"] >= CHUNK


def server_offset(fake: FakeYouTube) -> int:
    """Bytes the fake holds in its (only) upload session."""
    return max((session.offset for session in fake.sessions.values()), default=0)


def sha256_of(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_three_processes_upload_60_schedules_exactly_once(
    make_manager: Callable[..., ScheduleManager],
    clock: FakeClock,
    video_file: Any,
    db_url: str,
    peek: RawDB,
    tmp_path: Path,
    processes: list[BaseProcess],
) -> None:
    mgr = make_manager(daily_limits={"final": 30, "short": 30})
    ids: list[int] = []
    for c in range(6):
        ids += schedule_many(mgr, video_file, 10, start=SOON, channel=f"ch{c}", size=300_000)
    assert len(ids) == 60
    workers = [f"drain{i}" for i in range(3)]
    with FakeYouTube(clock=clock, error_rate=0.05, seed=7) as fake:
        for w in workers:
            start(
                processes,
                **spec(
                    db_url,
                    fake,
                    tmp_path,
                    w,
                    mode="drain",
                    deadline=JOIN_TIMEOUT - 30,
                    max_concurrent=3,
                    per_channel=2,
                ),
            )
        for proc in processes:
            join(proc)
        assert [p.exitcode for p in processes] == [0, 0, 0]
        videos = fake.videos
        insert_calls = fake.insert_calls

    results = [result_of(tmp_path, w) for w in workers]
    rows = peek.rows()
    # Nothing left behind, nothing claimed twice.
    assert peek.statuses(ids) == {"completed": 60}
    assert all(r["lease_owner"] is None for r in rows)
    assert sum(r["claimed"] for r in results) == 60
    assert sum(r["uploaded"] for r in results) == 60
    assert sum(r["rescued"] + r["failed"] for r in results) == 0
    # Exactly once per the fake's own records: one insert (session) per schedule, one video each.
    assert insert_calls == 60
    assert len(videos) == 60
    assert {r["youtube_video_id"] for r in rows} == set(videos)
    for r in rows:
        video = videos[r["youtube_video_id"]]
        assert (video.size, video.sha256) == (300_000, sha256_of(r["video_path"]))
        assert r["bytes_uploaded"] == r["bytes_total"] == 300_000
        assert r["attempts"] == 0
    runs = peek.runs()
    assert runs
    assert all(run["finished_at"] is not None for run in runs)
    assert {run["outcome"] for run in runs} == {RunOutcome.OK.value}
    assert_consistent(mgr)


def test_sigkilled_exclusive_holder_blocks_nothing_and_its_upload_resumes_once(
    manager: ScheduleManager,
    clock: FakeClock,
    video_file: Any,
    db_url: str,
    peek: RawDB,
    tmp_path: Path,
    processes: list[BaseProcess],
    uploaders: Callable[[FakeYouTube, FakeClock], YouTubeUploader],
    closing: Callable[[UploadProcessor], UploadProcessor],
    caplog: pytest.LogCaptureFixture,
) -> None:
    size = VIDEO_CHUNKS * CHUNK
    (sid,) = schedule_many(manager, video_file, 1, start=SOON, size=size)
    path = peek.row(sid)["video_path"]
    with FakeYouTube(clock=clock, latency=SLOW_LATENCY) as fake:
        uploader = uploaders(fake, clock)
        other = closing(UploadProcessor(manager, uploader, worker_id="other"))
        holder = start(
            processes,
            **spec(db_url, fake, tmp_path, "holder", exclusive=True, **SINGLE),
        )
        # Mid-upload: a chunk is confirmed (by the server) and recorded, the exclusive lock is
        # held. (Progress counts bytes handed to the socket, so the row alone does not say the
        # server has them.)
        wait_for(lambda: mid_upload(peek, sid) and server_offset(fake) >= CHUNK, REACH_TIMEOUT)

        # Two overlapping exclusive runs: the second one skips and says so.
        with caplog.at_level(logging.WARNING, logger="langflix_scheduler.processor"):
            overlap = other.run_once(exclusive=True)
        assert overlap.skipped
        assert overlap.outcome is RunOutcome.SKIPPED
        assert overlap.claimed == 0
        assert "SKIPPED (previous run still in progress)" in caplog.text

        with_signal(holder, signal.SIGKILL)
        join(holder)
        assert holder.exitcode == -signal.SIGKILL
        fake.latency = 0.0
        dead = peek.row(sid)
        assert dead["upload_status"] == "uploading"
        assert dead["lease_owner"].startswith("holder#")
        stored_uri = dead["upload_session_uri"]
        assert stored_uri

        # The dead holder's lock is released by the server/OS (give the server a moment to
        # notice the closed connection), so the next exclusive run goes ahead.
        with named_lock(manager._db, other.lock_name, wait=10) as got:
            assert got
        report = other.run_once(exclusive=True)
        assert not report.skipped
        assert report.outcome is RunOutcome.OK
        assert (report.rescued, report.claimed) == (0, 0)  # its lease is still valid

        # After the lease expired, the next run rescues the row and resumes the same session.
        clock.advance(seconds=LEASE_S + 1)
        recording = RecordingUploader(uploader)
        with UploadProcessor(manager, recording, worker_id="rescuer") as rescuer:
            report = rescuer.run_once(exclusive=True)
        assert (report.rescued, report.claimed, report.uploaded) == (1, 1, 1)
        videos, insert_calls, received = fake.videos, fake.insert_calls, fake.bytes_received

    assert recording.requests[0].session_uri == stored_uri
    offset, total, uri = recording.progress[0]  # the probe of the stored session
    assert (total, uri) == (size, stored_uri)
    assert offset >= CHUNK  # resumed where the server was, not started over
    # The recorded progress is ahead of the server by at most the request in flight (one chunk).
    assert offset + CHUNK >= dead["bytes_uploaded"] >= CHUNK
    (result,) = recording.results
    assert result.bytes_sent == size - offset  # only the missing bytes were sent
    assert "videos.insert" not in result.operations
    assert insert_calls == 1  # one session, no second upload
    assert received <= size + CHUNK  # at most the chunk in flight at the kill is sent twice
    assert len(videos) == 1
    row = peek.row(sid)
    video = videos[row["youtube_video_id"]]
    assert (video.size, video.sha256) == (size, sha256_of(path))
    assert (row["upload_status"], row["attempts"], row["lease_owner"]) == ("completed", 1, None)
    runs = [(r["worker_id"], r["outcome"], r["skipped_overlap"], r["rescued"]) for r in peek.runs()]
    assert runs == [
        ("holder", "running", 0, 0),  # it died before recording its end
        ("other", "skipped", 1, 0),
        ("other", "ok", 0, 0),
        ("rescuer", "ok", 0, 1),
    ]
    assert_consistent(manager)


def test_a_paused_processor_whose_lease_was_taken_over_writes_nothing(
    manager: ScheduleManager,
    clock: FakeClock,
    video_file: Any,
    db_url: str,
    peek: RawDB,
    tmp_path: Path,
    processes: list[BaseProcess],
    uploaders: Callable[[FakeYouTube, FakeClock], YouTubeUploader],
) -> None:
    size = VIDEO_CHUNKS * CHUNK
    (sid,) = schedule_many(manager, video_file, 1, start=SOON, size=size)
    path = peek.row(sid)["video_path"]
    with FakeYouTube(clock=clock, latency=SLOW_LATENCY) as fake:
        paused = start(processes, **spec(db_url, fake, tmp_path, "paused", **SINGLE))
        wait_for(lambda: mid_upload(peek, sid), REACH_TIMEOUT)
        # A long pause (GC, suspended VM): every thread of the process stops, heartbeats too.
        with_signal(paused, signal.SIGSTOP)
        try:
            fake.latency = 0.0
            token = peek.row(sid)["lease_owner"]
            assert token.startswith("paused#")
            clock.advance(seconds=LEASE_S + 1)
            with UploadProcessor(manager, uploaders(fake, clock), worker_id="taker") as taker:
                report = taker.run_once()
            assert (report.rescued, report.uploaded) == (1, 1)
            after = peek.row(sid)
            assert after["upload_status"] == "completed"
        finally:
            with_signal(paused, signal.SIGCONT)
        # It wakes up mid-upload; every write it attempts is fenced out.
        join(paused)
        assert paused.exitcode == 0
        videos, insert_calls = fake.videos, fake.insert_calls

    woke = result_of(tmp_path, "paused")
    assert (woke["claimed"], woke["uploaded"], woke["failed"], woke["retried"]) == (1, 0, 0, 0)
    assert peek.row(sid) == after  # not a byte changed by the woken processor
    assert insert_calls == 1
    assert len(videos) == 1
    video = videos[after["youtube_video_id"]]
    assert (video.size, video.sha256) == (size, sha256_of(path))
    assert after["attempts"] == 1
    assert_consistent(manager)
